"""Rooms, sessions, members and playbacks: what support looks at first, and the actions that
act on calls (kick, mute, unmute, hang up, stop playback, destroy a room), each through the
same service function as its API twin, with the staff user as the actor."""

import uuid

from django.contrib import admin
from django.db.models import OuterRef, Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from .. import timeline
from ..errors import Conflict, NotFound
from ..models import CallSession, Member, PlaybackOperation, Room
from ..models.sessions import ACTIVE_MEMBER_STATES
from ..services import commands, members, playback, rooms
from .base import ReadOnlyAdmin, ReadOnlyInline, count_per_row, indexed_values_filter, staff_actor
from .timeline import TimelineMixin, timeline_link


def _link(obj, text=None):
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else obj)


def _changelist(model_name: str, query: str, text: str):
    return format_html('<a href="{}?{}">{}</a>', reverse(f"admin:conferences_{model_name}_changelist"), query, text)


def _left_already(member):
    raise Conflict("Not in the conference (any more)")


class LiveFilter(admin.SimpleListFilter):
    title = parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("live", "live"), ("destroyed", "destroyed")]

    def queryset(self, request, queryset):
        if self.value() in ("live", "destroyed"):
            return queryset.filter(destroyed_at__isnull=self.value() == "live")
        return queryset


class MemberInline(ReadOnlyInline):
    """A room's current members (its past ones are in Members, searched by room_id)."""

    model = Member
    verbose_name_plural = "current members"
    fields = ["session_link", "state", "muted", "requested_at", "joined_at", "ended_at", "end_reason"]
    ordering = ["-id"]

    @admin.display(description="session")
    def session_link(self, member):
        return _link(member.session)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(state__in=ACTIVE_MEMBER_STATES).select_related("session", "room")


class CallActions:
    """Permission checks of the actions on calls (the support group holds them)."""

    def has_kick_permission(self, request):
        return request.user.has_perm("conferences.kick_member")

    def has_mute_permission(self, request):
        return request.user.has_perm("conferences.mute_member")

    def has_hang_up_permission(self, request):
        return request.user.has_perm("conferences.hang_up_session")

    def has_stop_permission(self, request):
        return request.user.has_perm("conferences.stop_playback")

    def has_destroy_permission(self, request):
        return request.user.has_perm("conferences.destroy_room")

    def set_muted(self, request, sessions, muted: bool) -> None:
        """Mute or unmute as the API's session command does: member event and command.result."""
        actor = staff_actor(request)
        command = members.MUTE if muted else members.UNMUTE

        def run(session):
            commands.run_command(
                actor=actor,
                app=session.app,
                session_uuid=session.session_uuid,
                command=command,
                command_uid=None,
                request={},
                perform=lambda command_uid: members.set_muted(
                    actor=actor,
                    app=session.app,
                    session_uuid=session.session_uuid,
                    muted=muted,
                    command_uid=command_uid,
                ),
            )
            return "muted" if muted else "unmuted"

        self.report(request, sessions, run)


@admin.register(Room)
class RoomAdmin(TimelineMixin, CallActions, ReadOnlyAdmin):
    list_display = [
        "room_id",
        "name",
        "app",
        "node",
        "live",
        "playback_status",
        "current_members",
        "created_at",
        "destroyed_at",
    ]
    list_filter = ["app", LiveFilter, indexed_values_filter("node", "node"), "playback_status"]
    search_fields = ["room_id"]  # see search()
    search_help_text = "A room_id, a room name, or the session_uuid of a member (present or past)."
    list_select_related = ["app"]
    readonly_fields = [
        "room_id",
        "name",
        "app",
        "node",
        "created_at",
        "destroyed_at",
        "volume",
        "current_playback",
        "related",
        "timeline_page",
    ]
    fields = readonly_fields
    inlines = [MemberInline]
    actions = ["destroy", "stop_playback"]
    timeline_page = staticmethod(timeline_link)

    def get_queryset(self, request):
        active = Member.objects.filter(room=OuterRef("pk"), state__in=ACTIVE_MEMBER_STATES)
        return super().get_queryset(request).annotate(member_count=count_per_row(active, "room"))

    def search(self, queryset, term):
        of_member = Member.objects.filter(session__session_uuid=term).values("room_id")
        return queryset.filter(Q(room_id=term) | Q(name=term) | Q(pk__in=of_member))

    def timeline_sources(self, room):
        return timeline.room_sources(room)

    @admin.display(boolean=True, ordering="destroyed_at")
    def live(self, room):
        return room.is_live

    @admin.display(ordering="member_count", description="members")
    def current_members(self, room):
        return room.member_count

    @admin.display(description="playback")
    def current_playback(self, room):
        if room.playback_status == "stopped":
            return "stopped"
        operation = PlaybackOperation.objects.filter(operation_id=room.playback_operation_id).first()
        urls = format_html_join("", "<li>{}</li>", ((url,) for url in room.playback_urls))
        return format_html(
            "{} {}<ul>{}</ul>",
            room.playback_status,
            _link(operation) if operation else room.playback_operation_id,
            urls,
        )

    @admin.display(description="see also")
    def related(self, room):
        return format_html(
            "{} · {} · {} · {} · {}",
            _changelist("member", f"q={room.room_id}", "members (kick, mute)"),
            _changelist("event", f"q={room.room_id}", "events"),
            _changelist("delivery", f"q={room.room_id}", "webhook deliveries"),
            _changelist("auditentry", f"q={room.room_id}", "history"),
            _changelist("enginecommand", f"q={room.room_id}", "engine commands"),
        )

    @admin.action(description="Destroy the selected rooms", permissions=["destroy"])
    def destroy(self, request, queryset):
        self.report(
            request,
            queryset.select_related("app"),
            lambda room: (
                rooms.destroy_room(actor=staff_actor(request), app=room.app, room_id=room.room_id) or "destroyed"
            ),
        )

    @admin.action(description="Stop the selected rooms' playback", permissions=["stop"])
    def stop_playback(self, request, queryset):
        self.report(
            request,
            queryset.select_related("app"),
            lambda room: (
                playback.stop(actor=staff_actor(request), app=room.app, room_id=room.room_id) and "playback stopped"
            ),
        )


class MemberStateFilter(admin.SimpleListFilter):
    title, parameter_name = "state", "state"

    def lookups(self, request, model_admin):
        return [("active", "in a room (joining or joined)"), *Member._meta.get_field("state").choices]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(state__in=ACTIVE_MEMBER_STATES)
        return queryset.filter(state=self.value()) if self.value() else queryset


@admin.register(Member)
class MemberAdmin(CallActions, ReadOnlyAdmin):
    list_display = ["id", "session", "room", "state", "muted", "requested_at", "joined_at", "ended_at", "end_reason"]
    list_filter = [MemberStateFilter, "muted"]
    search_fields = ["session__session_uuid"]  # see search()
    search_help_text = "A session_uuid or a room_id."
    list_select_related = ["session", "room"]
    readonly_fields = [f.name for f in Member._meta.fields]
    actions = ["kick", "mute", "unmute"]

    def search(self, queryset, term):
        return queryset.filter(
            Q(session__in=CallSession.objects.filter(session_uuid=term).values("pk"))
            | Q(room__in=Room.objects.filter(room_id=term).values("pk"))
        )

    @admin.action(description="Kick the selected members from their rooms", permissions=["kick"])
    def kick(self, request, queryset):
        def run(member):
            try:
                members.kick(
                    actor=staff_actor(request),
                    app=member.room.app,
                    room_id=member.room.room_id,
                    session_uuid=member.session.session_uuid,
                )
            except NotFound:
                _left_already(member)
            return f"kicked from {member.room}"

        self.report(request, queryset.select_related("room__app", "session"), run)

    @admin.action(description="Mute the selected members", permissions=["mute"])
    def mute(self, request, queryset):
        self.set_muted(request, self._calls_in_rooms(request, queryset), True)

    @admin.action(description="Unmute the selected members", permissions=["mute"])
    def unmute(self, request, queryset):
        self.set_muted(request, self._calls_in_rooms(request, queryset), False)

    def _calls_in_rooms(self, request, queryset) -> list[CallSession]:
        """The sessions of the selected members still in their rooms (a past stay's session may
        be in another room now: muting it there is not what was asked)."""
        past = queryset.exclude(state__in=ACTIVE_MEMBER_STATES).select_related("session", "room")
        self.report(request, past, _left_already)
        return [m.session for m in queryset.filter(state__in=ACTIVE_MEMBER_STATES).select_related("session__app")]


class SessionMemberInline(ReadOnlyInline):
    """Every stay of the session in a room (a call has few)."""

    model = Member
    verbose_name_plural = "memberships"
    fields = ["room_link", "state", "muted", "requested_at", "joined_at", "ended_at", "end_reason"]
    ordering = ["-id"]

    @admin.display(description="room")
    def room_link(self, member):
        return _link(member.room)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("session", "room")


@admin.register(CallSession)
class CallSessionAdmin(TimelineMixin, CallActions, ReadOnlyAdmin):
    list_display = ["session_uuid", "app", "caller_id", "node", "state", "created_at", "last_seen_at", "ended_at"]
    list_filter = ["state", "app"]
    search_fields = ["session_uuid"]  # see search()
    search_help_text = "A session_uuid or a caller id."
    list_select_related = ["app"]
    readonly_fields = [f.name for f in CallSession._meta.fields if f.name != "id"] + ["timeline_page"]
    inlines = [SessionMemberInline]
    actions = ["hang_up", "mute", "unmute"]
    timeline_page = staticmethod(timeline_link)

    def search(self, queryset, term):
        return queryset.filter(Q(session_uuid=term) | Q(caller_id=term))

    def timeline_sources(self, session):
        return timeline.session_sources(session)

    @admin.action(description="Hang up the selected sessions", permissions=["hang_up"])
    def hang_up(self, request, queryset):
        def run(session):
            # The engine has no hang-up command (SPEC 7): the call leaves its room there; the leg
            # itself is the dial plan's to end.
            if not members.end_session(actor=staff_actor(request), session_uuid=session.session_uuid, reason="hangup"):
                raise Conflict("Already ended")
            return "hung up"

        self.report(request, queryset, run)

    @admin.action(description="Mute the selected sessions", permissions=["mute"])
    def mute(self, request, queryset):
        self.set_muted(request, queryset.select_related("app"), True)

    @admin.action(description="Unmute the selected sessions", permissions=["mute"])
    def unmute(self, request, queryset):
        self.set_muted(request, queryset.select_related("app"), False)


@admin.register(PlaybackOperation)
class PlaybackOperationAdmin(CallActions, ReadOnlyAdmin):
    list_display = ["operation_id", "room", "state", "dispatched_at", "deadline_at", "ended_at", "error"]
    list_filter = ["state"]
    search_fields = ["operation_id"]  # see search()
    search_help_text = "An operation_id or a room_id."
    list_select_related = ["room"]
    readonly_fields = [f.name for f in PlaybackOperation._meta.fields]
    actions = ["stop"]

    def search(self, queryset, term):
        by_room = Q(room__in=Room.objects.filter(room_id=term).values("pk"))
        try:
            return queryset.filter(by_room | Q(operation_id=uuid.UUID(term)))
        except ValueError:  # not an operation id
            return queryset.filter(by_room)

    @admin.action(description="Stop the selected playbacks", permissions=["stop"])
    def stop(self, request, queryset):
        def run(operation):
            playback.stop(
                actor=staff_actor(request),
                app=operation.room.app,
                room_id=operation.room.room_id,
                operation_id=operation.operation_id,
            )
            return "stopped"

        self.report(request, queryset.select_related("room__app"), run)

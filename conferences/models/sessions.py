from django.db import models
from django.db.models import Q
from django.utils import timezone

from .rooms import Room
from .tenants import App


class SessionState(models.TextChoices):
    ACTIVE = "active"
    ENDED = "ended"


class CallSession(models.Model):
    """A call leg in the media engine; it lives on the node its session_uuid prefix names."""

    session_uuid = models.CharField(max_length=64, unique=True)
    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="sessions")
    caller_id = models.CharField(max_length=128, blank=True)
    node = models.CharField(max_length=5)
    state = models.CharField(max_length=6, choices=SessionState.choices, default=SessionState.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "conferences_session"
        verbose_name = "session"
        permissions = [("hang_up_session", "Can hang up a session")]
        indexes = [
            # Orphan sweep: active sessions not seen for a while.
            models.Index(fields=["last_seen_at"], condition=Q(state="active"), name="session_active_last_seen"),
            # The active-sessions quota: an app's active sessions.
            models.Index(fields=["app"], condition=Q(state="active"), name="session_active_by_app"),
        ]

    def __str__(self) -> str:
        return self.session_uuid


class MemberState(models.TextChoices):
    JOINING = "joining"
    JOINED = "joined"
    LEFT = "left"
    FAILED = "failed"


ACTIVE_MEMBER_STATES = (MemberState.JOINING, MemberState.JOINED)


class Member(models.Model):
    """One stay of a session in a room, from the join command until it leaves or fails."""

    room = models.ForeignKey(Room, on_delete=models.PROTECT, related_name="memberships")
    session = models.ForeignKey(CallSession, on_delete=models.PROTECT, related_name="memberships")
    state = models.CharField(max_length=8, choices=MemberState.choices, default=MemberState.JOINING)
    muted = models.BooleanField(default=False)
    join_operation_id = models.UUIDField()
    join_command_uid = models.CharField(max_length=128)
    join_deadline_at = models.DateTimeField()
    requested_at = models.DateTimeField(default=timezone.now)
    joined_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, blank=True)

    class Meta:
        permissions = [("kick_member", "Can kick a member"), ("mute_member", "Can mute or unmute a member")]
        constraints = [
            # A session is in at most one room at a time.
            models.UniqueConstraint(
                fields=["session"],
                condition=Q(state__in=["joining", "joined"]),
                name="member_one_active_per_session",
            ),
        ]
        indexes = [
            # Room detail and member list: a room's current members.
            models.Index(
                fields=["room", "requested_at"],
                condition=Q(state__in=["joining", "joined"]),
                name="member_active_by_room",
            ),
            # Join-timeout sweep: pending joins by deadline.
            models.Index(fields=["join_deadline_at"], condition=Q(state="joining"), name="member_joining_deadline"),
        ]

    def __str__(self) -> str:
        return f"{self.session.session_uuid} in {self.room.room_id}"


class CommandRecord(models.Model):
    """The first accepted response to a session command sent with a `command_uid`, so a repeat
    within 24 hours returns it and runs nothing."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="+")
    session_uuid = models.CharField(max_length=64)
    command_uid = models.CharField(max_length=128)
    command = models.CharField(max_length=32)
    response = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session_uuid", "command_uid"], name="command_uid_once_per_session"),
        ]
        indexes = [
            # Pruning after 24 hours.
            models.Index(fields=["created_at"], name="command_record_created_at"),
        ]

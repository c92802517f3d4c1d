"""Reads shared by the API, the admin and the sweeper."""

from django.db.models import Count, Prefetch, Q, QuerySet

from .errors import NotFound
from .models import App, CallSession, Member, Room
from .models.sessions import ACTIVE_MEMBER_STATES

_ACTIVE = Q(memberships__state__in=ACTIVE_MEMBER_STATES)


def active_members() -> QuerySet[Member]:
    return (
        Member.objects.filter(state__in=ACTIVE_MEMBER_STATES).select_related("session").order_by("requested_at", "id")
    )


def live_rooms(*, app: App, name: str | None = None) -> QuerySet[Room]:
    rooms = (
        Room.objects.live()
        .filter(app=app)
        .select_related("app")
        .annotate(member_count=Count("memberships", filter=_ACTIVE))
    )
    if name is not None:
        rooms = rooms.filter(name=name)
    return rooms


def live_room(*, app: App, room_id: str) -> Room:
    """The app's live room with its current members (`room.current_members`), or NotFound."""
    room = (
        live_rooms(app=app)
        .prefetch_related(Prefetch("memberships", queryset=active_members(), to_attr="current_members"))
        .filter(room_id=room_id)
        .first()
    )
    if room is None:
        raise NotFound("Conference not found")
    return room


def session_with_membership(*, app: App, session_uuid: str) -> tuple[CallSession, Member | None]:
    """The app's session and its active membership (None when in no room), or NotFound."""
    session = CallSession.objects.filter(app=app, session_uuid=session_uuid).first()
    if session is None:
        raise NotFound("Session not found")
    member = session.memberships.filter(state__in=ACTIVE_MEMBER_STATES).select_related("room").first()
    return session, member

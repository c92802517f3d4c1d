"""Per-app quotas (SPEC 12): live rooms and active sessions; over them, 409 quota_exceeded.

The count is read without a lock, so concurrent creates may pass a quota by a few: a lock per
app would serialize all of an app's creates, and a quota is a guard, not an exact budget.
"""

from django.conf import settings

from ..errors import Conflict
from ..models import App, CallSession, Room
from ..models.sessions import SessionState


class QuotaExceeded(Conflict):
    code = "quota_exceeded"

    def __init__(self, what: str, limit: int):
        super().__init__(
            f"Quota of {limit} {what} reached for this application",
            code=self.code,
            detail={"quota": what.replace(" ", "_"), "limit": limit},
        )


def _reached(queryset, limit: int) -> bool:
    """Whether `queryset` holds `limit` rows or more (reads at most `limit` index entries)."""
    return limit > 0 and queryset.order_by()[limit - 1 : limit].exists()


def check_live_rooms(app: App) -> None:
    if _reached(Room.objects.live().filter(app=app), settings.QUOTA_LIVE_ROOMS):
        raise QuotaExceeded("live rooms", settings.QUOTA_LIVE_ROOMS)


def check_active_sessions(app: App) -> None:
    if _reached(CallSession.objects.filter(app=app, state=SessionState.ACTIVE), settings.QUOTA_ACTIVE_SESSIONS):
        raise QuotaExceeded("active sessions", settings.QUOTA_ACTIVE_SESSIONS)

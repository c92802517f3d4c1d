"""Per-app quotas (SPEC 12): live rooms and active sessions; over them, 409 quota_exceeded.

The count is read without a lock, and far from the quota not on every create, so concurrent
creates may pass a quota by a few: a lock per app would serialize all of an app's creates, and
a quota is a guard, not an exact budget.
"""

import time

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


# Counting walks up to `limit` index entries. Below NEAR_SHARE of a quota, a count read in this
# process within RECOUNT_SECONDS, plus this process's own creates since, stands in for it.
NEAR_SHARE = 0.9
RECOUNT_SECONDS = 1.0
_counted: dict[tuple, tuple[float, int]] = {}


def _check(what: str, queryset, limit: int, key: tuple) -> None:
    """Raise QuotaExceeded when `queryset` holds `limit` rows or more; else count one more."""
    if limit <= 0:
        return
    now = time.monotonic()
    counted_at, count = _counted.get(key, (0.0, 0))
    if now - counted_at > RECOUNT_SECONDS or count >= limit * NEAR_SHARE:
        counted_at, count = now, queryset.order_by()[:limit].count()
    if count >= limit:
        _counted.pop(key, None)
        raise QuotaExceeded(what, limit)
    _counted[key] = (counted_at, count + 1)  # the create the caller is about to make


def check_live_rooms(app: App) -> None:
    live = Room.objects.live().filter(app=app)
    _check("live rooms", live, settings.QUOTA_LIVE_ROOMS, ("rooms", app.pk, app.app_id))


def check_active_sessions(app: App) -> None:
    active = CallSession.objects.filter(app=app, state=SessionState.ACTIVE)
    _check("active sessions", active, settings.QUOTA_ACTIVE_SESSIONS, ("sessions", app.pk, app.app_id))

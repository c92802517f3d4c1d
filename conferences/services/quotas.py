"""Per-app quotas (SPEC 12): live rooms and active sessions; over them, 409 quota_exceeded.

The count is read without a lock, so concurrent creates may pass a quota by a few: a lock per
app would serialize all of an app's creates, and a quota is a guard, not an exact budget.
"""

import time

from django.conf import settings

from ..errors import Conflict
from ..models import App, CallSession, Room
from ..models.sessions import SessionState
from ..ratelimit import Rate


class QuotaExceeded(Conflict):
    code = "quota_exceeded"

    def __init__(self, what: str, limit: int):
        super().__init__(
            f"Quota of {limit} {what} reached for this application",
            code=self.code,
            detail={"quota": what.replace(" ", "_"), "limit": limit},
        )


# Counting walks up to `limit` index entries. Within RECOUNT_SECONDS a process may reuse its
# last count (plus its own creates since) while the quota is further away than everything the
# app could create meanwhile in all processes together: what its rate limit lets through.
RECOUNT_SECONDS = 1.0
_counted: dict[tuple[str, int], tuple[float, int]] = {}
_clock = time.monotonic


def _check(what: str, queryset, limit: int, key: tuple[str, int], *, margin: float) -> None:
    """Raise QuotaExceeded when `queryset` holds `limit` rows or more; else count one more."""
    if limit <= 0:
        return
    now = _clock()
    counted_at, count = _counted.get(key, (None, 0))
    if counted_at is None or now - counted_at > RECOUNT_SECONDS or limit - count <= margin:
        counted_at, count = now, queryset.order_by()[:limit].count()
    if count >= limit:
        _counted.pop(key, None)
        raise QuotaExceeded(what, limit)
    _counted[key] = (counted_at, count + 1)  # the create the caller is about to make


def check_live_rooms(app: App) -> None:
    rate = Rate.parse(settings.API_RATE_LIMIT)
    created_meanwhile = rate.limit * RECOUNT_SECONDS / rate.period
    live = Room.objects.live().filter(app=app)
    _check("live rooms", live, settings.QUOTA_LIVE_ROOMS, ("rooms", app.pk), margin=created_meanwhile)


def check_active_sessions(app: App) -> None:
    # The engine's reports of new calls have no rate limit to bound them: counted every time.
    active = CallSession.objects.filter(app=app, state=SessionState.ACTIVE)
    _check("active sessions", active, settings.QUOTA_ACTIVE_SESSIONS, ("sessions", app.pk), margin=float("inf"))

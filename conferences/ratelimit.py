"""Fixed-window rate limits counted in the shared cache (Redis when configured), so every web
process of every host counts together. `add` then `incr` is atomic in Redis (and under the
local-memory cache's lock), so concurrent requests never both take the last slot."""

import logging
import time
from dataclasses import dataclass

from django.core.cache import cache
from redis.exceptions import RedisError

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Rate:
    limit: int
    period: int  # seconds

    @classmethod
    def parse(cls, text: str) -> "Rate":
        """`100/second`, `20/minute`: the number of requests and the window."""
        number, _, unit = text.partition("/")
        return cls(int(number), PERIODS[unit.strip().lower()])


# After the cache fails, requests go unlimited for this long before it is tried again.
CACHE_DOWN_PAUSE = 5.0
_cache_down_until = 0.0
log = logging.getLogger(__name__)


def hit(scope: str, ident: str, rate: Rate, *, count: bool = True) -> float | None:
    """Count one request of `ident` (unless `count` is False: only look); None when within the
    rate, else the seconds until its window ends (for Retry-After). An unreachable cache limits
    nothing: the API stays up without its rate limits rather than fail with the cache."""
    global _cache_down_until
    if time.monotonic() < _cache_down_until:
        return None
    try:
        return _hit(scope, ident, rate, count=count)
    except (RedisError, OSError) as exc:
        _cache_down_until = time.monotonic() + CACHE_DOWN_PAUSE
        log.warning("rate limits off for %.0f s: the cache failed (%s)", CACHE_DOWN_PAUSE, type(exc).__name__)
        return None


def _hit(scope: str, ident: str, rate: Rate, *, count: bool) -> float | None:
    now = time.time()
    window = int(now // rate.period)
    key = f"ratelimit:{scope}:{ident}:{window}"
    if count:
        cache.add(key, 0, timeout=rate.period + 1)
        try:
            used = cache.incr(key)
        except ValueError:  # evicted between the two (a full local-memory cache)
            cache.add(key, used := 1, timeout=rate.period + 1)
    else:
        used = cache.get(key, 0) + 1
    if used <= rate.limit:
        return None
    return (window + 1) * rate.period - now

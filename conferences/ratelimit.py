"""Fixed-window rate limits counted in the shared cache (Redis when configured), so every web
process of every host counts together. Counting is atomic (Redis INCR; the local-memory cache's
lock), so concurrent requests never both take the last slot, and every window a request checks
costs one round trip to Redis together."""

import logging
import time
from dataclasses import dataclass

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
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


@dataclass(frozen=True)
class Window:
    """What one request does to one limit: counts itself in it, or (count=False) only looks."""

    scope: str
    ident: str
    rate: Rate
    count: bool = True


# After the cache fails, requests go unlimited for this long before it is tried again.
CACHE_DOWN_PAUSE = 5.0
_cache_down_until = 0.0
log = logging.getLogger(__name__)


def hit(*windows: Window) -> float | None:
    """Count the request in (or look at) each window; None when it is within every rate, else the
    seconds until the latest exceeded window ends (for Retry-After). An unreachable cache limits
    nothing: the API stays up without its rate limits rather than fail with the cache."""
    global _cache_down_until
    if time.monotonic() < _cache_down_until:
        return None
    now = time.time()
    keyed = [
        (window, f"ratelimit:{window.scope}:{window.ident}:{int(now // window.rate.period)}") for window in windows
    ]
    cache = caches["default"]
    try:
        if isinstance(cache, RedisCache):
            used = _used_in_redis(cache, keyed)
        else:
            used = [_used_in_cache(cache, *item) for item in keyed]
    except (RedisError, OSError) as exc:
        _cache_down_until = time.monotonic() + CACHE_DOWN_PAUSE
        log.warning("rate limits off for %.0f s: the cache failed (%s)", CACHE_DOWN_PAUSE, type(exc).__name__)
        return None
    waits = [
        (now // window.rate.period + 1) * window.rate.period - now
        for (window, _), count in zip(keyed, used, strict=True)
        if count > window.rate.limit
    ]
    return max(waits, default=None)


def _used_in_redis(cache: RedisCache, keyed: list[tuple[Window, str]]) -> list[int]:
    """Requests in each window, this one included when counted: one pipelined round trip."""
    with _redis_client(cache).pipeline(transaction=False) as pipe:
        for window, key in keyed:
            key = cache.make_and_validate_key(key)
            if window.count:
                pipe.set(key, 0, ex=window.rate.period + 1, nx=True)
                pipe.incr(key)
            else:
                pipe.get(key)
        replies = iter(pipe.execute())
    used = []
    for window, _ in keyed:
        if window.count:
            next(replies)  # the SET NX that opened the window
            used.append(next(replies))
        else:
            used.append(int(next(replies) or 0) + 1)
    return used


def _redis_client(cache: RedisCache):
    """The cache's Redis client, made once per cache: Django's cache API has no pipeline, so its
    client (a private attribute) is used directly, with the cache's own key prefix; and Django
    makes a new client for every call, which costs more than the round trip."""
    backend = cache._cache
    if (client := getattr(backend, "ratelimit_client", None)) is None:
        client = backend.ratelimit_client = backend.get_client(write=True)
    return client


def _used_in_cache(cache, window: Window, key: str) -> int:
    if not window.count:
        return cache.get(key, 0) + 1
    cache.add(key, 0, timeout=window.rate.period + 1)
    try:
        return cache.incr(key)
    except ValueError:  # evicted between the two (a full local-memory cache)
        cache.add(key, 1, timeout=window.rate.period + 1)
        return 1

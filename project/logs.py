"""JSON log lines that carry the request they belong to: its id (X-Request-ID), the app and
the actor. Nothing secret is put in a log line: no header, no body, no key."""

import logging
import re
import time
import uuid
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

request_id: ContextVar[str] = ContextVar("request_id", default="")
app_id: ContextVar[str] = ContextVar("app_id", default="")
actor: ContextVar[str] = ContextVar("actor", default="")

# A caller's id is echoed only when it is plainly an id (no header injection, bounded length).
CALLER_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = logging.getLogger("conferences.access")


class RequestContext(logging.Filter):
    """Adds the current request's id, app and actor to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id, record.app_id, record.actor = request_id.get(), app_id.get(), actor.get()
        return True


class JsonLines(JsonFormatter):
    def __init__(self, *args, **kwargs):
        super().__init__(
            "%(levelname)s %(name)s %(message)s %(request_id)s %(app_id)s %(actor)s",
            *args,
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
            **kwargs,
        )


def bind(*, app: str = "", by: str = "") -> None:
    """Name the app and the actor of the request being served (authentication calls this)."""
    app_id.set(app)
    actor.set(by)


class RequestIdMiddleware:
    """Takes the caller's X-Request-ID (or mints one), answers with it, and logs one line per
    request: method, path, status and duration."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        tokens = [
            request_id.set(given if CALLER_REQUEST_ID.match(given) else uuid.uuid4().hex),
            app_id.set(""),
            actor.set(""),
        ]
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id.get()
            user = getattr(request, "user", None)
            if not actor.get() and getattr(user, "is_staff", False):
                actor.set(f"staff:{user.get_username()}")
            access_log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            return response
        finally:
            for variable, token in zip((request_id, app_id, actor), tokens, strict=True):
                variable.reset(token)

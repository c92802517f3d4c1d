from typing import Any

from ..actors import Actor
from ..models import AuditEntry

SECRET_KEYS = frozenset({"api_key", "secret", "password", "token", "authorization", "webhook_secret"})


def redact(request: Any) -> Any:
    """The request as recorded in history: values of secret-looking keys are replaced."""
    if isinstance(request, dict):
        return {
            key: "[redacted]" if str(key).lower() in SECRET_KEYS else redact(value) for key, value in request.items()
        }
    if isinstance(request, list):
        return [redact(item) for item in request]
    return request


def record_many(entries: list[dict]) -> None:
    """Several entries in one INSERT; each dict takes record()'s arguments."""
    AuditEntry.objects.bulk_create(_entry(**entry) for entry in entries)


def record(**entry) -> AuditEntry:
    audit_entry = _entry(**entry)
    audit_entry.save()
    return audit_entry


def _entry(
    *,  # record()'s arguments
    actor: Actor,
    action: str,
    outcome: str = "ok",
    app_id: str = "",
    room_id: str = "",
    session_uuid: str = "",
    operation_id: str = "",
    request: Any = None,
    detail: Any = None,
) -> AuditEntry:
    return AuditEntry(
        actor_kind=actor.kind,
        actor=actor.name,
        api_key_prefix=actor.api_key_prefix,
        action=action,
        outcome=outcome,
        app_id=app_id,
        room_id=room_id,
        session_uuid=session_uuid,
        operation_id=operation_id,
        request=redact(request),
        detail=detail,
    )

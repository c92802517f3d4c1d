"""Session commands with `command_uid` idempotency: a repeat within 24 hours returns the first
accepted response and runs nothing."""

import uuid
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from ..actors import Actor
from ..errors import Conflict, NotFound, ServiceError
from ..models import CommandRecord
from . import audit

IDEMPOTENCY_WINDOW = timedelta(hours=24)


def run_command(
    *,
    actor: Actor,
    app,
    session_uuid: str,
    command: str,
    command_uid: str | None,
    request: dict,
    perform: Callable[[str], dict],
) -> dict:
    """Run `perform(command_uid)` in one transaction and return its 202 body.

    With a client `command_uid`, its record is inserted first: a concurrent duplicate waits on
    the unique index until the first commits, then reads the first response.
    """
    if len(session_uuid) > 64:  # longer than any session id: nothing to look up or record
        raise NotFound("Session not found")
    given_uid = command_uid is not None
    command_uid = command_uid or str(uuid.uuid4())
    try:
        with transaction.atomic():
            if given_uid:
                stored = _claim_uid(app=app, session_uuid=session_uuid, command_uid=command_uid, command=command)
                if stored is not None:
                    return stored
            response = perform(command_uid)
            if given_uid:
                CommandRecord.objects.filter(session_uuid=session_uuid, command_uid=command_uid).update(
                    response=response
                )
            audit.record(
                actor=actor,
                action=command,
                app_id=app.app_id,
                session_uuid=session_uuid,
                operation_id=response["operation_id"],
                request=request,
            )
            return response
    except ServiceError as exc:
        if exc.status == 409:
            audit.record(
                actor=actor,
                action=command,
                outcome=exc.code,
                app_id=app.app_id,
                session_uuid=session_uuid,
                request=request,
                detail=exc.detail,
            )
        raise


def _claim_uid(*, app, session_uuid: str, command_uid: str, command: str) -> dict | None:
    """Insert this command's record, or return the stored response of an earlier one."""
    cutoff = timezone.now() - IDEMPOTENCY_WINDOW
    CommandRecord.objects.filter(session_uuid=session_uuid, command_uid=command_uid, created_at__lt=cutoff).delete()
    record, created = CommandRecord.objects.get_or_create(
        session_uuid=session_uuid,
        command_uid=command_uid,
        defaults={"app": app, "command": command, "response": {}},
    )
    if created:
        return None
    if record.app_id != app.pk:
        raise NotFound("Session not found")  # another app's session looks missing
    if record.command != command:
        raise Conflict(
            f"command_uid was already used for {record.command}",
            code="command_uid_reused",
            detail={"command": record.command},
        )
    return record.response


def prune_command_records(*, now=None) -> int:
    return CommandRecord.objects.filter(created_at__lt=(now or timezone.now()) - IDEMPOTENCY_WINDOW).delete()[0]

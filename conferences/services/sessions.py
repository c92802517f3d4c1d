"""Call sessions as the engine reports them: creation, heartbeats, and the orphan janitor."""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..actors import Actor
from ..errors import ServiceError
from ..ids import mint_session_uuid, node_of
from ..models import App, CallSession
from ..models.sessions import SessionState
from . import audit, quotas
from .members import end_session


def create_session(*, actor: Actor, app_id: str, caller_id: str, session_uuid: str | None) -> CallSession:
    """Register a call leg; a repeated report of the same session returns it unchanged."""
    app = App.objects.filter(app_id=app_id).first()
    if app is None:
        raise ServiceError("Unknown app_id", detail={"app_id": ["Unknown app."]})
    session_uuid = session_uuid or mint_session_uuid()
    node = node_of(session_uuid)
    if node is None:
        raise ServiceError("Invalid session_uuid", detail={"session_uuid": ["Must be <node>-<uuid>."]})
    existing = CallSession.objects.filter(session_uuid=session_uuid, app=app).first()
    if existing is not None:
        return existing  # a repeated report, even at the quota
    quotas.check_active_sessions(app)
    try:
        with transaction.atomic():
            session = CallSession.objects.create(session_uuid=session_uuid, app=app, caller_id=caller_id, node=node)
            audit.record(
                actor=actor,
                action="session.create",
                app_id=app_id,
                session_uuid=session_uuid,
                request={"caller_id": caller_id},
            )
            return session
    except IntegrityError:
        existing = CallSession.objects.get(session_uuid=session_uuid)
        if existing.app_id != app.pk:
            raise ServiceError(
                "session_uuid belongs to another app", detail={"session_uuid": ["Already in use."]}
            ) from None
        return existing


# A session created or seen this close to when a live list was taken may be newer than the
# list (hosts' clocks differ a little too): the list does not judge it.
NEWER_THAN_LIST = timedelta(seconds=1)


def heartbeat(*, actor: Actor, node: str, live_session_uuids: list[str], taken_at=None) -> int:
    """Mark the node's listed sessions seen; end the node's other active sessions as orphans,
    those created and last seen before the list was taken (`taken_at`, default now). Returns
    how many were orphaned."""
    now = timezone.now()
    taken_at = (taken_at or now) - NEWER_THAN_LIST
    listed = set(live_session_uuids)
    CallSession.objects.filter(node=node, state=SessionState.ACTIVE, session_uuid__in=listed).update(last_seen_at=now)
    # The list is taken as the truth (SPEC 9): absent means lost.
    missing = (
        CallSession.objects.filter(
            node=node, state=SessionState.ACTIVE, created_at__lt=taken_at, last_seen_at__lt=taken_at
        )
        .exclude(session_uuid__in=listed)
        .values_list("session_uuid", flat=True)
    )
    return sum(end_session(actor=actor, session_uuid=uuid, reason="orphan", skip_locked=True) for uuid in list(missing))


def expire_orphans(*, actor: Actor, now=None, limit: int = 500) -> int:
    """Sessions not seen for ORPHAN_AFTER_SECONDS are ended as orphans."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.ORPHAN_AFTER_SECONDS)
    stale = CallSession.objects.filter(state=SessionState.ACTIVE, last_seen_at__lt=cutoff).order_by("last_seen_at")
    return sum(
        end_session(actor=actor, session_uuid=uuid, reason="orphan", skip_locked=True)
        for uuid in stale.values_list("session_uuid", flat=True)[:limit]
    )

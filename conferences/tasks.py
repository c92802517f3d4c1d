"""Celery tasks: thin wrappers that call services; state and idempotency live in the database.

Queues (CELERY_TASK_ROUTES): `webhooks` for sending, `engine` for engine commands and the
simulator, `sweeps` for timers and periodic sweeps.
"""

from celery import shared_task
from celery.signals import worker_process_shutdown, worker_shutting_down
from django.conf import settings

from .actors import Actor
from .engine import sim
from .services import (
    commands,
    delivery_dispatch,
    engine_commands,
    engine_dispatch,
    engine_events,
    members,
    playback,
    reconcile,
    retention,
    sessions,
)

SWEEPER = Actor.system("sweeper")


@worker_shutting_down.connect
@worker_process_shutdown.connect
def _stop_dispatching(**kwargs) -> None:
    """Stop claiming and let what is in flight finish (bounded by an attempt's deadline)."""
    engine_dispatch.dispatcher.stopping.set()  # both stop claiming at once
    delivery_dispatch.dispatcher.stop(timeout=settings.WEBHOOK_TIMEOUT_SECONDS + 5)
    engine_dispatch.dispatcher.stop(timeout=settings.ENGINE_TIMEOUT_SECONDS + 5)


@shared_task(ignore_result=True)
def dispatch_webhooks() -> None:
    """A wake-up: this process's dispatching thread looks again (tasks return at once)."""
    delivery_dispatch.dispatcher.wake()


@shared_task(ignore_result=True)
def redrive_deliveries() -> bool:
    return delivery_dispatch.redrive()


@shared_task(ignore_result=True)
def prune_history() -> dict:
    removed = retention.prune()
    removed["command_records"] = commands.prune_command_records()
    return removed


@shared_task(ignore_result=True)
def dispatch_engine_commands() -> None:
    """A wake-up for this process's engine-command dispatching thread."""
    engine_dispatch.dispatcher.wake()


@shared_task(ignore_result=True)
def engine_command(command: str, arguments: dict) -> None:
    """A command published by the release before the engine outbox, still in the broker at the
    upgrade: queued in the outbox like any other (to be removed in the release after)."""
    engine_commands.enqueue_published(command, arguments)


@shared_task(ignore_result=True)
def redrive_engine_commands() -> bool:
    return engine_dispatch.redrive()


@shared_task(ignore_result=True)
def reconcile_engine() -> dict:
    return reconcile.reconcile()


@shared_task(ignore_result=True)
def sim_report(report: dict) -> None:
    """The simulated engine reporting back, through the same handler as the ingress."""
    engine_events.handle(report, actor=Actor.engine(settings.NODE_HASH))


@shared_task(ignore_result=True)
def expire_join(member_id: int) -> bool:
    return members.expire_join(member_id=member_id, actor=SWEEPER)


@shared_task(ignore_result=True)
def expire_due_joins() -> int:
    return members.expire_due_joins(actor=SWEEPER)


@shared_task(ignore_result=True)
def expire_orphans() -> int:
    return sessions.expire_orphans(actor=SWEEPER)


@shared_task(ignore_result=True)
def playback_deadline(operation_id: str) -> int:
    """A play's precise timer: it sweeps everything due, its own play included."""
    return playback.expire_due(actor=SWEEPER)


@shared_task(ignore_result=True)
def expire_due_playbacks() -> int:
    return playback.expire_due(actor=SWEEPER)


@shared_task(ignore_result=True)
def sim_playback_step(room_id: str, operation_id: str, urls: list[str], index: int, kind: str) -> None:
    sim.playback_step(room_id=room_id, operation_id=operation_id, urls=urls, index=index, kind=kind)

"""Celery tasks: thin wrappers that call services; state and idempotency live in the database."""

from celery import shared_task

from .services import deliveries


@shared_task(ignore_result=True, acks_late=True)
def deliver_queue(endpoint_id: int, ordering_key: str) -> int:
    return deliveries.deliver_queue(endpoint_id=endpoint_id, ordering_key=ordering_key)


@shared_task(ignore_result=True)
def redrive_deliveries() -> int:
    return deliveries.redrive()


@shared_task(ignore_result=True)
def prune_history() -> dict:
    return deliveries.prune()

"""Fan-out: events and their deliveries, written in the state change's transaction (the outbox).

A queue is the deliveries of one (endpoint, ordering key); it is sent head first (its lowest
pending position, taken in the order of the room's events), so one room's events reach an
endpoint in order while rooms proceed in parallel.
"""

from psycopg.types.json import Jsonb

from ..models import Delivery, Event, WebhookEndpoint
from ..models.webhooks import DeliveryStatus
from . import outbox
from .sql import execute_prepared

_EVENT = Event._meta.db_table
_DELIVERY = Delivery._meta.db_table
_ENDPOINT = WebhookEndpoint._meta.db_table
# A literal, not a parameter: prepared statements' generic plans then use the partial indexes.
PENDING = f"'{DeliveryStatus.PENDING.value}'"


def held_until(endpoint: str, key: str) -> str:
    """When a delivery joining the tail of queue (endpoint, key) may go: not before its head,
    which may wait for a retry, nor before its tail, which carries the latest due time; so the
    dispatcher's scan of due deliveries skips held queues. Head and tail are one step each down
    the queue index: the cost does not grow with the backlog."""
    return f"""GREATEST(statement_timestamp(), (
           SELECT head.next_attempt_at FROM {_DELIVERY} AS head
           WHERE head.endpoint_id = {endpoint} AND head.ordering_key = {key} AND head.status = {PENDING}
           ORDER BY head.queue_position LIMIT 1), (
           SELECT tail.next_attempt_at FROM {_DELIVERY} AS tail
           WHERE tail.endpoint_id = {endpoint} AND tail.ordering_key = {key} AND tail.status = {PENDING}
           ORDER BY tail.queue_position DESC LIMIT 1))"""


# The events, and one delivery per event and enabled endpoint of its app that wants the event
# (an empty filter wants all), held behind its queue: one statement. Events take their ids in
# the order given (as Django's bulk_create relies on), and deliveries their queue positions in
# event order.
INSERT_SQL = f"""
WITH new AS (
    INSERT INTO {_EVENT} (uuid, app_id, event_type, ordering_key, room_id, payload, created_at)
    SELECT * FROM unnest(%(uuids)s::uuid[], %(apps)s::bigint[], %(types)s::text[], %(keys)s::text[],
                         %(rooms)s::bigint[], %(payloads)s::jsonb[], %(created)s::timestamptz[])
    RETURNING id, uuid, app_id, event_type, ordering_key
), fanned AS (
    INSERT INTO {_DELIVERY} (event_id, endpoint_id, ordering_key, status, attempts, total_attempts, next_attempt_at,
                             created_at, last_error)
    SELECT new.id, ep.id, new.ordering_key, {PENDING}, 0, 0, {held_until("ep.id", "new.ordering_key")},
           statement_timestamp(), ''
    FROM new
    JOIN {_ENDPOINT} AS ep
      ON ep.app_id = new.app_id AND ep.enabled
     AND (cardinality(ep.event_types) = 0 OR new.event_type = ANY (ep.event_types))
    ORDER BY new.id, ep.id
    RETURNING 1
)
SELECT uuid, id, (SELECT count(*) FROM fanned) FROM new
"""


def write(events: list[Event]) -> None:
    """Insert the (unsaved) events and their deliveries; a wake-up for the dispatcher after commit."""
    rows = execute_prepared(
        INSERT_SQL,
        {
            "uuids": [event.uuid for event in events],
            "apps": [event.app_id for event in events],
            "types": [event.event_type for event in events],
            "keys": [event.ordering_key for event in events],
            "rooms": [event.room_id for event in events],
            "payloads": [Jsonb(event.payload) for event in events],
            "created": [event.created_at for event in events],
        },
    )
    ids = {event_uuid: event_id for event_uuid, event_id, _ in rows}
    for event in events:
        event.pk = ids[event.uuid]
        event._state.adding = False
    if rows and rows[0][2]:
        outbox.wake_on_commit("webhooks")

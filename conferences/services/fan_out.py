"""Fan-out: an event's deliveries, written in the state change's transaction (the outbox).

A queue is the deliveries of one (endpoint, ordering key); it is sent head first (its lowest
pending id), so one room's events reach an endpoint in order while rooms proceed in parallel.
"""

from collections import defaultdict

from django.db import connection

from ..models import Delivery, Event, WebhookEndpoint
from ..models.webhooks import DeliveryStatus
from . import outbox

_DELIVERY = Delivery._meta.db_table

# Behind a head that waits for a retry, a new delivery is not due before it (the queue's tail
# carries the latest due time), so the dispatcher's scan of due deliveries skips held queues.
# The tail is one step down the queue index: the cost does not grow with the backlog.
INSERT_SQL = f"""
INSERT INTO {_DELIVERY} (event_id, endpoint_id, ordering_key, status, attempts, total_attempts, next_attempt_at,
                         created_at, last_error)
SELECT new.event_id, new.endpoint_id, new.ordering_key, %(pending)s, 0, 0,
       GREATEST(statement_timestamp(), (
           SELECT tail.next_attempt_at FROM {_DELIVERY} AS tail
           WHERE tail.endpoint_id = new.endpoint_id AND tail.ordering_key = new.ordering_key
             AND tail.status = %(pending)s
           ORDER BY tail.id DESC LIMIT 1)),
       statement_timestamp(), ''
FROM unnest(%(events)s::bigint[], %(endpoints)s::bigint[], %(keys)s::text[]) WITH ORDINALITY
     AS new(event_id, endpoint_id, ordering_key, position)
ORDER BY new.position
"""


def fan_out(events: list[Event]) -> None:
    """One delivery per event and enabled endpoint of its app that wants it; a wake-up for the
    dispatcher after commit."""
    endpoints_by_app = defaultdict(list)
    for endpoint in WebhookEndpoint.objects.filter(app_id__in={event.app_id for event in events}, enabled=True):
        endpoints_by_app[endpoint.app_id].append(endpoint)
    pairs = [
        (event.pk, endpoint.pk, event.ordering_key)
        for event in events
        for endpoint in endpoints_by_app[event.app_id]
        if endpoint.wants(event.event_type)
    ]
    if not pairs:
        return
    events_column, endpoints_column, keys_column = (list(column) for column in zip(*pairs))
    with connection.cursor() as cursor:
        cursor.execute(INSERT_SQL, {"pending": DeliveryStatus.PENDING.value, "events": events_column,
                                    "endpoints": endpoints_column, "keys": keys_column})
    outbox.wake_on_commit("webhooks")

from ..models import App, Event, Room
from . import fan_out


def record_event(*, app: App, payload: dict, room: Room | None = None, ordering_key: str | None = None) -> Event:
    """Store a webhook event and its deliveries in the caller's transaction (the outbox).

    The caller holds the row lock of the ordering key (the room, or the session for
    command.result), which keeps ids in commit order within the key.
    """
    if ordering_key is None:
        if room is None:
            raise ValueError("an event needs a room or an explicit ordering key")
        ordering_key = room.room_id
    return record_events([(app, room, ordering_key, payload)])[0]


def record_events(items: list[tuple[App, Room | None, str, dict]]) -> list[Event]:
    """Many events at once, in order: (app, room, ordering key, payload) each."""
    events = [
        Event(app=app, event_type=payload["event"], ordering_key=key, room=room, payload=payload)
        for app, room, key, payload in items
    ]
    fan_out.write(events)
    return events

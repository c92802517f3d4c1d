"""A room's or a session's story for support staff: its events (with their deliveries and
attempts) and its history entries, merged in time order and paged by a cursor.

Each source is read through its own index (event_by_room, event_by_session, audit_by_room,
audit_by_session) from the cursor on, so a page costs the same at any depth and any table size.
"""

import heapq
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform

from .models import AuditEntry, CallSession, Delivery, Event, Room
from .models.events import MEMBER_EVENT_PREFIX

PAGE_SIZE = 50


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # "event" or "history"
    item: Any  # an Event (deliveries and attempts prefetched) or an AuditEntry


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    next_cursor: str | None  # None on the last page


def _events(queryset: QuerySet) -> QuerySet:
    deliveries = Delivery.objects.select_related("endpoint").prefetch_related("attempt_log").order_by("id")
    return queryset.prefetch_related(Prefetch("deliveries", queryset=deliveries))


def room_sources(room: Room) -> dict[str, tuple[str, QuerySet]]:
    return {
        "e": ("event", _events(Event.objects.filter(room=room))),
        "h": ("history", AuditEntry.objects.filter(room_id=room.room_id)),
    }


def session_sources(session: CallSession) -> dict[str, tuple[str, QuerySet]]:
    member_events = (
        Event.objects.filter(event_type__startswith=MEMBER_EVENT_PREFIX)
        .alias(member_session=KeyTextTransform("session_uuid", "payload"))
        .filter(member_session=session.session_uuid)
    )
    return {
        # command.result events carry the session as their key; member events name it in the body
        # (both read through an index of their own: event_by_session, event_member_by_session).
        "c": ("event", _events(Event.objects.filter(room__isnull=True, ordering_key=session.session_uuid))),
        "m": ("event", _events(member_events)),
        "h": ("history", AuditEntry.objects.filter(session_uuid=session.session_uuid)),
    }


def parse_cursor(cursor: str | None, names) -> dict[str, int]:
    """`e12.h40` → {"e": 12, "h": 40}; anything malformed reads as the first page."""
    positions = {}
    for part in (cursor or "").split("."):
        name, digits = part[:1], part[1:]
        if name in names and digits.isascii() and digits.isdigit():
            positions[name] = int(digits)
    return positions


def page(
    sources: dict[str, tuple[str, QuerySet]],
    *,
    cursor: str | None = None,
    newest_first: bool = False,
    size: int = PAGE_SIZE,
) -> Page:
    """The next `size` entries after `cursor`, merged by time. Each source is read in id order
    and merged without reordering it, so what a page takes of a source is always a prefix and
    its cursor skips nothing, even where two hosts' clocks disagree a little."""
    positions = parse_cursor(cursor, sources)
    streams = []
    for name, (kind, queryset) in sources.items():
        if name in positions:
            queryset = queryset.filter(Q(id__lt=positions[name]) if newest_first else Q(id__gt=positions[name]))
        time_field = "created_at" if kind == "event" else "occurred_at"
        streams.append(
            [
                (getattr(item, time_field), name, kind, item)
                for item in queryset.order_by("-id" if newest_first else "id")[: size + 1]
            ]
        )
    merged = list(heapq.merge(*streams, key=lambda row: row[0], reverse=newest_first))
    taken = merged[:size]
    for _, name, _, item in taken:
        positions[name] = item.id
    next_cursor = ".".join(f"{name}{position}" for name, position in positions.items()) if len(merged) > size else None
    return Page(entries=[Entry(at=at, kind=kind, item=item) for at, _, kind, item in taken], next_cursor=next_cursor)

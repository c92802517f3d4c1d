"""A room's or a session's story for support staff: its events (with their deliveries and
attempts) and its history entries, merged in time order and paged by a cursor.

Each source is read through its own index (event_by_room, event_by_session, audit_by_room,
audit_by_session) from the cursor on, so a page costs the same at any depth and any table size.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from .models import AuditEntry, CallSession, Delivery, Event, Member, Room

PAGE_SIZE = 50


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # "event" or "history"
    item: Any  # an Event (deliveries and attempts prefetched) or an AuditEntry


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    newest_first: bool
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
    rooms = Member.objects.filter(session=session).values("room_id")
    return {
        # command.result events carry the session as their key; member events name it in the body.
        "c": ("event", _events(Event.objects.filter(room__isnull=True, ordering_key=session.session_uuid))),
        "m": ("event", _events(Event.objects.filter(room__in=rooms, payload__session_uuid=session.session_uuid))),
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


def page(sources: dict[str, tuple[str, QuerySet]], *, cursor: str | None = None, newest_first: bool = False,
         size: int = PAGE_SIZE) -> Page:
    """The next `size` entries after `cursor`. Within a source, id order is time order (ids
    follow commit order per room and session), so the first `size` entries of the merge are
    among the first `size` of each source."""
    positions = parse_cursor(cursor, sources)
    fetched: list[tuple[datetime, int, str, str, Any]] = []
    for name, (kind, queryset) in sources.items():
        if name in positions:
            queryset = queryset.filter(Q(id__lt=positions[name]) if newest_first else Q(id__gt=positions[name]))
        for item in queryset.order_by("-id" if newest_first else "id")[: size + 1]:
            at = item.created_at if kind == "event" else item.occurred_at
            fetched.append((at, item.id, name, kind, item))
    fetched.sort(key=lambda row: row[:2], reverse=newest_first)
    taken, more = fetched[:size], len(fetched) > size
    for _, item_id, name, _, _ in taken:
        positions[name] = item_id
    next_cursor = ".".join(f"{name}{position}" for name, position in positions.items()) if more else None
    return Page(entries=[Entry(at=at, kind=kind, item=item) for at, _, _, kind, item in taken],
                newest_first=newest_first, next_cursor=next_cursor)

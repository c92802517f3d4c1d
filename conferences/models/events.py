import uuid

from django.db import models
from django.db.models import F
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from .rooms import Room
from .tenants import App

MEMBER_EVENT_PREFIX = "conference.member."


class Event(models.Model):
    """A webhook event, written in the transaction of the state change that caused it (outbox).

    `id` is the sequence: writers of one ordering key hold that key's row lock (the room, or the
    session for command.result), so within a key ids follow commit order.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="events")
    event_type = models.CharField(max_length=64)
    ordering_key = models.CharField(max_length=80)
    room = models.ForeignKey(Room, on_delete=models.PROTECT, null=True, blank=True, related_name="events")
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # Room timeline in the admin.
            models.Index(fields=["room", "id"], name="event_by_room"),
            # Per-app listing in the admin.
            models.Index(fields=["app", "-id"], name="event_by_app"),
            # A session's command.result events (the only events without a room): its timeline.
            models.Index(fields=["ordering_key", "id"], condition=models.Q(room__isnull=True), name="event_by_session"),
            # A session's member events (they name it in the body): its timeline.
            models.Index(
                KeyTextTransform("session_uuid", "payload"),
                F("id"),
                condition=models.Q(event_type__startswith=MEMBER_EVENT_PREFIX),
                name="event_member_by_session",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.pk}"

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.uuid.hex}"

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .rooms import Room


class PlaybackState(models.TextChoices):
    PLAYING = "playing"
    PAUSED = "paused"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"


ACTIVE_PLAYBACK_STATES = (PlaybackState.PLAYING, PlaybackState.PAUSED)


class PlaybackOperation(models.Model):
    """One `play` from dispatch to its single terminal event (finished, failed or stopped).

    The watchdog's clock: `deadline_at` while playing; while paused the clock stops and
    `remaining_ms` keeps what was left of it.
    """

    operation_id = models.UUIDField(unique=True)
    room = models.ForeignKey(Room, on_delete=models.PROTECT, related_name="playbacks")
    urls = models.JSONField()
    state = models.CharField(max_length=8, choices=PlaybackState.choices, default=PlaybackState.PLAYING)
    dispatched_at = models.DateTimeField(default=timezone.now)
    deadline_at = models.DateTimeField(null=True, blank=True)
    remaining_ms = models.PositiveIntegerField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=32, blank=True)

    class Meta:
        constraints = [
            # One active playback per room.
            models.UniqueConstraint(
                fields=["room"], condition=Q(state__in=["playing", "paused"]), name="playback_one_active_per_room"
            ),
            models.CheckConstraint(
                condition=~Q(state="playing") | Q(deadline_at__isnull=False), name="playback_playing_has_deadline"
            ),
        ]
        indexes = [
            # The watchdog sweep: playing operations whose deadline has passed.
            models.Index(fields=["deadline_at"], condition=Q(state="playing"), name="playback_playing_deadline"),
        ]

    def __str__(self) -> str:
        return str(self.operation_id)

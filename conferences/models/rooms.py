from django.db import models
from django.db.models import Q
from django.utils import timezone

from .tenants import App

VOLUME_MIN, VOLUME_MAX = -50, 7


class PlaybackStatus(models.TextChoices):
    STOPPED = "stopped"
    PLAYING = "playing"
    PAUSED = "paused"


class RoomQuerySet(models.QuerySet):
    def live(self):
        return self.filter(destroyed_at__isnull=True)


class Room(models.Model):
    room_id = models.CharField(max_length=64, unique=True)
    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="rooms")
    name = models.CharField(max_length=64)
    node = models.CharField(max_length=5)
    playback_status = models.CharField(max_length=8, choices=PlaybackStatus.choices, default=PlaybackStatus.STOPPED)
    playback_operation_id = models.UUIDField(null=True, blank=True)
    playback_urls = models.JSONField(default=list, blank=True)
    volume = models.SmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    objects = RoomQuerySet.as_manager()

    class Meta:
        permissions = [("destroy_room", "Can destroy a room"), ("stop_playback", "Can stop a room's playback")]
        constraints = [
            # One live room per name and app; concurrent creates race on this index.
            models.UniqueConstraint(
                fields=["app", "name"],
                condition=Q(destroyed_at__isnull=True),
                name="room_live_name_unique",
            ),
            models.CheckConstraint(
                condition=Q(volume__gte=VOLUME_MIN, volume__lte=VOLUME_MAX), name="room_volume_range"
            ),
            models.CheckConstraint(
                condition=Q(playback_status__in=PlaybackStatus.values), name="room_playback_status_valid"
            ),
            models.CheckConstraint(
                condition=(
                    Q(playback_status=PlaybackStatus.STOPPED, playback_operation_id__isnull=True)
                    | (~Q(playback_status=PlaybackStatus.STOPPED) & Q(playback_operation_id__isnull=False))
                ),
                name="room_playback_operation_iff_active",
            ),
        ]
        indexes = [
            # GET /conferences: an app's live rooms, newest first, by cursor on id.
            models.Index(fields=["app", "-id"], condition=Q(destroyed_at__isnull=True), name="room_live_by_app"),
            # Admin filter by node.
            models.Index(fields=["node"], name="room_node"),
        ]

    def __str__(self) -> str:
        return self.room_id

    @property
    def is_live(self) -> bool:
        return self.destroyed_at is None

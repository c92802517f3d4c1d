from django.db import models
from django.db.models import F, Q
from django.db.models.fields.json import KT
from django.utils import timezone

from .rooms import Room


class EngineCommandName(models.TextChoices):
    JOIN = "join"
    KICK = "kick"
    MUTE = "mute"
    UNMUTE = "unmute"
    PLAY = "play"
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    SET_VOLUME = "set_volume"
    DESTROY_ROOM = "destroy_room"


class EngineCommandStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class EngineCommand(models.Model):
    """A command to the media engine (the engine outbox).

    Written in the transaction of the state change that needs it and sent after commit, in
    order per room, one at a time per room: a room's pending command with the lowest id is the
    head of its queue, and only a head is sent. A claim sets `attempts` and the lease; a finish
    that matches its own attempt number ends or reschedules it.
    """

    room = models.ForeignKey(Room, on_delete=models.PROTECT, related_name="engine_commands")
    command = models.CharField(max_length=12, choices=EngineCommandName.choices)
    arguments = models.JSONField()
    status = models.CharField(max_length=7, choices=EngineCommandStatus.choices, default=EngineCommandStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # Joins and plays: past this a retry is pointless (the join or play has timed out by then),
    # so the command fails and takes its failure path instead.
    give_up_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=EngineCommandStatus.values), name="engine_command_status_valid"
            ),
            models.CheckConstraint(condition=Q(command__in=EngineCommandName.values), name="engine_command_name_valid"),
            models.CheckConstraint(
                condition=Q(status=EngineCommandStatus.PENDING, completed_at__isnull=True)
                | (~Q(status=EngineCommandStatus.PENDING) & Q(completed_at__isnull=False)),
                name="engine_command_completed_iff_done",
            ),
        ]
        indexes = [
            # A room's queue: its head is the lowest pending id.
            models.Index(fields=["room", "id"], condition=Q(status="pending"), name="engine_command_queue"),
            # The claim and the re-drive: what is due, oldest first.
            models.Index(fields=["next_attempt_at", "id"], condition=Q(status="pending"), name="engine_command_due"),
            # A join waits for its session's earlier commands.
            models.Index(
                KT("arguments__session_uuid"), F("id"), condition=Q(status="pending"), name="engine_command_by_session"
            ),
            # Retention pruning.
            models.Index(fields=["created_at"], name="engine_command_created_at"),
        ]

    def __str__(self) -> str:
        return f"{self.command} #{self.pk}"

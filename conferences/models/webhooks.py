import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from .tenants import App


def mint_endpoint_id() -> str:
    return f"ep_{uuid.uuid4().hex}"


def url_without_query(url: str) -> str:
    """The URL as history and the console show it: a query (or fragment) may hold a token."""
    return url.split("?", 1)[0].split("#", 1)[0]


class WebhookEndpointQuerySet(models.QuerySet):
    def current(self):
        """Not deleted: what the app sees and manages (staff see the deleted ones too)."""
        return self.filter(deleted_at__isnull=True)


class WebhookEndpoint(models.Model):
    endpoint_id = models.CharField(max_length=35, unique=True, default=mint_endpoint_id, editable=False)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2048)
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=100)
    # During rotation the previous secret keeps signing until it expires (several signatures).
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # Empty means every event (services/fan_out.py applies the filter).
    event_types = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Deleted by the app: gone from the API, disabled, its delivery history kept for staff.
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        verbose_name = "webhook endpoint"
        permissions = [
            ("disable_endpoint", "Can disable or enable an endpoint"),
            ("recover_endpoint", "Can queue an endpoint's failed deliveries again"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(deleted_at__isnull=True) | models.Q(enabled=False),
                name="endpoint_deleted_is_disabled",
            ),
        ]
        indexes = [
            # An app's endpoints, newest first (the API's list and its 10-endpoint limit).
            models.Index(
                fields=["app", "-id"], condition=models.Q(deleted_at__isnull=True), name="endpoint_current_by_app"
            ),
        ]

    def __str__(self) -> str:
        return self.display_url

    @property
    def display_url(self) -> str:
        return url_without_query(self.url)


QUEUE_POSITION_SEQUENCE = "conferences_delivery_queue_position_seq"


class NextQueuePosition(models.Func):
    """The next value of the queue-position sequence (a delivery's place in its queue)."""

    template = f"nextval('{QUEUE_POSITION_SEQUENCE}')"
    output_field = models.BigIntegerField()


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # in flight while its lease runs (lease_expires_at in the future)
    DELIVERED = "delivered"
    FAILED = "failed"


class Delivery(models.Model):
    """One event to one endpoint. Deliveries sharing (endpoint, ordering_key) form a queue that
    is sent head first: the lowest pending `queue_position`. A position is taken from a sequence
    when the delivery is written (in the order of its room's events) and again when it is sent
    once more (redelivery, recovery), so what is re-queued goes after what is pending.

    A claim only sets the lease and the counters, never `status` or an indexed column, so
    PostgreSQL updates the row in place (HOT) without touching the indexes: the send path
    costs two index updates per event instead of twelve.
    """

    # Both foreign keys are covered by composite indexes below; no separate index for them.
    event = models.ForeignKey("conferences.Event", on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    ordering_key = models.CharField(max_length=80)
    queue_position = models.BigIntegerField(db_default=NextQueuePosition())
    status = models.CharField(max_length=9, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    # Attempts in the current round; a redelivery starts a new round.
    attempts = models.PositiveIntegerField(default=0)
    # Attempts over all rounds: the number of the next attempt record.
    total_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # Set while a worker sends it; once past, another worker may take it over (one that died).
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        permissions = [("redeliver_delivery", "Can redeliver a delivery")]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_once_per_endpoint"),
        ]
        indexes = [
            # The head of a queue: lowest pending position for (endpoint, ordering_key); a queue's
            # tail (fan-out); the endpoints that have pending deliveries (the claim's skip scan).
            models.Index(
                fields=["endpoint", "ordering_key", "queue_position"],
                condition=models.Q(status="pending"),
                name="delivery_pending_queue",
            ),
            # The claim: an endpoint's due deliveries, oldest first.
            models.Index(
                fields=["endpoint", "next_attempt_at", "id"],
                condition=models.Q(status="pending"),
                name="delivery_pending_due",
            ),
            # Admin: an endpoint's deliveries by status, newest first; bulk redelivery of failures.
            models.Index(fields=["endpoint", "status", "-id"], name="delivery_by_endpoint_status"),
        ]

    def __str__(self) -> str:
        return f"delivery #{self.pk} ({self.state})"

    @property
    def state(self) -> str:
        """pending, in flight, delivered or failed."""
        if self.status == DeliveryStatus.PENDING and self.lease_expires_at and self.lease_expires_at > timezone.now():
            return "in flight"
        return self.status


class DeliveryAttempt(models.Model):
    """Written before the request goes out and completed after, so a crash leaves a trace."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)  # at most 2 KB
    error = models.TextField(blank=True)

    class Meta:
        indexes = [
            # Retention pruning.
            models.Index(fields=["started_at"], name="attempt_started_at"),
        ]
        ordering = ["id"]

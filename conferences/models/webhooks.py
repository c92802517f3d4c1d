from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from .tenants import App


class WebhookEndpoint(models.Model):
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2048)
    secret = models.CharField(max_length=100)
    # During rotation the previous secret keeps signing until it expires (several signatures).
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # Empty means every event.
    event_types = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DELIVERED = "delivered"
    FAILED = "failed"


OPEN_DELIVERY_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT)


class Delivery(models.Model):
    """One event to one endpoint. Deliveries sharing (endpoint, ordering_key) form a queue that
    is sent head first: the lowest id that is pending or in flight."""

    event = models.ForeignKey("conferences.Event", on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    ordering_key = models.CharField(max_length=80)
    status = models.CharField(max_length=9, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    # Attempts in the current round; a redelivery starts a new round (attempt rows keep them all).
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # While in flight: when another worker may take it over (a worker that died mid-send).
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_once_per_endpoint"),
        ]
        indexes = [
            # The head of a queue: lowest open id for (endpoint, ordering_key); also re-drive's scan.
            models.Index(
                fields=["endpoint", "ordering_key", "id"],
                condition=models.Q(status__in=["pending", "in_flight"]),
                name="delivery_open_queue",
            ),
            # Admin: an endpoint's deliveries by status, newest first; bulk redelivery of failures.
            models.Index(fields=["endpoint", "status", "-id"], name="delivery_by_endpoint_status"),
        ]

    def __str__(self) -> str:
        return f"delivery #{self.pk} ({self.status})"


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

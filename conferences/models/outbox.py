from django.db import models


class OutboxWake(models.Model):
    """Coalesces the wake-ups of an outbox's dispatcher: one row per outbox kind.

    `requested_at` is set by the commit that publishes a wake-up and cleared by the worker that
    consumes one, before it claims; commits in between publish nothing, since that worker's
    claim will see them. A set flag older than a few seconds is taken as lost (a message the
    broker dropped), so it never blocks wake-ups for long. The first wake-up creates the row.
    """

    kind = models.CharField(max_length=20, primary_key=True)
    requested_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.kind

"""Events, their deliveries and attempts, and endpoints: where a late or missing webhook is
explained. Redelivery, recovery, disabling and enabling go through services.endpoints; only
superusers rotate a secret. Nothing here deletes an endpoint: its delivery history stays."""

from django import forms
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Q
from django.template.response import TemplateResponse

from ..event_schema import event_schemas
from ..models import Delivery, DeliveryAttempt, Event, Room, WebhookEndpoint
from ..services import endpoints
from .base import ReadOnlyAdmin, ReadOnlyInline, SuperuserManages, staff_actor


class EventTypeFilter(admin.SimpleListFilter):
    title, parameter_name = "event type", "event_type"

    def lookups(self, request, model_admin):
        return [(name, name) for name in sorted(event_schemas())]

    def queryset(self, request, queryset):
        return queryset.filter(event_type=self.value()) if self.value() else queryset


def _by_room_or_key(term: str) -> Q:
    """Events of a room (by room_id), of a session (command.result, by session_uuid), or one
    event by its webhook-id."""
    if term.startswith("msg_"):
        return Q(uuid=term[4:]) if _is_hex_uuid(term[4:]) else Q(pk__in=[])
    room_pk = Room.objects.filter(room_id=term).values_list("pk", flat=True).first()
    return Q(room=room_pk) if room_pk else Q(room__isnull=True, ordering_key=term)


def _is_hex_uuid(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    fields = ["endpoint", "status", "attempts", "next_attempt_at", "completed_at", "last_status_code", "last_error"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("endpoint")


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["id", "event_type", "app", "ordering_key", "created_at", "webhook_id"]
    list_filter = [EventTypeFilter, "app"]
    search_fields = ["ordering_key"]  # see search()
    search_help_text = "A room_id, a session_uuid (its command.result events) or a webhook-id (msg_…)."
    list_select_related = ["app"]
    readonly_fields = ["webhook_id", "event_type", "app", "room", "ordering_key", "created_at", "payload"]
    fields = readonly_fields
    inlines = [DeliveryInline]

    def search(self, queryset, term):
        return queryset.filter(_by_room_or_key(term))


class DeliveryAttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    fields = ["number", "started_at", "duration_ms", "status_code", "error", "response_excerpt"]


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdmin):
    list_display = ["id", "delivery", "number", "started_at", "duration_ms", "status_code", "error"]
    search_fields = ["delivery__id"]  # see search()
    search_help_text = "A delivery id."
    list_select_related = ["delivery"]
    readonly_fields = [f.name for f in DeliveryAttempt._meta.fields]

    def search(self, queryset, term):
        is_id = term.isascii() and term.isdigit() and len(term) < 19
        return queryset.filter(delivery_id=int(term)) if is_id else queryset.none()


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "endpoint",
        "event",
        "ordering_key",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "created_at",
        "completed_at",
    ]
    list_filter = ["status"]
    search_fields = ["ordering_key"]  # see search()
    search_help_text = "A room_id, a session_uuid, a webhook-id (msg_…) or an endpoint_id (ep_…)."
    list_select_related = ["endpoint", "event"]
    readonly_fields = [
        "event",
        "endpoint",
        "ordering_key",
        "state",
        "attempts",
        "total_attempts",
        "next_attempt_at",
        "lease_expires_at",
        "created_at",
        "completed_at",
        "last_status_code",
        "last_error",
    ]
    fields = readonly_fields
    inlines = [DeliveryAttemptInline]
    actions = ["redeliver"]

    def search(self, queryset, term):
        if term.startswith("ep_"):
            return queryset.filter(endpoint__endpoint_id=term)
        return queryset.filter(event__in=Event.objects.filter(_by_room_or_key(term)).values("pk"))

    def has_redeliver_permission(self, request):
        return request.user.has_perm("conferences.redeliver_delivery")

    @admin.action(description="Redeliver the selected deliveries", permissions=["redeliver"])
    def redeliver(self, request, queryset):
        self.report(
            request,
            queryset.select_related("endpoint__app", "event"),
            lambda delivery: (
                endpoints.redeliver(actor=staff_actor(request), delivery=delivery)
                or "queued again under the same webhook-id"
            ),
        )


class RecoverForm(forms.Form):
    since = forms.DateTimeField(
        help_text="Failed deliveries created at or after this time are queued again (YYYY-MM-DD HH:MM:SS, UTC)."
    )


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(SuperuserManages, ReadOnlyAdmin):
    """Endpoints an app deleted stay here with their deliveries (deleted_at set)."""

    list_display = ["endpoint_id", "app", "display_url", "enabled", "disabled_reason", "created_at", "deleted_at"]
    list_filter = ["enabled", ("deleted_at", admin.EmptyFieldListFilter), "app"]
    search_fields = ["=endpoint_id", "url", "=app__app_id"]
    list_select_related = ["app"]
    # Secrets are never shown again after creation or rotation; the URL without its query (it
    # may hold a token).
    exclude = ["secret", "previous_secret", "url"]
    readonly_fields = [
        "endpoint_id",
        "app",
        "display_url",
        "description",
        "event_types",
        "enabled",
        "disabled_reason",
        "previous_secret_expires_at",
        "created_at",
        "deleted_at",
    ]
    actions = ["disable", "enable", "recover", "rotate_secret"]

    # Read-only: changes go through the actions (the app changes its own over the API); deleting
    # would take the delivery history with it: disable instead.

    def has_disable_permission(self, request):
        return request.user.has_perm("conferences.disable_endpoint")

    def has_recover_permission(self, request):
        return request.user.has_perm("conferences.recover_endpoint")

    @admin.action(description="Disable the selected endpoints (what waits fails)", permissions=["disable"])
    def disable(self, request, queryset):
        self.report(
            request,
            queryset.select_related("app"),
            lambda endpoint: (
                "disabled"
                if endpoints.disable_endpoint(actor=staff_actor(request), endpoint=endpoint, reason="Disabled by staff")
                else "was disabled already"
            ),
        )

    @admin.action(description="Enable the selected endpoints", permissions=["disable"])
    def enable(self, request, queryset):
        self.report(
            request,
            queryset.select_related("app"),
            lambda endpoint: (
                "enabled"
                if endpoints.enable_endpoint(actor=staff_actor(request), endpoint=endpoint)
                else "was enabled already"
            ),
        )

    @admin.action(description="Recover failed deliveries since a time…", permissions=["recover"])
    def recover(self, request, queryset):
        form = RecoverForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return TemplateResponse(
                request,
                "admin/conferences/recover_since.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.opts,
                    "title": "Recover failed deliveries",
                    "endpoints": queryset,
                    "form": form,
                    "action_checkbox_name": ACTION_CHECKBOX_NAME,
                },
            )
        since = form.cleaned_data["since"]

        def recover(endpoint):
            queued = endpoints.redeliver_failed(actor=staff_actor(request), endpoint=endpoint, since=since)
            return f"{queued} deliveries queued again"

        self.report(request, queryset.select_related("app"), recover)

    @admin.action(description="Rotate the secret (the new one is shown once)", permissions=["manage"])
    def rotate_secret(self, request, queryset):
        def rotate(endpoint):
            secret = endpoints.rotate_secret(actor=staff_actor(request), endpoint=endpoint)
            return f"new secret {secret} (copy it now: it is not shown again; the previous one signs for 24 hours)"

        self.report(
            request,
            queryset.select_related("app"),
            rotate,
        )

"""Admin for support staff: what SPEC section 8 needs now (failed deliveries visible and
redeliverable, endpoints disabled and enabled) and the engine outbox (a room's commands to
the engine, read-only). Actions only call services."""

from django.contrib import admin, messages

from .actors import Actor
from .errors import ServiceError
from .models import Delivery, DeliveryAttempt, EngineCommand, WebhookEndpoint
from .services import endpoints


def _staff(request) -> Actor:
    return Actor.staff(request.user.get_username())


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["number", "started_at", "duration_ms", "status_code", "error", "response_excerpt"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "endpoint", "ordering_key", "event", "status", "attempts", "next_attempt_at", "last_status_code"]
    list_filter = ["status"]
    search_fields = ["ordering_key"]
    list_select_related = ["endpoint", "event"]
    raw_id_fields = ["event", "endpoint"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = [DeliveryAttemptInline]
    actions = ["redeliver"]
    show_full_result_count = False  # no COUNT(*) over a million rows

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Redeliver the selected deliveries")
    def redeliver(self, request, queryset):
        for delivery in queryset.select_related("endpoint__app"):
            try:
                endpoints.redeliver(actor=_staff(request), delivery=delivery)
            except ServiceError as exc:
                self.message_user(request, f"#{delivery.pk}: {exc.message}", messages.WARNING)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Endpoints an app deleted stay here with their deliveries (deleted_at set)."""

    list_display = ["endpoint_id", "app", "url", "enabled", "disabled_reason", "created_at", "deleted_at"]
    list_filter = ["enabled", ("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["=endpoint_id", "url", "app__app_id"]
    list_select_related = ["app"]
    exclude = ["secret", "previous_secret"]
    readonly_fields = ["endpoint_id", "app", "url", "description", "event_types", "enabled", "disabled_reason",
                       "previous_secret_expires_at", "created_at", "deleted_at"]
    actions = ["disable", "enable"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # deleting would take the delivery history with it: disable instead

    @admin.action(description="Disable the selected endpoints")
    def disable(self, request, queryset):
        for endpoint in queryset.select_related("app"):
            endpoints.disable_endpoint(actor=_staff(request), endpoint=endpoint, reason="Disabled by staff")

    @admin.action(description="Enable the selected endpoints")
    def enable(self, request, queryset):
        for endpoint in queryset.select_related("app"):
            try:
                endpoints.enable_endpoint(actor=_staff(request), endpoint=endpoint)
            except ServiceError as exc:
                self.message_user(request, f"{endpoint.endpoint_id}: {exc.message}", messages.WARNING)


@admin.register(EngineCommand)
class EngineCommandAdmin(admin.ModelAdmin):
    """A room's commands to the engine, in the order they are sent: search by room id."""

    list_display = ["id", "room", "command", "status", "attempts", "created_at", "completed_at", "last_error"]
    list_filter = ["status", "command"]
    search_fields = ["=room__room_id"]
    list_select_related = ["room"]
    readonly_fields = [f.name for f in EngineCommand._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

"""The audit history and the engine outbox: read-only for everyone, superusers included."""

from django.contrib import admin
from django.db.models import Q

from ..models import AuditEntry, EngineCommand, Room
from .base import ReadOnlyAdmin, indexed_values_filter


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "actor_kind", "actor", "action", "outcome", "app_id", "room_id", "session_uuid",
                    "operation_id"]
    list_filter = [
        "actor_kind",
        indexed_values_filter("action", "action"),
        indexed_values_filter("app_id", "app"),
        indexed_values_filter("outcome", "outcome", where="outcome <> 'ok'", always=("ok",)),
    ]
    search_fields = ["room_id"]  # see get_search_results
    search_help_text = "A room_id, a session_uuid, an operation_id or an app_id (exact)."
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(room_id=term) | Q(session_uuid=term) | Q(operation_id=term) | Q(app_id=term)), False


@admin.register(EngineCommand)
class EngineCommandAdmin(ReadOnlyAdmin):
    """A room's commands to the engine, in the order they are sent: search by room id."""

    list_display = ["id", "room", "command", "status", "attempts", "created_at", "completed_at", "last_error"]
    list_filter = ["status", "command"]
    search_fields = ["room__room_id"]  # see get_search_results
    search_help_text = "A room_id."
    list_select_related = ["room"]
    readonly_fields = [f.name for f in EngineCommand._meta.fields]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(room__in=Room.objects.filter(room_id=term).values("pk")), False

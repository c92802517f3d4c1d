"""The audit history, the engine outbox, command records and the outbox wake-up flags:
read-only for everyone, superusers included."""

from django.contrib import admin
from django.db.models import Q

from ..models import AuditEntry, CommandRecord, EngineCommand, OutboxWake, Room
from .base import ReadOnlyAdmin, indexed_values_filter


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "occurred_at",
        "actor_kind",
        "actor",
        "action",
        "outcome",
        "app_id",
        "room_id",
        "session_uuid",
        "operation_id",
    ]
    list_filter = [
        "actor_kind",
        indexed_values_filter("action", "action"),
        indexed_values_filter("app_id", "app"),
        indexed_values_filter("outcome", "outcome", where="outcome <> 'ok'", always=("ok",)),
    ]
    search_fields = ["room_id"]  # see search()
    search_help_text = "A room_id, a session_uuid, an operation_id or an app_id (exact)."
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def search(self, queryset, term):
        return queryset.filter(Q(room_id=term) | Q(session_uuid=term) | Q(operation_id=term) | Q(app_id=term))


@admin.register(EngineCommand)
class EngineCommandAdmin(ReadOnlyAdmin):
    """A room's commands to the engine, in the order they are sent: search by room id."""

    list_display = ["id", "room", "command", "status", "attempts", "created_at", "completed_at", "last_error"]
    list_filter = ["status", "command"]
    search_fields = ["room__room_id"]  # see search()
    search_help_text = "A room_id."
    list_select_related = ["room"]
    readonly_fields = [f.name for f in EngineCommand._meta.fields]

    def search(self, queryset, term):
        return queryset.filter(room__in=Room.objects.filter(room_id=term).values("pk"))


@admin.register(CommandRecord)
class CommandRecordAdmin(ReadOnlyAdmin):
    """The first answer to each session command sent with a command_uid (kept 24 hours)."""

    list_display = ["created_at", "app", "session_uuid", "command", "command_uid"]
    list_filter = ["command"]
    search_fields = ["session_uuid__exact", "command_uid__exact"]
    list_select_related = ["app"]
    readonly_fields = [f.name for f in CommandRecord._meta.fields]


@admin.register(OutboxWake)
class OutboxWakeAdmin(ReadOnlyAdmin):
    """Whether a dispatcher (webhooks, engine) has been asked to look for work."""

    list_display = [f.name for f in OutboxWake._meta.fields]
    readonly_fields = list_display
    ordering = ["kind"]

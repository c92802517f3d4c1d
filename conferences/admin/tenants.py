"""Apps and their API keys. Only superusers create apps, issue and revoke keys, and disable
apps; support staff see them, never a key's hash. Nothing here deletes an app: its rooms,
events and delivery history stay; disable it instead."""

from django import forms
from django.contrib import admin, messages
from django.db.models import OuterRef

from ..errors import ServiceError
from ..models import ApiKey, App, Room, WebhookEndpoint
from ..services import endpoints, tenants
from .base import ConsoleAdmin, ReadOnlyAdmin, ReadOnlyInline, SuperuserManages, count_per_row, staff_actor


class ApiKeyInline(ReadOnlyInline):
    model = ApiKey
    fields = ["prefix", "label", "created_at", "last_used_at", "revoked_at"]


class EndpointInline(ReadOnlyInline):
    model = WebhookEndpoint
    fields = ["endpoint_id", "display_url", "enabled", "disabled_reason", "deleted_at"]


class AppCreationForm(forms.ModelForm):
    webhook_url = forms.CharField(required=False, max_length=2048, help_text="Optional: an endpoint for every event.")

    class Meta:
        model = App
        fields = ["app_id", "name"]

    def clean_webhook_url(self):
        url = self.cleaned_data["webhook_url"] or None
        if url:
            try:
                endpoints.validate_endpoint(url=url)
            except ServiceError as exc:
                raise forms.ValidationError((exc.detail or {}).get("url") or exc.message) from None
        return url


@admin.register(App)
class AppAdmin(SuperuserManages, ConsoleAdmin):
    list_display = ["app_id", "name", "enabled", "endpoints", "live_rooms", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["app_id", "name"]
    readonly_fields = ["app_id", "name", "enabled", "created_at"]
    inlines = [ApiKeyInline, EndpointInline]
    actions = ["issue_api_key", "disable", "enable"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                endpoint_count=count_per_row(WebhookEndpoint.objects.current().filter(app=OuterRef("pk")), "app"),
                live_room_count=count_per_row(Room.objects.live().filter(app=OuterRef("pk")), "app"),
            )
        )

    @admin.display(ordering="endpoint_count")
    def endpoints(self, app):
        return app.endpoint_count

    @admin.display(ordering="live_room_count", description="live rooms")
    def live_rooms(self, app):
        return app.live_room_count

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return False  # read-only; changes go through the actions

    def has_delete_permission(self, request, obj=None):
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = AppCreationForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else []

    def get_inlines(self, request, obj):
        return self.inlines if obj else []

    def save_model(self, request, obj, form, change):
        created = tenants.create_app(
            actor=staff_actor(request),
            app_id=form.cleaned_data["app_id"],
            name=form.cleaned_data["name"],
            webhook_url=form.cleaned_data["webhook_url"],
        )
        obj.pk = created.app.pk
        shown_once = f"App {created.app.app_id}: API key {created.api_key}"
        if created.webhook_secret:
            shown_once += f", webhook secret {created.webhook_secret}"
        self.message_user(request, f"{shown_once}. Copy them now: they are not shown again.", messages.WARNING)

    def save_related(self, request, form, formsets, change):
        pass  # create_app made everything

    @admin.action(description="Issue a new API key (shown once)", permissions=["manage"])
    def issue_api_key(self, request, queryset):
        def issue(app):
            api_key, plain_key = tenants.issue_api_key(actor=staff_actor(request), app=app, label="issued by staff")
            return f"new API key {plain_key} (prefix {api_key.prefix}; copy it now: it is not shown again)"

        self.report(request, queryset, issue)

    @admin.action(description="Disable the selected apps (their API calls answer 403)", permissions=["manage"])
    def disable(self, request, queryset):
        self.report(
            request,
            queryset,
            lambda app: (
                "disabled"
                if tenants.set_app_enabled(actor=staff_actor(request), app=app, enabled=False)
                else "was already disabled"
            ),
        )

    @admin.action(description="Enable the selected apps", permissions=["manage"])
    def enable(self, request, queryset):
        self.report(
            request,
            queryset,
            lambda app: (
                "enabled"
                if tenants.set_app_enabled(actor=staff_actor(request), app=app, enabled=True)
                else "was already enabled"
            ),
        )


@admin.register(ApiKey)
class ApiKeyAdmin(SuperuserManages, ReadOnlyAdmin):
    list_display = ["prefix", "app", "label", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "app__app_id"]
    list_select_related = ["app"]
    exclude = ["key_hash"]
    readonly_fields = ["prefix", "app", "label", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.action(description="Revoke the selected keys", permissions=["manage"])
    def revoke(self, request, queryset):
        self.report(
            request,
            queryset.select_related("app"),
            lambda key: (
                "revoked" if tenants.revoke_api_key(actor=staff_actor(request), api_key=key) else "was already revoked"
            ),
        )

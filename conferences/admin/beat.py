"""Periodic tasks: support may switch one on or off and change its interval; only superusers
change what it runs (task, arguments, routing) or run it by hand."""

from django import forms
from django.contrib import admin
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

SCHEDULE_FIELDS = ("enabled", "interval")


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = PeriodicTask
        fields = SCHEDULE_FIELDS


class SupervisedPeriodicTaskAdmin(PeriodicTaskAdmin):
    def _is_superuser(self, request) -> bool:
        return request.user.is_superuser

    def get_form(self, request, obj=None, change=False, **kwargs):
        if not self._is_superuser(request):
            kwargs["form"] = ScheduleForm  # no task or argument fields to post, whatever is sent
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if self._is_superuser(request):
            return super().get_fieldsets(request, obj)
        return [
            (
                None,
                {"fields": ["name", "task", *SCHEDULE_FIELDS, "last_run_at", "args", "kwargs", "queue", "description"]},
            )
        ]

    def get_readonly_fields(self, request, obj=None):
        if self._is_superuser(request):
            return super().get_readonly_fields(request, obj)
        return ["name", "task", "last_run_at", "args", "kwargs", "queue", "description"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self._is_superuser(request):
            actions.pop("run_tasks", None)
        return actions


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, SupervisedPeriodicTaskAdmin)

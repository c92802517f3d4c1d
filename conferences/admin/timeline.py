"""The timeline page of a room or a session: a template under the top-level `templates/`."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from .. import timeline


class TimelineMixin:
    """Adds `<pk>/timeline/` to a ModelAdmin and a link to it on the object's page."""

    change_form_template = "admin/conferences/change_form_with_timeline.html"

    def timeline_sources(self, obj) -> dict:
        raise NotImplementedError

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view(self.timeline_view)
        return [path("<path:object_id>/timeline/", view, name="{}_{}_timeline".format(*info)), *super().get_urls()]

    def timeline_view(self, request, object_id):
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with id {object_id}")
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        newest_first = request.GET.get("order") == "newest"
        page = timeline.page(self.timeline_sources(obj), cursor=request.GET.get("cursor"), newest_first=newest_first)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "object": obj,
            "title": f"Timeline of {self.opts.verbose_name} {obj}",
            "page": page,
            "order": "newest" if newest_first else "oldest",
            "object_url": reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk]),
        }
        return TemplateResponse(request, "admin/conferences/timeline.html", context)


@admin.display(description="timeline")
def timeline_link(obj):
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_timeline", args=[obj.pk])
    return format_html('<a href="{}">timeline</a>', url)

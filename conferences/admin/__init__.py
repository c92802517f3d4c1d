"""The support console (SPEC 10): every model, actions through the services with the staff
user as the actor, and room and session timelines."""

from django.contrib import admin

from . import beat, history, rooms, tenants, webhooks  # noqa: F401  registers the pages

admin.site.site_header = admin.site.site_title = "Conference control plane"
admin.site.index_title = "Support console"

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from conferences.api import health

urlpatterns = [
    path("api/v1/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularRedocView.as_view(url_name="schema"), name="docs"),
    path("api/v1/", include("conferences.api.urls")),
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path("admin/", admin.site.urls),
    path("metrics", health.metrics, name="prometheus-django-metrics"),
]
if settings.DEV_INBOX:
    urlpatterns.append(path("dev/", include("conferences.dev_inbox")))

handler400 = "conferences.api.errors.bad_request"
handler403 = "conferences.api.errors.permission_denied"
handler404 = "conferences.api.errors.page_not_found"
handler500 = "conferences.api.errors.server_error"

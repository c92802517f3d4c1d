import hmac

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django_prometheus.exports import ExportToDjangoView
from prometheus_client import generate_latest

from project.celery import app as celery_app

from .. import metrics as domain_metrics
from .errors import error_body


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Ready when the database answers and the broker accepts a connection (2 s each at most)."""
    failures = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 2000; SELECT 1")
    except Exception as exc:  # any failure means not ready; the reason goes in the body
        failures["database"] = type(exc).__name__
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)  # no 2 s pause between tries
    except Exception as exc:
        failures["broker"] = type(exc).__name__
    if failures:
        return JsonResponse(error_body("Not ready", "not_ready", failures), status=503)
    return JsonResponse({"status": "ok", "database": "ok", "broker": "ok"})


def metrics(request):
    """Prometheus' page: this process's request and database metrics, then the domain metrics
    (conferences/metrics.py); with METRICS_TOKEN set, only for `Authorization: Bearer <token>`."""
    expected = settings.METRICS_TOKEN
    if expected:
        header = request.headers.get("Authorization", "")
        given = header[7:] if header.startswith("Bearer ") else ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            response = JsonResponse(error_body("A valid metrics token is required", "not_authenticated"), status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    response = ExportToDjangoView(request)
    # Appended rather than registered with prometheus_client's default registry, which
    # django-prometheus leaves aside in multiprocess mode; they are read from the database.
    response.content += generate_latest(domain_metrics.registry)
    return response

"""The one place that turns every error into the spec's shape:
{"success": false, "error": <message>, "code": <snake_case>, "detail": <object or null>}.
"""

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from ..errors import ServiceError

logger = logging.getLogger(__name__)

CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


def error_body(message: str, code: str, detail: dict | None = None) -> dict:
    return {"success": False, "error": message, "code": code, "detail": detail}


def _plain(detail):
    """DRF's ErrorDetail tree as plain JSON values: each field maps to a list of messages,
    errors inside a list or object included (SPEC 3: `{"urls": ["Item 3: Enter a valid URL."]}`)."""
    if isinstance(detail, dict):
        return {str(key): _messages(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [str(item) for item in detail]
    return str(detail)


def _messages(detail, prefix: str = "") -> list[str]:
    """The messages of one field, those of its items and members prefixed by where they are
    (items numbered from 1)."""
    if isinstance(detail, dict):
        return [message for key, value in detail.items() for message in _messages(value, f"{prefix}{_place(key)}: ")]
    if isinstance(detail, list):
        return [message for item in detail for message in _messages(item, prefix)]
    return [f"{prefix}{detail}"]


def _place(key) -> str:
    key = str(key)
    return f"Item {int(key) + 1}" if key.isdigit() else key


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        field, value = next(iter(detail.items()))
        inner = _first_message(value)
        return inner if field in ("non_field_errors", "body") else f"{field}: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def validation_error_body(detail) -> dict:
    detail = _plain(detail)
    if not isinstance(detail, dict):
        detail = {"non_field_errors": detail if isinstance(detail, list) else [detail]}
    return error_body(f"Invalid request: {_first_message(detail)}", "invalid", detail)


def exception_handler(exc, context):
    headers = {}
    if isinstance(exc, ServiceError):
        return Response(error_body(exc.message, exc.code, exc.detail), status=exc.status)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("Request body too large", "payload_too_large"), status=413)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.ValidationError):
        return Response(validation_error_body(exc.detail), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ParseError):
        body = error_body(f"Invalid request: {exc.detail}", "invalid", {"body": [str(exc.detail)]})
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.APIException):
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait) + 1)
        code = CODES.get(type(exc)) or (exc.default_code if isinstance(exc.default_code, str) else "error")
        if isinstance(exc, exceptions.PermissionDenied) and code == "permission_denied":
            code = "forbidden"
        message = exc.detail if isinstance(exc.detail, str) else str(exc.default_detail)
        return Response(error_body(str(message), code), status=exc.status_code, headers=headers)
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database cannot be reached (SPEC 12): a retryable 503, as /readyz says.
        logger.error("database unavailable in %s: %s", context.get("view"), exc)
        return Response(
            error_body("The database is unavailable; try again shortly", "service_unavailable"),
            status=503,
            headers={"Retry-After": "5"},
        )
    logger.exception("Unhandled error in %s", context.get("view"))
    return Response(error_body("Internal server error", "internal_error"), status=500)


# Django's own handlers (urls.handler400 etc.), for errors outside DRF views.
def bad_request(request, exception=None):
    return JsonResponse(error_body("Bad request", "bad_request"), status=400)


def permission_denied(request, exception=None):
    return JsonResponse(error_body("Forbidden", "forbidden"), status=403)


def page_not_found(request, exception=None):
    return JsonResponse(error_body("Not found", "not_found"), status=404)


def server_error(request):
    return JsonResponse(error_body("Internal server error", "internal_error"), status=500)

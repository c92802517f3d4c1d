from django.conf import settings
from rest_framework import exceptions, permissions, throttling
from rest_framework.authentication import BaseAuthentication

from project import logs

from .. import ratelimit
from ..actors import Actor
from ..ratelimit import Rate
from ..services.tenants import find_api_key


def refuse_a_failing_address(request) -> None:
    """An address that keeps failing authentication (API keys, the engine's token) is refused
    before anything is checked, so guessing gets no answer (429 with Retry-After)."""
    failures = Rate.parse(settings.AUTH_FAILURE_RATE_LIMIT)
    if (wait := ratelimit.hit("auth-failure", request.META.get("REMOTE_ADDR", ""), failures, count=False)) is not None:
        raise exceptions.Throttled(wait)


def count_a_failure(request) -> None:
    ratelimit.hit("auth-failure", request.META.get("REMOTE_ADDR", ""), Rate.parse(settings.AUTH_FAILURE_RATE_LIMIT))


class AppKeyAuthentication(BaseAuthentication):
    """`X-App-ID` and `X-API-Key`; request.user is the App, request.auth the ApiKey."""

    def authenticate(self, request):
        app_id = request.headers.get("X-App-ID")
        plain_key = request.headers.get("X-API-Key")
        if not app_id or not plain_key:
            raise exceptions.NotAuthenticated("X-App-ID and X-API-Key headers are required")
        refuse_a_failing_address(request)
        api_key = find_api_key(app_id=app_id, plain_key=plain_key)
        if api_key is None:
            count_a_failure(request)
            raise exceptions.AuthenticationFailed("Invalid application id or API key")
        logs.bind(app=app_id, by=f"app:{app_id}:{api_key.prefix}")
        return api_key.app, api_key

    def authenticate_header(self, request):
        # A value here makes DRF answer 401 rather than 403 for missing or wrong credentials.
        return 'ApiKey realm="api", header="X-API-Key"'


class AppDisabled(exceptions.PermissionDenied):
    default_detail = "This application is disabled"
    default_code = "app_disabled"


class IsEnabledApp(permissions.BasePermission):
    def has_permission(self, request, view):
        if request.user is None:
            raise exceptions.NotAuthenticated("X-App-ID and X-API-Key headers are required")
        if not request.user.enabled:
            raise AppDisabled()
        return True


class AppRateThrottle(throttling.BaseThrottle):
    """Requests per app (API_RATE_LIMIT) across all processes; over it, 429 with Retry-After."""

    def allow_request(self, request, view):
        self.retry_after = None
        if request.user is not None:
            self.retry_after = ratelimit.hit("app", request.user.app_id, Rate.parse(settings.API_RATE_LIMIT))
        return self.retry_after is None

    def wait(self):
        return self.retry_after


def actor_of(request) -> Actor:
    return Actor.app(request.user.app_id, request.auth.prefix)

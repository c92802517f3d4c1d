from django.conf import settings
from rest_framework import exceptions, permissions
from rest_framework.authentication import BaseAuthentication

from project import logs

from .. import ratelimit
from ..actors import Actor
from ..ratelimit import Rate
from ..services.tenants import find_api_key


def failures_of_address(request, *, count: bool) -> ratelimit.Window:
    """The window of failed authentications (API keys, the engine's token) from the request's address."""
    rate = Rate.parse(settings.AUTH_FAILURE_RATE_LIMIT)
    return ratelimit.Window("auth-failure", request.META.get("REMOTE_ADDR", ""), rate, count=count)


def authentication_failed(request, error: exceptions.APIException) -> exceptions.APIException:
    """`error`, counted against the address; once the address is past AUTH_FAILURE_RATE_LIMIT,
    429 with Retry-After instead, and the right credentials get 429 too (see `admit`), so
    guessing learns nothing from this address."""
    if (wait := ratelimit.hit(failures_of_address(request, count=True))) is not None:
        return exceptions.Throttled(wait)
    return error


def admit(request, app) -> None:
    """429 with Retry-After, before anything else is checked, for a request over its app's
    API_RATE_LIMIT (counted by every process together) or from an address past its failed
    authentications, whatever its key. Both in one round trip to the cache."""
    wait = ratelimit.hit(
        ratelimit.Window("app", app.app_id, Rate.parse(settings.API_RATE_LIMIT)),
        failures_of_address(request, count=False),
    )
    if wait is not None:
        raise exceptions.Throttled(wait)


class AppKeyAuthentication(BaseAuthentication):
    """`X-App-ID` and `X-API-Key`; request.user is the App, request.auth the ApiKey. A request
    with a right key is then admitted, or not (`admit`)."""

    def authenticate(self, request):
        app_id = request.headers.get("X-App-ID")
        plain_key = request.headers.get("X-API-Key")
        if not app_id or not plain_key:
            raise exceptions.NotAuthenticated("X-App-ID and X-API-Key headers are required")
        api_key = find_api_key(app_id=app_id, plain_key=plain_key)
        if api_key is None:
            raise authentication_failed(request, exceptions.AuthenticationFailed("Invalid application id or API key"))
        logs.bind(app=app_id, by=f"app:{app_id}:{api_key.prefix}")
        admit(request, api_key.app)
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


def actor_of(request) -> Actor:
    return Actor.app(request.user.app_id, request.auth.prefix)

from rest_framework import exceptions, permissions, throttling
from rest_framework.authentication import BaseAuthentication

from project import logs

from ..actors import Actor
from ..services.tenants import find_api_key


class AppKeyAuthentication(BaseAuthentication):
    """`X-App-ID` and `X-API-Key`; request.user is the App, request.auth the ApiKey."""

    def authenticate(self, request):
        app_id = request.headers.get("X-App-ID")
        plain_key = request.headers.get("X-API-Key")
        if not app_id or not plain_key:
            raise exceptions.NotAuthenticated("X-App-ID and X-API-Key headers are required")
        api_key = find_api_key(app_id=app_id, plain_key=plain_key)
        if api_key is None:
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


class AppRateThrottle(throttling.SimpleRateThrottle):
    """Requests per app (API_RATE_LIMIT); over it, 429 with Retry-After."""

    scope = "app"

    def get_cache_key(self, request, view):
        if request.user is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.app_id}


def actor_of(request) -> Actor:
    return Actor.app(request.user.app_id, request.auth.prefix)

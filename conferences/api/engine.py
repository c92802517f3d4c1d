import hmac

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import ratelimit
from ..actors import Actor
from ..ids import NODE_RE
from ..services import engine_events
from .auth import authentication_failed, failures_of_address


class EngineTokenRequired(exceptions.AuthenticationFailed):
    default_detail = "A valid engine token is required"
    default_code = "authentication_failed"


class EngineEventsApi(APIView):
    """Reports from the media engine (`Authorization: Bearer <ENGINE_TOKEN>`)."""

    authentication_classes = []
    permission_classes = []

    def initial(self, request, *args, **kwargs):
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        expected = settings.ENGINE_TOKEN
        # An unset ENGINE_TOKEN closes the ingress; comparison is constant-time.
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            raise authentication_failed(request, EngineTokenRequired())
        if (wait := ratelimit.hit(failures_of_address(request, count=False))) is not None:
            raise exceptions.Throttled(wait)
        super().initial(request, *args, **kwargs)

    def get_authenticate_header(self, request):
        return 'Bearer realm="engine"'  # makes DRF answer 401, not 403

    @extend_schema(
        operation_id="engine_events_create",
        auth=[],
        request={
            "application/json": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string", "enum": list(engine_events.SHAPES)}},
            }
        },
        responses={
            201: OpenApiResponse(description='session.created: `{"session_uuid"}` (minted when absent)'),
            200: OpenApiResponse(description="Applied, or harmlessly ignored (duplicate, late, out of order)"),
        },
        description="session.created {app_id, caller_id, session_uuid?}; session.ended {session_uuid}; "
        "member.joined / member.left {session_uuid, room_id}; playback.progress {room_id, operation_id}; "
        "playback.finished {room_id, operation_id, url}; playback.error {room_id, operation_id, url, message?}; "
        "heartbeat {node, sessions: [session_uuid, ...]}. Malformed or oversized fields and unknown types are "
        "400; unknown fields are ignored (the history keeps only validated fields). A new session of an app at "
        "its active-session quota (`QUOTA_ACTIVE_SESSIONS`) is 409 `quota_exceeded`.",
    )
    def post(self, request):
        node = request.data.get("node") if isinstance(request.data, dict) else None
        # The actor names the node only when it is one; the report itself is validated by handle.
        actor = Actor.engine(node if isinstance(node, str) and NODE_RE.fullmatch(node) else "engine")
        status_code, body = engine_events.handle(request.data, actor=actor)
        return Response(body, status=status_code)

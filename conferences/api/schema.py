"""OpenAPI additions: the webhook events with their exact bodies, the rules the server
enforces on strings and lists, the error responses, and links between operations."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, OpenApiWebhook, extend_schema

from ..event_schema import event_schemas

SIGNATURE_NOTE = (
    "Signed per Standard Webhooks: headers `webhook-id` (stable across retries), "
    "`webhook-timestamp` and `webhook-signature`. Any 2xx acknowledges; anything else is retried; "
    "410 disables the endpoint."
)

WEBHOOKS = [
    OpenApiWebhook(
        name=name,
        decorator=extend_schema(
            summary=name,
            description=f"{schema.get('description', '')}\n\n{SIGNATURE_NOTE}",
            request={"application/json": {key: value for key, value in schema.items() if key != "description"}},
            responses={200: OpenApiResponse(description="Any 2xx acknowledges the event.")},
        ),
    )
    for name, schema in event_schemas().items()
]


class AppKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "conferences.api.auth.AppKeyAuthentication"
    name = ["AppId", "ApiKey"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": "X-App-ID"},
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]


class PageAwareAutoSchema(AutoSchema):
    """A list action documented with a page serializer (`pagination.page_of`) answers that page,
    not an array of it."""

    def _is_list_view(self, serializer=None):
        if getattr(serializer, "is_page", False):
            return False
        return super()._is_list_view(serializer)


# No string the API takes may hold a NUL character (it answers 400).
NUL_FREE = "^[^\\u0000]*$"
NUL_FREE_NON_EMPTY = "^[^\\u0000]+$"
PATH_SEGMENT = "^[^/\\u0000]+$"


class StrictCharFieldSchema(OpenApiSerializerFieldExtension):
    """A request string's pattern: the field's own, else no NUL character."""

    target_class = "conferences.fields.StrictCharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if direction == "request":
            # A blank-allowing field is documented as oneOf(this, maxLength 0): "" must match one only.
            free = NUL_FREE_NON_EMPTY if self.target.allow_blank else NUL_FREE
            schema["pattern"] = f"^(?:{self.target.pattern})$" if self.target.pattern else free
        return schema


class Rfc3339FieldSchema(OpenApiSerializerFieldExtension):
    target_class = "conferences.fields.Rfc3339Field"

    def map_serializer_field(self, auto_schema, direction):
        return {
            **auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True),
            "pattern": f"^{self.target.FORM}$",
        }


class DistinctListFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "conferences.fields.DistinctListField"

    def map_serializer_field(self, auto_schema, direction):
        return {
            **auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True),
            "uniqueItems": True,
        }


ERROR_SCHEMA = {
    "type": "object",
    "required": ["success", "error", "code", "detail"],
    "properties": {
        "success": {"const": False},
        "error": {"type": "string", "description": "A message for humans."},
        "code": {"type": "string", "description": "snake_case, e.g. invalid, not_found, name_taken."},
        "detail": {"type": ["object", "null"], "description": "For `invalid`: field → list of messages."},
    },
}
ERROR_STATUSES = {
    "400": "Invalid request (`invalid`; `detail` maps field → messages)",
    "401": "Missing or wrong credentials",
    "403": "The app is disabled",
    "404": "Not found (another app's objects look missing too)",
    "409": "Conflict with the current state",
    "429": "Rate limited (`Retry-After` says when to try again)",
}


def forbid_nul_in_parameters(result, generator, request, public):
    """Path and query strings refuse NUL characters too (a path segment holds no slash either)."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if schema.get("type") != "string" or "enum" in schema:
                    continue
                if parameter.get("in") == "path":
                    schema["pattern"] = PATH_SEGMENT
                elif "pattern" not in schema:
                    schema["pattern"] = NUL_FREE
    return result


# (operation, status) → link name → (target operation, its parameters from this response)
LINKS = {
    ("conferences_create", "201"): {
        name: (target, {"room_id": "$response.body#/room_id"})
        for name, target in (
            ("GetRoom", "conferences_retrieve"),
            ("DeleteRoom", "conferences_destroy"),
            ("ListMembers", "conferences_members_list"),
            ("Play", "conferences_play"),
            ("Pause", "conferences_pause"),
            ("Stop", "conferences_stop"),
            ("SetVolume", "conferences_volume"),
        )
    },
    ("conferences_list", "200"): {
        "GetFirstRoom": ("conferences_retrieve", {"room_id": "$response.body#/results/0/room_id"}),
    },
    ("conferences_members_list", "200"): {
        "KickFirstMember": (
            "conferences_members_kick",
            {"room_id": "$request.path.room_id", "session_uuid": "$response.body#/0/session_uuid"},
        ),
        "GetFirstMembersSession": ("sessions_retrieve", {"session_uuid": "$response.body#/0/session_uuid"}),
    },
    ("sessions_retrieve", "200"): {
        name: (f"sessions_conference_{command}", {"session_uuid": "$response.body#/session_uuid"})
        for name, command in (("Join", "join"), ("Leave", "leave"), ("Mute", "mute"), ("Unmute", "unmute"))
    },
    ("webhooks_endpoints_create", "201"): {
        name: (target, {"endpoint_id": "$response.body#/endpoint_id"})
        for name, target in (
            ("GetEndpoint", "webhooks_endpoints_retrieve"),
            ("ChangeEndpoint", "webhooks_endpoints_partial_update"),
            ("DeleteEndpoint", "webhooks_endpoints_destroy"),
            ("RotateSecret", "webhooks_endpoints_rotate_secret"),
            ("Recover", "webhooks_endpoints_recover"),
        )
    },
    ("webhooks_deliveries_list", "200"): {
        "GetFirstDelivery": ("webhooks_deliveries_retrieve", {"delivery_id": "$response.body#/results/0/delivery_id"}),
        "RedeliverFirst": ("webhooks_deliveries_redeliver", {"delivery_id": "$response.body#/results/0/delivery_id"}),
    },
}


def add_links(result, generator, request, public):
    """Where an id flows from one response to another request, say so (clients and testers
    follow these links)."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for status_code, response in operation.get("responses", {}).items():
                links = LINKS.get((operation.get("operationId"), status_code))
                if links:
                    response["links"] = {
                        name: {"operationId": target, "parameters": parameters}
                        for name, (target, parameters) in links.items()
                    }
    return result


def add_error_responses(result, generator, request, public):
    """Every operation documents the one error shape for the statuses it can answer."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status_code, description in ERROR_STATUSES.items():
                if status_code == "409" and method == "get":
                    continue
                responses.setdefault(
                    status_code,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                )
    return result

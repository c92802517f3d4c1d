"""OpenAPI additions: the webhook events, each with the exact body it delivers."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
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


def add_error_responses(result, generator, request, public):
    """Every operation documents the one error shape for the statuses it can answer."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status_code, description in ERROR_STATUSES.items():
                if status_code == "409" and method == "get":
                    continue
                responses.setdefault(status_code, {
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                })
    return result

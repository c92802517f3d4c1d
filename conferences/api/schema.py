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

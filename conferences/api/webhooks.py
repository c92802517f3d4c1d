"""Self-service webhooks for apps (SPEC 8a): endpoints, their secrets, the delivery log,
redelivery and recovery. Thin viewsets over services.endpoints, the functions the admin uses."""

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from ..errors import NotFound
from ..event_schema import event_schemas
from ..fields import DistinctListField, Rfc3339Field, StrictBooleanField, StrictCharField
from ..models import Delivery, WebhookEndpoint
from ..models.webhooks import DeliveryStatus
from ..services import audit, endpoints
from ..ssrf import MAX_URL_LENGTH, URL_PATTERN, URL_RULE
from .auth import actor_of
from .pagination import PAGE_PARAMETERS, NewestFirstPagination, page_of

EVENT_TYPES = sorted(event_schemas())
NON_BLANK = {"type": "string", "minLength": 1, "maxLength": 64}
DELIVERY_ID = OpenApiParameter("delivery_id", {"type": "integer", "minimum": 1}, OpenApiParameter.PATH)


class EndpointInput(serializers.Serializer):
    url = StrictCharField(
        max_length=MAX_URL_LENGTH,
        pattern=URL_PATTERN,
        pattern_message=URL_RULE,
        help_text="http(s), public addresses only.",
    )
    event_types = DistinctListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES),
        required=False,
        max_length=len(EVENT_TYPES),
        help_text="Distinct event names; omitted or empty for every event.",
    )
    description = StrictCharField(max_length=endpoints.MAX_DESCRIPTION, allow_blank=True, required=False)


class EndpointChanges(EndpointInput):
    url = StrictCharField(max_length=MAX_URL_LENGTH, pattern=URL_PATTERN, pattern_message=URL_RULE, required=False)
    enabled = StrictBooleanField(required=False, help_text="Enabling clears `disabled_reason`.")


class EndpointOutput(serializers.Serializer):
    endpoint_id = serializers.CharField()
    url = serializers.CharField()
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPES))
    description = serializers.CharField()
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class CreatedEndpointOutput(EndpointOutput):
    secret = serializers.CharField(help_text="Shown here and at rotation only.")


class SecretOutput(serializers.Serializer):
    secret = serializers.CharField(help_text="The new secret; the previous one signs beside it for 24 h.")


class RecoverInput(serializers.Serializer):
    since = Rfc3339Field(help_text="Within the retention period, not in the future.")


class QueuedOutput(serializers.Serializer):
    queued = serializers.IntegerField()


class DeliveryFilters(serializers.Serializer):
    endpoint_id = StrictCharField(required=False, max_length=64)
    status = serializers.ChoiceField(choices=DeliveryStatus.values, required=False)
    event = serializers.ChoiceField(choices=EVENT_TYPES, required=False)
    room_id = StrictCharField(required=False, max_length=64)


class DeliveryOutput(serializers.Serializer):
    delivery_id = serializers.IntegerField(source="pk")
    endpoint_id = serializers.CharField(source="endpoint.endpoint_id")
    webhook_id = serializers.SerializerMethodField()
    event = serializers.ChoiceField(choices=EVENT_TYPES, source="event.event_type")
    room_id = serializers.CharField(source="event.room.room_id", allow_null=True, default=None)
    status = serializers.ChoiceField(choices=DeliveryStatus.values)
    attempts = serializers.IntegerField(source="total_attempts")
    next_attempt_at = serializers.SerializerMethodField()
    last_status_code = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)

    def get_webhook_id(self, delivery) -> str:
        return f"msg_{delivery.event.uuid.hex}"

    @extend_schema_field({"type": ["string", "null"], "format": "date-time"})
    def get_next_attempt_at(self, delivery) -> str | None:
        pending = delivery.status == DeliveryStatus.PENDING
        return serializers.DateTimeField().to_representation(delivery.next_attempt_at) if pending else None


class AttemptOutput(serializers.Serializer):
    number = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    duration_ms = serializers.IntegerField(allow_null=True)
    status_code = serializers.IntegerField(allow_null=True)
    response_excerpt = serializers.CharField()
    error = serializers.CharField()


class DeliveryDetailOutput(DeliveryOutput):
    payload = serializers.DictField(source="event.payload", help_text="The exact body sent.")
    attempt_log = AttemptOutput(many=True)


def _record_read(request, action_name: str, **detail) -> None:
    """Reads are in the history too: who looked at which deliveries, with which key."""
    audit.record(actor=actor_of(request), action=action_name, app_id=request.user.app_id, detail=detail or None)


def _endpoint(request, endpoint_id: str) -> WebhookEndpoint:
    endpoint = (
        WebhookEndpoint.objects.current()
        .select_related("app")
        .filter(app=request.user, endpoint_id=endpoint_id)
        .first()
    )
    if endpoint is None:
        raise NotFound("Webhook endpoint not found")
    return endpoint


class RecordedCalls:
    """Every call is in the history: reads and changes record themselves; a refused call
    (whose transaction rolled back) is recorded here with its error code."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if getattr(self.request, "user", None) is not None and response.status_code < 500:
            code = response.data.get("code", "") if isinstance(response.data, dict) else ""
            audit.record(
                actor=actor_of(self.request),
                action=f"{self.basename}.{self.action}",
                outcome=code,
                app_id=self.request.user.app_id,
                detail={"status": response.status_code},
            )
        return response


class WebhookEndpointViewSet(RecordedCalls, viewsets.ViewSet):
    lookup_field = "endpoint_id"
    lookup_value_regex = "[^/]+"

    @extend_schema(
        operation_id="webhooks_endpoints_create",
        request=EndpointInput,
        responses={201: CreatedEndpointOutput},
        description="A new endpoint and its signing secret (shown only here and at rotation). "
        "409 `endpoint_limit` beyond 10 endpoints.",
    )
    def create(self, request):
        data = EndpointInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = endpoints.create_endpoint(actor=actor_of(request), app=request.user, **data.validated_data)
        return Response(CreatedEndpointOutput(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="webhooks_endpoints_list", parameters=PAGE_PARAMETERS, responses={200: page_of(EndpointOutput)}
    )
    def list(self, request):
        _record_read(request, "webhook_endpoint.list")
        paginator = NewestFirstPagination()
        page = paginator.paginate_queryset(
            WebhookEndpoint.objects.current().filter(app=request.user), request, view=self
        )
        return paginator.get_paginated_response(EndpointOutput(page, many=True).data)

    @extend_schema(operation_id="webhooks_endpoints_retrieve", responses={200: EndpointOutput})
    def retrieve(self, request, endpoint_id: str):
        endpoint = _endpoint(request, endpoint_id)
        _record_read(request, "webhook_endpoint.retrieve", endpoint_id=endpoint.endpoint_id)
        return Response(EndpointOutput(endpoint).data)

    @extend_schema(
        operation_id="webhooks_endpoints_partial_update",
        request=EndpointChanges,
        responses={200: EndpointOutput},
        description="Change the URL, the event filter, the description, or `enabled`. While disabled, "
        "new events are not queued for it, and what waited fails (recover it later).",
    )
    def partial_update(self, request, endpoint_id: str):
        data = EndpointChanges(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = endpoints.update_endpoint(
            actor=actor_of(request), endpoint=_endpoint(request, endpoint_id), **data.validated_data
        )
        return Response(EndpointOutput(endpoint).data)

    @extend_schema(
        operation_id="webhooks_endpoints_destroy",
        responses={204: None},
        description="No new deliveries; pending ones fail with `endpoint deleted`. The endpoint "
        "answers 404 afterwards (its delivery history stays for support staff).",
    )
    def destroy(self, request, endpoint_id: str):
        endpoints.delete_endpoint(actor=actor_of(request), endpoint=_endpoint(request, endpoint_id))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(operation_id="webhooks_endpoints_rotate_secret", request=None, responses={200: SecretOutput})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, endpoint_id: str):
        secret = endpoints.rotate_secret(actor=actor_of(request), endpoint=_endpoint(request, endpoint_id))
        return Response(SecretOutput({"secret": secret}).data)

    @extend_schema(
        operation_id="webhooks_endpoints_recover",
        request=RecoverInput,
        responses={202: QueuedOutput},
        description="Queue again every failed delivery of the endpoint created at or after `since`, "
        "in their original order, after whatever of their rooms is pending now. 409 "
        "`endpoint_disabled` when the endpoint is disabled.",
    )
    @action(detail=True, methods=["post"])
    def recover(self, request, endpoint_id: str):
        endpoint = _endpoint(request, endpoint_id)
        data = RecoverInput(data=request.data)
        data.is_valid(raise_exception=True)
        queued = endpoints.redeliver_failed(
            actor=actor_of(request), endpoint=endpoint, since=data.validated_data["since"]
        )
        return Response(QueuedOutput({"queued": queued}).data, status=status.HTTP_202_ACCEPTED)


def _deliveries(request) -> QuerySet[Delivery]:
    return Delivery.objects.filter(endpoint__app=request.user, endpoint__deleted_at__isnull=True).select_related(
        "endpoint", "event__room"
    )


class DeliveryViewSet(RecordedCalls, viewsets.ViewSet):
    lookup_field = "delivery_id"
    lookup_value_regex = "[^/]+"

    @extend_schema(
        operation_id="webhooks_deliveries_list",
        parameters=[
            OpenApiParameter("endpoint_id", NON_BLANK, description="Only this endpoint's deliveries."),
            OpenApiParameter("status", str, enum=DeliveryStatus.values),
            OpenApiParameter("event", str, enum=EVENT_TYPES),
            OpenApiParameter("room_id", NON_BLANK, description="Only this room's deliveries."),
            *PAGE_PARAMETERS,
        ],
        responses={200: page_of(DeliveryOutput)},
    )
    def list(self, request):
        filters = DeliveryFilters(data=request.query_params.dict())  # a blank value is refused, not dropped
        filters.is_valid(raise_exception=True)
        deliveries = _deliveries(request)
        for name, lookup in (
            ("endpoint_id", "endpoint__endpoint_id"),
            ("status", "status"),
            ("event", "event__event_type"),
            ("room_id", "event__room__room_id"),
        ):
            if name in filters.validated_data:
                deliveries = deliveries.filter(**{lookup: filters.validated_data[name]})
        _record_read(request, "webhook_delivery.list", filters=filters.validated_data)
        paginator = NewestFirstPagination()
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response(DeliveryOutput(page, many=True).data)

    @extend_schema(
        operation_id="webhooks_deliveries_retrieve", parameters=[DELIVERY_ID], responses={200: DeliveryDetailOutput}
    )
    def retrieve(self, request, delivery_id: str):
        delivery = self._delivery(request, delivery_id, related=("attempt_log",))
        _record_read(request, "webhook_delivery.retrieve", delivery_id=delivery.pk)
        return Response(DeliveryDetailOutput(delivery).data)

    @extend_schema(
        operation_id="webhooks_deliveries_redeliver",
        request=None,
        responses={202: None},
        parameters=[DELIVERY_ID],
        description="Send it again under the same `webhook-id`, after the room's pending deliveries. "
        "409 `delivery_pending` when it is pending, `endpoint_disabled` when its endpoint is.",
    )
    @action(detail=True, methods=["post"])
    def redeliver(self, request, delivery_id: str):
        endpoints.redeliver(actor=actor_of(request), delivery=self._delivery(request, delivery_id))
        return Response(status=status.HTTP_202_ACCEPTED)

    @staticmethod
    def _delivery(request, delivery_id: str, related: tuple = ()) -> Delivery:
        delivery = None
        if delivery_id.isascii() and delivery_id.isdigit() and len(delivery_id) < 19:
            delivery = _deliveries(request).prefetch_related(*related).filter(pk=int(delivery_id)).first()
        if delivery is None:
            raise NotFound("Delivery not found")
        return delivery

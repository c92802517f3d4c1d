from django.urls import path
from rest_framework.routers import SimpleRouter

from . import engine, rooms, sessions, webhooks

router = SimpleRouter(trailing_slash=False)
router.register("conferences", rooms.RoomViewSet, basename="conference")
router.register("sessions", sessions.SessionViewSet, basename="session")
router.register("webhooks/endpoints", webhooks.WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("webhooks/deliveries", webhooks.DeliveryViewSet, basename="webhook-delivery")

urlpatterns = [
    *router.urls,
    path("engine/events", engine.EngineEventsApi.as_view(), name="engine-events"),
]

from .audit import AuditEntry
from .engine import EngineCommand
from .events import Event
from .outbox import OutboxWake
from .playback import PlaybackOperation
from .rooms import Room
from .sessions import CallSession, CommandRecord, Member
from .tenants import ApiKey, App
from .webhooks import Delivery, DeliveryAttempt, WebhookEndpoint

__all__ = [
    "ApiKey",
    "App",
    "AuditEntry",
    "CallSession",
    "CommandRecord",
    "Delivery",
    "DeliveryAttempt",
    "EngineCommand",
    "Event",
    "Member",
    "OutboxWake",
    "PlaybackOperation",
    "Room",
    "WebhookEndpoint",
]

"""`sim`: an embedded simulated engine. It confirms joins after SIM_JOIN_DELAY_MS through a
Celery task that feeds the same handler as the ingress, and serves sessions of every node."""

from django.conf import settings

from .base import Engine


class SimEngine(Engine):
    def join(self, *, session_uuid, room_id, muted, operation_id):
        from ..tasks import sim_report

        report = {"type": "member.joined", "session_uuid": session_uuid, "room_id": room_id}
        sim_report.apply_async((report,), countdown=settings.SIM_JOIN_DELAY_MS / 1000)

    def live_sessions(self):
        from ..models import CallSession

        node = settings.NODE_HASH
        return node, set(CallSession.objects.filter(node=node, state="active").values_list("session_uuid", flat=True))

"""Row locks that several services take: one definition each, so the lock order stays one."""

from ..errors import NotFound
from ..models import App, Room


def lock_live_room(*, app: App, room_id: str) -> Room:
    """The app's live room under a row lock, or NotFound (another app's room looks missing)."""
    room = (
        Room.objects.select_for_update(of=("self",))
        .select_related("app")
        .live()
        .filter(app=app, room_id=room_id)
        .first()
    )
    if room is None:
        raise NotFound("Conference not found")
    return room

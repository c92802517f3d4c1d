"""Identifiers minted by this node (SPEC section 2)."""

import re
import uuid

from django.conf import settings

APP_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
ROOM_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
COMMAND_UID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
NODE_RE = re.compile(r"[A-Za-z0-9]{5}")
SESSION_UUID_RE = re.compile(r"([A-Za-z0-9]{5})-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def mint_room_id() -> str:
    return f"{settings.NODE_HASH}-room-{uuid.uuid4()}"


def mint_session_uuid() -> str:
    return f"{settings.NODE_HASH}-{uuid.uuid4()}"


def mint_operation_id() -> str:
    return str(uuid.uuid4())


def node_of(session_uuid: str) -> str | None:
    """The node a session lives on, from its prefix; None when the id is not ours in shape."""
    match = SESSION_UUID_RE.fullmatch(session_uuid)
    return match.group(1) if match else None

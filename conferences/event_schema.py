"""The webhook event schemas (a copy of shared/events.schema.json, the contract)."""

import json
from functools import cache
from pathlib import Path

SCHEMA_PATH = Path(__file__).parent / "schemas" / "events.schema.json"


@cache
def event_schemas() -> dict[str, dict]:
    """Event name → JSON Schema of its body."""
    return json.loads(SCHEMA_PATH.read_text())["$defs"]

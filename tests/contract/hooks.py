"""Schemathesis hooks for rules a JSON Schema cannot state, each with its reason. Only values
the schema allows are changed, into ones the server takes, so a negative case stays negative.

- JSON Schema counts 2.0 as an integer; SPEC 3 refuses it (a float is not an integer here).
  An integral float volume is sent as an integer.
- A cursor is an opaque token the server minted; a made-up one is 400 by design. Made-up
  cursors are left out (the pages they name are reached through `next`).
- `since` of a recovery must lie within the retention period and not in the future, relative to
  now, and be a real date (no 30 February, no year 0). A `since` of the declared form is sent
  as an hour ago.
"""

from datetime import UTC, datetime, timedelta

import schemathesis

from conferences.fields import Rfc3339Field


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if isinstance(body, dict):
        volume = body.get("volume")
        if isinstance(volume, float) and volume.is_integer():
            case.body = body = {**body, "volume": int(volume)}
        since = body.get("since")
        declared_form = isinstance(since, str) and Rfc3339Field._FORM.fullmatch(since)
        if case.operation.path.endswith("/recover") and declared_form:
            case.body = {**body, "since": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
    query = case.query
    if query and isinstance(query.get("cursor"), str) and "\x00" not in query["cursor"]:
        case.query = {key: value for key, value in query.items() if key != "cursor"}

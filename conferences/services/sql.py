"""Hot statements as server-side prepared statements."""

import psycopg
from django.db import connection


def execute_prepared(sql: str, parameters: dict) -> list[tuple]:
    """Run `sql` prepared on Django's connection (in its current transaction). For statements
    whose planning or building costs as much as their execution (the outbox's CTEs, the API key
    lookup of every request); query capture does not see them. Errors are Django's, as from its
    own cursors (a lost database answers 503, and the broken connection is not kept)."""
    with connection.wrap_database_errors:
        connection.close_if_health_check_failed()
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, parameters, prepare=True)
            return cursor.fetchall() if cursor.description else []

"""Hot statements as server-side prepared statements."""

import psycopg
from django.db import connection


def execute_prepared(sql: str, parameters: dict) -> list[tuple]:
    """Run `sql` prepared on Django's connection (in its current transaction). For statements
    whose planning costs as much as their execution (the outbox's CTEs, planned again on every
    call through Django's client-side binding); query capture does not see them."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, parameters, prepare=True)
        return cursor.fetchall() if cursor.description else []

"""Statements and transactions sent to PostgreSQL, counted at psycopg: Django's cursors and the
prepared statements of conferences/services/sql.py alike (Django's query capture sees only the former)."""

from collections import Counter
from contextlib import contextmanager

import psycopg


@contextmanager
def round_trips():
    """Counts the statements and transactions sent through psycopg (Django's and raw ones)."""
    counts = Counter()
    originals = {
        (psycopg.Cursor, "execute"): psycopg.Cursor.execute,
        (psycopg.Cursor, "executemany"): psycopg.Cursor.executemany,
        (psycopg.Connection, "commit"): psycopg.Connection.commit,
    }

    def counted(kind, original):
        def wrapper(self, *args, **kwargs):
            counts[kind] += 1
            return original(self, *args, **kwargs)

        return wrapper

    for (cls, name), original in originals.items():
        setattr(cls, name, counted("transactions" if name == "commit" else "statements", original))
    try:
        yield counts
    finally:
        for (cls, name), original in originals.items():
            setattr(cls, name, original)

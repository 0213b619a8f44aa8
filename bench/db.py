"""The scratch PostgreSQL database a benchmark fills once and then measures.

Every bench that needs its own data works in a database of its own (``DATABASE_URL``, else
the bench's default), dropped and created anew on every run unless ``--reuse`` keeps an
already filled one; it is then migrated and filled only when it is not filled yet.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def server_url(url: str) -> str:
    """The maintenance database (``postgres``) on the server of the database ``url`` names."""
    return url.rsplit("/", 1)[0] + "/postgres"


def fresh_database(url: str, *, reuse: bool = False) -> None:
    """Create the database ``url`` names, empty: an existing one is dropped first (its
    connections closed) unless ``reuse``, which keeps it as it is."""
    import psycopg

    dbname = url.rsplit("/", 1)[1]
    with psycopg.connect(server_url(url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              [dbname]).fetchone()
        if exists and not reuse:
            conn.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{dbname}"')


def drop_database(url: str) -> None:
    """Drop the database ``url`` names, if it exists (its connections closed)."""
    import psycopg

    dbname = url.rsplit("/", 1)[1]
    with psycopg.connect(server_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def scratch_database(default_url: str, *, reuse: bool) -> str:
    """Make ``DATABASE_URL`` (``default_url`` when unset) name an existing database: dropped
    and created empty unless ``reuse`` (then created only when missing). Returns the URL."""
    os.environ.setdefault("DATABASE_URL", default_url)
    url = os.environ["DATABASE_URL"]
    fresh_database(url, reuse=reuse)
    return url


def filled(model: type, **lookup: object) -> bool:
    """Whether the (Django-configured) database has ``model``'s table with a row matching
    ``lookup``: a new or half-built database has no tables yet, so ask before querying."""
    from django.db import connection

    if model._meta.db_table not in connection.introspection.table_names():  # type: ignore
        return False
    return model.objects.filter(**lookup).exists()  # type: ignore[attr-defined]


def migrate(env: dict[str, str] | None = None) -> None:
    """``manage.py migrate`` in a process of its own (with ``env``, else this environment)."""
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"],
                   check=True, env=env or {**os.environ})

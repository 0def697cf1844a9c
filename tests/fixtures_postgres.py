"""PostgreSQL for tests: the real server, one fresh schema per test.

The server is at 127.0.0.1:5432, database ``test`` (trust auth) on the
development and CI machines; LEDGER_TEST_POSTGRES (a postgresql:// URL)
points elsewhere.  When it cannot be reached the test FAILS, saying where it
looked: a skipped store test would hide a broken store.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import psycopg
import pytest
from psycopg import sql

__all__ = ["postgres_server_url", "postgres_url", "postgres_schema_url"]

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT_S = 5


def postgres_server_url() -> str:
    """The test server's URL, without a schema."""
    return os.environ.get("LEDGER_TEST_POSTGRES") or DEFAULT_SERVER_URL


def postgres_schema_url(schema: str) -> str:
    base = postgres_server_url().split("?", 1)[0]
    return f"{base}?schema={schema}"


def admin_connection() -> psycopg.Connection:
    """An autocommit connection to the test server, or a failed test saying why."""
    url = postgres_server_url()
    parts = urlparse(url)
    try:
        return psycopg.connect(url.split("?", 1)[0], connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)
    except psycopg.Error as error:
        why = " ".join(str(error).split())
    pytest.fail(  # outside the except: one message, not two chained tracebacks
        f"PostgreSQL is not reachable at {parts.hostname}:{parts.port or 5432}{parts.path} "
        f"(set LEDGER_TEST_POSTGRES to another postgresql:// URL): {why}",
        pytrace=False,
    )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A ``postgresql://...?schema=NAME`` URL naming a schema of its own,
    created for this test and dropped with everything in it afterwards."""
    yield from _schema_for_test()


def _schema_for_test() -> Iterator[str]:
    schema = f"test_{uuid.uuid4().hex[:16]}"
    with admin_connection() as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield postgres_schema_url(schema)
    finally:
        with admin_connection() as admin:
            admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))

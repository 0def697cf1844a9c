"""PostgreSQL for tests: the real server, one fresh schema per test.

The server comes from tests/services/postgres_cluster.py: LEDGER_TEST_POSTGRES
(a postgresql:// URL) if set, else one answering at 127.0.0.1:5432/test, else
a cluster the suite starts from Debian's ``postgresql`` package and stops at
the end.  Whichever it is, its URL is put in LEDGER_TEST_POSTGRES for the
session, so processes the tests start find it too.  When there is none the
test FAILS with a one-line reason: a skipped store test would hide a broken store.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import psycopg
import pytest
from psycopg import sql

from services.postgres_cluster import DEFAULT_SERVER_URL, PostgresServer, PostgresStartError, start_postgres

__all__ = ["postgres_server", "postgres_server_url", "postgres_url", "postgres_schema_url"]

CONNECT_TIMEOUT_S = 5


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (started here if none answers), its URL
    exported as LEDGER_TEST_POSTGRES for the rest of the session."""
    try:
        server = start_postgres()
    except PostgresStartError as error:
        pytest.fail(f"PostgreSQL: {' '.join(str(error).split())}", pytrace=False)
    before = os.environ.get("LEDGER_TEST_POSTGRES")
    os.environ["LEDGER_TEST_POSTGRES"] = server.url
    _STARTED.append(server.description)
    try:
        yield server
    finally:
        server.close()
        if before is None:
            os.environ.pop("LEDGER_TEST_POSTGRES", None)
        else:
            os.environ["LEDGER_TEST_POSTGRES"] = before


_STARTED: list[str] = []  # what the session used, for the summary line


def postgres_used() -> list[str]:
    return list(_STARTED)


def postgres_server_url() -> str:
    """The test server's URL, without a schema (after ``postgres_server`` ran)."""
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
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
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

"""Party credentials: bearer tokens stored only as their SHA-256.

A port (``CredentialStore``) and two adapters: one SQLite file beside the
log (``$LEDGER_HOME/credentials.db``, the default), and a PostgreSQL schema
that several server replicas share.  A token is shown once, when
issued; the store keeps its hash, so a stolen credentials file grants nothing.

Which parties exist is asked of ``party_problem`` alone: today any well-formed
party id may hold a credential; bound to the party registry (issue 15) it
becomes a look-up there, and nothing else here changes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from abc import ABC, abstractmethod
from dataclasses import dataclass
from collections.abc import Collection
from datetime import datetime
from pathlib import Path

from consumers.sqlite_file import open_wal_file
from ledger.events import ID_LENGTH_MAX, ID_PATTERN
from projections.retry import retry

__all__ = ["Credential", "CredentialStore", "SQLiteCredentialStore", "PostgresCredentialStore", "ROLES", "TOKEN_PREFIX",
           "issue", "token_hash", "party_problem", "CredentialError"]

ROLES = ("reporter", "auditor", "dashboard")
TOKEN_PREFIX = "ldg_"
TOKEN_SECRET_BYTES = 32  # secrets.token_urlsafe(32): 256 bits
TOKEN_LENGTH_MAX = 200  # a header longer than this is not one of ours; refused before hashing
BUSY_TIMEOUT_MS = 10_000
CONNECT_ATTEMPTS_MAX = 2  # PostgreSQL: a call on a lost connection is made once more on a new one
# As the event contract spells a party id (ledger/events.py).
_PARTY_ID = re.compile(ID_PATTERN)


class CredentialError(ValueError):
    """A credential cannot be issued or revoked; the message says why."""


@dataclass(frozen=True, slots=True)
class Credential:
    credential_id: str
    party: str
    role: str
    issued_at: str
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def party_problem(party: str, registered: Collection[str] = ()) -> str | None:
    """Why ``party`` cannot hold a credential, or None.

    The one place that decides which parties may hold one: a well-formed id
    and, once the operator keeps a party registry (ledger/parties.py,
    ``ledger parties``), a party registered there.  An empty registry means
    the ledger runs open, as the projection does.
    """
    if len(party) > ID_LENGTH_MAX or not _PARTY_ID.match(party):
        return (f"{party!r} is not a party id: letters, digits and . _ : / - , "
                f"starting with a letter or digit, at most 128 characters")
    if registered and party not in registered:
        return (f"{party!r} is not in the party registry: register it first "
                f"(ledger parties add {party} --country CC --role ROLE), or check the spelling")
    return None


class CredentialStore(ABC):
    """Where credentials live.  Every method is one transaction."""

    @abstractmethod
    def add(self, credential: Credential, hashed: str) -> None:
        """Keep a new credential under the SHA-256 of its token."""

    @abstractmethod
    def find(self, hashed: str) -> Credential | None:
        """The credential whose token hashes to ``hashed`` (revoked ones too), or None."""

    @abstractmethod
    def revoke(self, *, credential_id: str | None = None, party: str | None = None, at: datetime) -> list[str]:
        """Revoke one credential, or every active one of a party; the ids revoked."""

    @abstractmethod
    def list(self, *, party: str | None = None) -> list[Credential]:
        """Every credential (or a party's), in the order issued."""

    def ping(self) -> None:  # noqa: B027
        """Raise if the store cannot be read."""

    def close(self) -> None:  # noqa: B027
        """Release the connection.  Idempotent."""


def issue(store: CredentialStore, party: str, role: str, *, at: datetime,
          registered: Collection[str] = ()) -> tuple[Credential, str]:
    """A new credential and its token (shown once: only the hash is kept).
    ``registered``: the ids of the party registry (empty: the ledger runs
    open).  A reporter's credential speaks for its party, so the party must be
    registered; an auditor's or a dashboard's names who holds it (an
    authority, an operations wall), which need not report anything."""
    if role not in ROLES:
        raise CredentialError(f"role {role!r}: choose one of {', '.join(ROLES)}")
    problem = party_problem(party, registered if role == "reporter" else ())
    if problem:
        raise CredentialError(problem)
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_SECRET_BYTES)
    credential = Credential(f"cred-{secrets.token_hex(6)}", party, role, at.isoformat(), None)
    store.add(credential, token_hash(token))
    return credential, token


_SCHEMA = """CREATE TABLE IF NOT EXISTS credentials (
    credential_id TEXT PRIMARY KEY,
    party TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('reporter', 'auditor', 'dashboard')),
    token_sha256 TEXT NOT NULL UNIQUE,
    issued_at TEXT NOT NULL,
    revoked_at TEXT
)"""


class SQLiteCredentialStore(CredentialStore):
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._db = open_wal_file(self.path, busy_timeout_s=BUSY_TIMEOUT_MS / 1000)
            self._db.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as error:
            raise CredentialError(f"credentials store {str(self.path)!r}: {error}") from error

    _COLUMNS = "credential_id, party, role, issued_at, revoked_at"

    def add(self, credential: Credential, hashed: str) -> None:
        self._db.execute(
            "INSERT INTO credentials (credential_id, party, role, token_sha256, issued_at) VALUES (?, ?, ?, ?, ?)",
            (credential.credential_id, credential.party, credential.role, hashed, credential.issued_at),
        )

    def find(self, hashed: str) -> Credential | None:
        row = self._db.execute(f"SELECT {self._COLUMNS} FROM credentials WHERE token_sha256 = ?",
                               (hashed,)).fetchone()
        return Credential(*row) if row else None

    def revoke(self, *, credential_id: str | None = None, party: str | None = None, at: datetime) -> list[str]:
        if (credential_id is None) == (party is None):
            raise CredentialError("name one credential id or one party")
        column, value = ("credential_id", credential_id) if credential_id else ("party", party)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            ids = [r[0] for r in self._db.execute(
                f"SELECT credential_id FROM credentials WHERE {column} = ? AND revoked_at IS NULL "
                f"ORDER BY issued_at, credential_id", (value,))]
            self._db.executemany("UPDATE credentials SET revoked_at = ? WHERE credential_id = ?",
                                 [(at.isoformat(), i) for i in ids])
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return ids

    def list(self, *, party: str | None = None) -> list[Credential]:
        where, params = ("WHERE party = ?", (party,)) if party else ("", ())
        rows = self._db.execute(f"SELECT {self._COLUMNS} FROM credentials {where} "
                                f"ORDER BY issued_at, credential_id", params).fetchall()
        return [Credential(*r) for r in rows]

    def ping(self) -> None:
        self._db.execute("SELECT 1 FROM credentials LIMIT 1").fetchall()

    def close(self) -> None:
        self._db.close()


class PostgresCredentialStore(CredentialStore):
    """Credentials in a PostgreSQL schema: what several `ledger serve`
    replicas share (``--credentials postgresql://user@host:port/db[?schema=NAME]``,
    the same URL as ``--store`` puts the table beside the projections).

    One connection, used by one thread at a time (the server's worker, or a
    CLI command); a connection the server lost is opened again once per call.
    """

    CONNECT_TIMEOUT_S = 5

    def __init__(self, url: str):
        from urllib.parse import parse_qs, urlparse

        parts = urlparse(url)
        query = parse_qs(parts.query)
        self.schema = query.get("schema", ["public"])[-1]
        self._conninfo = url.split("?", 1)[0]
        self._db = None
        try:
            self._call(lambda db: db.execute(_PG_SCHEMA.replace("{schema}", _quoted(self.schema))))
        except Exception as error:  # psycopg errors, a bad URL
            raise CredentialError(f"credentials store {self._conninfo!r}: {error}") from error

    def _connect(self):  # type: ignore[no-untyped-def]
        import psycopg

        db = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=self.CONNECT_TIMEOUT_S)
        db.execute(f"CREATE SCHEMA IF NOT EXISTS {_quoted(self.schema)}")
        db.execute(f"SET search_path TO {_quoted(self.schema)}")
        return db

    def _call(self, fn):  # type: ignore[no-untyped-def]
        import psycopg

        def call():  # type: ignore[no-untyped-def]
            if self._db is None or self._db.closed:
                self._db = None  # a failure to connect is not a lost connection: raised as it is
                self._db = self._connect()
            return fn(self._db)

        def drop(error: Exception, attempt: int) -> None:
            self._db.close()
            self._db = None

        # A connection the server lost: opened again, and the call made once more.
        return retry(call, attempts_max=CONNECT_ATTEMPTS_MAX, failed=drop,
                     retryable=lambda error: isinstance(error, psycopg.OperationalError) and self._db is not None)

    def add(self, credential: Credential, hashed: str) -> None:
        self._call(lambda db: db.execute(
            "INSERT INTO credentials (credential_id, party, role, token_sha256, issued_at) VALUES (%s, %s, %s, %s, %s)",
            (credential.credential_id, credential.party, credential.role, hashed, credential.issued_at)))

    def find(self, hashed: str) -> Credential | None:
        row = self._call(lambda db: db.execute(
            "SELECT credential_id, party, role, issued_at, revoked_at FROM credentials WHERE token_sha256 = %s",
            (hashed,)).fetchone())
        return Credential(*row) if row else None

    def revoke(self, *, credential_id: str | None = None, party: str | None = None, at: datetime) -> list[str]:
        if (credential_id is None) == (party is None):
            raise CredentialError("name one credential id or one party")
        column, value = ("credential_id", credential_id) if credential_id else ("party", party)
        rows = self._call(lambda db: db.execute(
            f"UPDATE credentials SET revoked_at = %s WHERE {column} = %s AND revoked_at IS NULL "
            f"RETURNING credential_id", (at.isoformat(), value)).fetchall())
        return sorted(r[0] for r in rows)

    def list(self, *, party: str | None = None) -> list[Credential]:
        where, params = ("WHERE party = %s", (party,)) if party else ("", ())
        rows = self._call(lambda db: db.execute(
            f"SELECT credential_id, party, role, issued_at, revoked_at FROM credentials {where} "
            f"ORDER BY issued_at, credential_id", params).fetchall())
        return [Credential(*r) for r in rows]

    def ping(self) -> None:
        self._call(lambda db: db.execute("SELECT 1 FROM credentials LIMIT 1").fetchall())

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


_PG_SCHEMA = _SCHEMA.replace("CREATE TABLE IF NOT EXISTS credentials", "CREATE TABLE IF NOT EXISTS {schema}.credentials")


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'

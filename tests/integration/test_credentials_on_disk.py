"""The credentials store keeps a token only as its hash: what reaches the disk
(the database file and its WAL) never holds the token itself."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from consumers.http.auth import Principal, authenticate
from consumers.http.credentials import SQLiteCredentialStore, issue

AT = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = SQLiteCredentialStore(tmp_path / "credentials.db")
    yield s
    s.close()


def test_a_token_is_kept_only_as_its_hash(store: SQLiteCredentialStore, tmp_path: Path) -> None:
    credential, token = issue(store, "KR-SEMI", "reporter", at=AT)
    assert token.startswith("ldg_") and len(token) > 40
    raw = (tmp_path / "credentials.db").read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("credentials.db-*"))
    assert token.encode() not in raw
    db = sqlite3.connect(tmp_path / "credentials.db")
    [(stored,)] = db.execute("SELECT token_sha256 FROM credentials").fetchall()
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert authenticate(f"Bearer {token}", store) == Principal(credential.credential_id, "KR-SEMI", "reporter")

"""The credentials port's contract, run on each adapter: SQLite (the file
beside the embedded log) and PostgreSQL (a schema server replicas share)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from consumers.http.auth import Refused, authenticate
from consumers.http.backend import open_credentials
from consumers.http.credentials import CredentialError, CredentialStore, issue, token_hash

AT = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CredentialStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'credentials.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    opened = open_credentials(url)
    try:
        yield opened
    finally:
        opened.close()


def test_issued_credentials_are_found_by_the_hash_of_their_token(store: CredentialStore) -> None:
    credential, token = issue(store, "KR-SEMI", "reporter", at=AT)
    assert store.find(token_hash(token)) == credential
    assert store.find(token_hash(token + "x")) is None
    assert store.list() == [credential]
    store.ping()


def test_refused_tokens_say_why(store: CredentialStore) -> None:
    credential, token = issue(store, "KR-SEMI", "reporter", at=AT)
    for header, code in ((None, "unauthenticated"), ("", "unauthenticated"), (f"Basic {token}", "unauthenticated"),
                         ("Bearer ", "unauthenticated"), ("Bearer ldg_unknown", "unauthenticated"),
                         ("Bearer " + "x" * 10_000, "unauthenticated")):
        with pytest.raises(Refused) as refused:
            authenticate(header, store)
        assert (refused.value.status, refused.value.code) == (401, code)
        assert "ledger credentials issue PARTY" in refused.value.message
    assert store.revoke(credential_id=credential.credential_id, at=AT) == [credential.credential_id]
    with pytest.raises(Refused) as refused:
        authenticate(f"Bearer {token}", store)
    assert (refused.value.status, refused.value.code) == (401, "revoked")
    assert credential.credential_id in refused.value.message
    assert store.revoke(credential_id=credential.credential_id, at=AT) == []  # already revoked


def test_revoke_every_credential_of_a_party(store: CredentialStore) -> None:
    first, _ = issue(store, "KR-SEMI", "reporter", at=AT)
    second, _ = issue(store, "KR-SEMI", "dashboard", at=AT)
    other, _ = issue(store, "JP-FLUORO", "reporter", at=AT)
    assert sorted(store.revoke(party="KR-SEMI", at=AT)) == sorted([first.credential_id, second.credential_id])
    assert [c.active for c in store.list()] == [c.credential_id == other.credential_id for c in store.list()]
    with pytest.raises(CredentialError):
        store.revoke(at=AT)


@pytest.mark.parametrize(("party", "role", "why"), [
    ("KR-SEMI", "admin", "choose one of reporter, auditor, dashboard"),
    ("", "reporter", "is not a party id"),
    ("KR SEMI", "reporter", "is not a party id"),
    ("-KR", "reporter", "is not a party id"),
    ("K" * 129, "reporter", "is not a party id"),
])
def test_what_cannot_hold_a_credential(store: CredentialStore, party: str, role: str, why: str) -> None:
    with pytest.raises(CredentialError, match=why):
        issue(store, party, role, at=AT)
    assert store.list() == []



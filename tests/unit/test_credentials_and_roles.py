"""Credentials and roles, without a server: auth.py decides who may do what (the e2e tests ask it over HTTP).
tests/contract/test_credential_store.py runs the store's contract on both
adapters; tests/integration/test_credentials_on_disk.py that the file\nholds hashes only."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from consumers.http.auth import READ, READ_ALERTS, WRITE, Principal, Refused, Visibility, authenticate, \
    impersonations, require
from consumers.http.credentials import CredentialError, SQLiteCredentialStore, issue

AT = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def store():  # type: ignore[no-untyped-def]
    s = SQLiteCredentialStore(":memory:")
    yield s
    s.close()


def test_a_reporter_credential_is_only_for_a_registered_party(store: SQLiteCredentialStore) -> None:
    registry = {"JP-FLUORO", "KR-SEMI"}
    issue(store, "KR-SEMI", "reporter", at=AT, registered=registry)
    with pytest.raises(CredentialError, match=r"'KR-EVIL' is not in the party registry: register it first"):
        issue(store, "KR-EVIL", "reporter", at=AT, registered=registry)
    # An auditor or a dashboard reports nothing: it need not be a registered party.
    issue(store, "JP-METI-AUDIT", "auditor", at=AT, registered=registry)
    issue(store, "OPS-WALL", "dashboard", at=AT, registered=registry)
    # No registry yet: the ledger runs open, for credentials as for reports.
    issue(store, "KR-EVIL", "reporter", at=AT, registered=set())
    assert sorted(c.party for c in store.list()) == ["JP-METI-AUDIT", "KR-EVIL", "KR-SEMI", "OPS-WALL"]


def test_what_each_role_may_do() -> None:
    allowed = {
        "reporter": {WRITE, READ, READ_ALERTS},
        "auditor": {READ, READ_ALERTS},
        "dashboard": {READ_ALERTS},
    }
    for role, actions in allowed.items():
        principal = Principal("cred-1", "P", role)
        for action in (WRITE, READ, READ_ALERTS):
            if action in actions:
                require(principal, action)
            else:
                with pytest.raises(Refused) as refused:
                    require(principal, action)
                assert refused.value.status == 403 and f"may not {action}" in refused.value.message


def test_a_reporter_reports_only_as_itself() -> None:
    me = Principal("cred-1", "JP-FLUORO", "reporter")
    own = SimpleNamespace(event_id="e1", reporter="JP-FLUORO")
    other = SimpleNamespace(event_id="e2", reporter="KR-SEMI")
    impersonations(me, [(1, own)])
    with pytest.raises(Refused) as refused:
        impersonations(me, [(1, own), (2, other)])
    assert (refused.value.status, refused.value.code) == (403, "impersonation")
    assert refused.value.problems == [{"index": 2, "event_id": "e2", "field": "reporter", "value": '"KR-SEMI"',
                                       "message": "this credential reports as JP-FLUORO only"}]


def test_which_lots_and_alerts_a_reporter_reads() -> None:
    root = {"trace_id": "T", "lot_id": "L", "parent_lot_id": None, "shipper": "JP-FLUORO", "holder": "KR-SEMI"}
    child = {"trace_id": "T", "lot_id": "L-CN", "parent_lot_id": "L", "shipper": "KR-SEMI", "holder": "CN-FAB"}
    origins = Visibility.origins([root, child])
    assert origins == {"T": {"JP-FLUORO"}}
    sees = {party: [r["lot_id"] for r in (root, child)
                    if Visibility(Principal("c", party, "reporter")).lot(r, origins)]
            for party in ("JP-FLUORO", "KR-SEMI", "CN-FAB", "CN-OTHER")}
    # The exporter of origin sees the whole trace; the holder and shipper their lots.
    assert sees == {"JP-FLUORO": ["L", "L-CN"], "KR-SEMI": ["L", "L-CN"], "CN-FAB": ["L-CN"], "CN-OTHER": []}
    assert Visibility(Principal("c", "AUDIT", "auditor")).lot(child, {})
    lots = {("T", "L"): root, ("T", "L-CN"): child}
    on_child = {"trace_id": "T", "lot_id": "L-CN", "party": "CN-FAB"}
    on_root = {"trace_id": "T", "lot_id": "L", "party": "KR-SEMI"}
    ceiling = {"trace_id": "license:JP-1", "lot_id": "L", "party": "JP-FLUORO"}
    reads = {party: [a for a in (on_child, on_root, ceiling)
                     if Visibility(Principal("c", party, "reporter")).alert(a, origins, lots)]
             for party in ("JP-FLUORO", "KR-SEMI", "CN-FAB", "CN-OTHER")}
    # Addressed to it, or about a lot it may read.
    assert reads == {"JP-FLUORO": [on_child, on_root, ceiling], "KR-SEMI": [on_child, on_root],
                     "CN-FAB": [on_child], "CN-OTHER": []}
    assert Visibility(Principal("c", "WALL", "dashboard")).alert(on_child, {}, {})

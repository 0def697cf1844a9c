"""The party registry port (ledger.ports.PartyRegistry), on every adapter.

Both projection stores keep it: the embedded default's SQLite file and
PostgreSQL.  And on both, the projector refuses (dead-letters) a report
naming a party the registry does not hold, while an empty registry refuses
nothing (docs/COMPLIANCE.md, "Who may say what").
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from builders import exported, log_records, received, stamp
from ledger.parties import RegisteredParty
from ledger.policy import Policy
from ledger.ports import PartyRegistry
from projections.postgres_store import PostgresProjectionStore
from projections.sqlite_store import SQLiteProjectionStore
from projections.store import ProjectionStore
from projections.trace_projection import project_batch

POLICY = Policy()
CLOCK = datetime(2021, 1, 1, tzinfo=timezone.utc)
FLUORO = RegisteredParty("JP-FLUORO", "JP", ("exporter",), "Fluoro Chemical Co.")
SEMI = RegisteredParty("KR-SEMI", "KR", ("consignee", "end_user"))


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path: Path) -> Iterator[ProjectionStore]:
    if request.param == "sqlite":
        opened: ProjectionStore = SQLiteProjectionStore(tmp_path / "store.db")
    else:
        opened = PostgresProjectionStore.from_url(request.getfixturevalue("postgres_url"))
    yield opened
    opened.close()


def test_a_store_is_a_party_registry(store):
    assert isinstance(store, PartyRegistry)
    assert store.registered_parties() == []


def test_parties_are_registered_listed_by_id_replaced_and_removed(store):
    store.register_parties([SEMI, FLUORO])
    assert store.registered_parties() == [FLUORO, SEMI]

    moved = RegisteredParty("KR-SEMI", "KR", ("consignee", "end_user", "exporter"), "Korea Semiconductor")
    store.register_parties([moved])
    assert store.registered_parties() == [FLUORO, moved]

    assert store.remove_party("KR-SEMI") is True
    assert store.remove_party("KR-SEMI") is False
    assert store.registered_parties() == [FLUORO]


def test_the_projector_dead_letters_a_report_naming_an_unregistered_party(store):
    store.register_parties([FLUORO, SEMI])
    export = stamp(exported(), "2019-07-10T12:00:00Z")
    ghost = stamp(received(by="KR-GHOST", event_id="ghost-1"), "2019-07-15T12:00:00Z")
    outcome = project_batch(store, "log", log_records([export, ghost]), policy=POLICY, now=CLOCK)

    assert (outcome.accepted, outcome.dead_letters) == (1, 1)
    [letter] = store.dead_letters()
    assert "field 'reporter' value \"KR-GHOST\": is not a registered party" in letter["error"]
    assert [row["received"] for row in store.lots()] == ["0"]


def test_an_empty_registry_refuses_nothing(store):
    export = stamp(exported(), "2019-07-10T12:00:00Z")
    anyone = stamp(received(by="KR-ANYONE", event_id="rcv-1"), "2019-07-15T12:00:00Z")
    outcome = project_batch(store, "log", log_records([export, anyone]), policy=POLICY, now=CLOCK)
    assert (outcome.accepted, outcome.dead_letters) == (2, 0)

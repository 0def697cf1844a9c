"""One contract for the projection store port, run on every adapter.

``ProjectionStoreContract`` says what any store must do; it is subclassed
once per adapter (as eventsourcing tests its recorders), and each subclass
says only how to open a store and how to tamper with its schema version.
The last test plays the 2019 story through both stores and asks for the
same fingerprint: a replay into SQLite or PostgreSQL is the same read model.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, Tracking
from psycopg import sql

from consumers.log.embedded import EmbeddedLog
from damage import empty_sqlite_index
from consumers.ingest import ingest_lines
from consumers.projector import catch_up
from fixtures_postgres import admin_connection, postgres_schema_url, postgres_server_url
from ledger.policy import Policy
from projections import sql_common
from projections.postgres_store import PostgresProjectionStore
from projections.rows import LOT_COLUMNS, ts
from projections.sqlite_store import SQLiteProjectionStore
from projections.store import DeadLetter, ProjectedBatch, ProjectionStore, StoreUnavailable, TraceRows

ROOT = Path(__file__).resolve().parents[2]
STORY = ROOT / "examples" / "story-2019.jsonl"
UTC = timezone.utc
JULY = datetime(2019, 7, 1, tzinfo=UTC)
LOG = "kafka-ledger"

OpenStore = Callable[..., ProjectionStore]


# -- rows as the trace projection writes them ---------------------------------------


def lot(trace_id: str, lot_id: str, *, holder: str = "KR-SEMI", license_id: str | None = None,
        shipped: str = "100", on_hand: str = "30", unit: str = "kg") -> tuple:
    values = dict.fromkeys(LOT_COLUMNS)
    values.update(
        trace_id=trace_id, lot_id=lot_id, origin="exported", opened_by=f"{lot_id}.export",
        item_id="HF-UHP", item_name="hydrogen fluoride", classification="3C004", unit=unit,
        shipper="JP-FLUORO", shipper_country="JP", holder=holder, holder_country="KR",
        license_id=license_id, shipped_at=ts(JULY), shipped=shipped, received=shipped,
        in_transit="0", consumed="70", re_exported="0", returned="0", lost="0", on_hand=on_hand,
        since=ts(JULY),
    )
    return tuple(values[c] for c in LOT_COLUMNS)


def step(alert_id: str, due_at: datetime, *, trace_id: str = "TR-1", lot_id: str = "LOT-1",
         party: str = "KR-SEMI", kind: str = "unaccounted", severity: str = "high",
         quantity: str | None = "30", unit: str | None = "kg", event_ids: tuple[str, ...] = ("e1",)) -> tuple:
    return (alert_id, ts(due_at), kind, severity, trace_id, lot_id, party, quantity, unit,
            f"{quantity} {unit} unaccounted at {party}", json.dumps(list(event_ids)))


def version(event_id: str, body: str = "") -> tuple[str, str, str, str]:
    payload = json.dumps({"event_id": event_id, "body": body})
    return (event_id, hashlib.sha256(payload.encode()).hexdigest(), ts(JULY), payload)


def traced(trace_id: str, *, versions=(), lots=(), steps=()) -> TraceRows:
    return TraceRows(trace_id, list(versions), list(lots), list(steps))


def batch(*traces: TraceRows, licenses=(), dead_letters=()) -> ProjectedBatch:
    return ProjectedBatch(list(traces), list(licenses), list(dead_letters))


def transition_id(alert_id: str, transition: str, number: int, *, kind: str = "unaccounted",
                  quantity: str = "30", due_at: datetime = JULY) -> str:
    said = f"{kind}|{quantity}|{ts(due_at)}"
    return hashlib.sha256(f"{alert_id}|{transition}|{number}|{said}".encode()).hexdigest()[:24]


# -- the contract -------------------------------------------------------------------


class ProjectionStoreContract:
    """Subclasses provide the ``open_store(name="main")`` fixture (the same
    name opens the same store again), ``set_schema_version(name, version)``
    and ``identity(name)``, the text that names the store in its messages."""

    @pytest.fixture
    def store(self, open_store: OpenStore) -> ProjectionStore:
        return open_store()

    def test_a_batch_writes_its_rows_and_its_tracking_together(self, store: ProjectionStore) -> None:
        # An export of 100 kg, 70 consumed: one trace, one lot, one alert step.
        store.commit_batch(
            batch(traced("TR-1", versions=[version("e1"), version("e2")], lots=[lot("TR-1", "LOT-1")],
                         steps=[step("A-1", JULY + timedelta(days=90))])),
            [Tracking(f"{LOG}#0", 41)],
            JULY,
        )
        assert store.tracked_offsets(LOG) == {0: 41}
        assert [(r["trace_id"], r["lot_id"], r["shipped"], r["on_hand"]) for r in store.lots()] == [
            ("TR-1", "LOT-1", "100", "30")
        ]
        assert sorted(p for p, _ in store.load_versions(["TR-1"])["TR-1"]) == sorted(
            [version("e1")[3], version("e2")[3]]
        )
        assert [s["alert_id"] for s in store.standing_alerts(JULY + timedelta(days=90))] == ["A-1"]

    def test_tracked_offsets_are_per_log_and_partition(self, store: ProjectionStore) -> None:
        store.commit_batch(batch(), [Tracking(f"{LOG}#0", 4), Tracking(f"{LOG}#3", 9)], JULY)
        # Other logs, including ones whose names only differ in case or by a
        # LIKE wildcard, are not this log.
        store.commit_batch(batch(), [Tracking("KAFKA-LEDGER#0", 7), Tracking("kafka_ledger#1", 8),
                                     Tracking(f"{LOG}-2#2", 5)], JULY)
        assert store.tracked_offsets(LOG) == {0: 4, 3: 9}
        assert store.tracked_offsets("KAFKA-LEDGER") == {0: 7}
        assert store.tracked_offsets("kafka_ledger") == {1: 8}
        assert store.tracked_offsets("never-read") == {}

    def test_a_stale_tracking_raises_and_leaves_nothing_of_its_batch(self, store: ProjectionStore) -> None:
        store.commit_batch(batch(traced("TR-1", versions=[version("e1")], lots=[lot("TR-1", "LOT-1")])),
                           [Tracking(f"{LOG}#0", 10)], JULY)
        before = (store.fingerprint(), store.journal(), store.dead_letters())
        # Another projector already applied offsets up to 10 of partition 0:
        # this batch (offset 10 again, and 9) must not be counted twice --
        # not its rows, licenses, dead letters, alerts, nor its other tracking.
        for stale in (10, 9):
            with pytest.raises(IntegrityError):
                store.commit_batch(
                    batch(
                        traced("TR-1", versions=[version("e1", "changed")], lots=[lot("TR-1", "LOT-1", on_hand="0")]),
                        traced("TR-2", versions=[version("e9")], lots=[lot("TR-2", "LOT-2")],
                               steps=[step("A-2", JULY, trace_id="TR-2", lot_id="LOT-2")]),
                        licenses=[("LIC-1", "lic-e1", "d1", "{}")],
                        dead_letters=[DeadLetter(LOG, 0, stale, "TR-3", b"{", "not JSON")],
                    ),
                    [Tracking(f"{LOG}#1", 3), Tracking(f"{LOG}#0", stale)],
                    JULY + timedelta(days=1),
                )
        assert (store.fingerprint(), store.journal(), store.dead_letters()) == before
        assert store.tracked_offsets(LOG) == {0: 10}
        assert [r["on_hand"] for r in store.lots()] == ["30"]

    def test_load_versions_answers_for_every_trace_asked(self, store: ProjectionStore) -> None:
        store.commit_batch(batch(traced("TR-1", versions=[version("e1")]),
                                 traced("TR-2", versions=[version("e2"), version("e3")])),
                           [Tracking(f"{LOG}#0", 1)], JULY)
        # A version sent again is stored once.
        store.commit_batch(batch(traced("TR-2", versions=[version("e3")])), [Tracking(f"{LOG}#0", 2)], JULY)
        versions = store.load_versions(["TR-2", "TR-unknown"])
        assert set(versions) == {"TR-2", "TR-unknown"}
        assert sorted(versions["TR-2"]) == sorted([(version("e2")[3], version("e2")[1]),
                                                    (version("e3")[3], version("e3")[1])])
        assert versions["TR-unknown"] == []
        assert sorted(store.all_versions()) == ["TR-1", "TR-2"]
        assert store.trace_ids_for(lot_or_trace="TR-2") == ["TR-2"]

    def test_a_copy_recorded_earlier_replaces_the_stored_one_and_a_later_one_does_not(
        self, store: ProjectionStore
    ) -> None:
        # The same report (same event id and content digest) sent twice and
        # stamped at different times: the earliest-recorded copy is kept.
        def copy(recorded_at: datetime) -> tuple[str, str, str, str]:
            payload = json.dumps({"event_id": "e1", "recorded_at": ts(recorded_at)})
            return ("e1", "digest-of-e1", ts(recorded_at), payload)

        day = lambda n: JULY + timedelta(days=n)  # noqa: E731
        for offset, recorded_at in enumerate((day(5), day(3), day(4))):
            store.commit_batch(batch(traced("TR-1", versions=[copy(recorded_at)])),
                               [Tracking(f"{LOG}#0", offset)], JULY)
        assert store.load_versions(["TR-1"])["TR-1"] == [(copy(day(3))[3], "digest-of-e1")]

    def test_lots_filter_by_trace_lot_and_holder_in_byte_order(self, store: ProjectionStore) -> None:
        # Upper case sorts before lower case, as bytes do (SQLite's order),
        # whatever the database server's locale would say.
        store.commit_batch(
            batch(
                traced("TR-b", lots=[lot("TR-b", "LOT-b1", holder="CN-SHAANXI")]),
                traced("TR-B", lots=[lot("TR-B", "LOT-B2", holder="KR-SEMI", license_id="LIC-1"),
                                     lot("TR-B", "LOT-B1", holder="CN-SHAANXI", shipped="0.001")]),
            ),
            [Tracking(f"{LOG}#0", 0)], JULY,
        )
        keys = lambda rows: [(r["trace_id"], r["lot_id"]) for r in rows]  # noqa: E731
        assert keys(store.lots()) == [("TR-B", "LOT-B1"), ("TR-B", "LOT-B2"), ("TR-b", "LOT-b1")]
        assert keys(store.lots(trace_id="TR-B")) == [("TR-B", "LOT-B1"), ("TR-B", "LOT-B2")]
        assert keys(store.lots(lot_id="LOT-b1")) == [("TR-b", "LOT-b1")]
        assert keys(store.lots(holder="CN-SHAANXI")) == [("TR-B", "LOT-B1"), ("TR-b", "LOT-b1")]
        assert keys(store.lots(trace_id="TR-B", holder="CN-SHAANXI")) == [("TR-B", "LOT-B1")]
        assert store.lots(holder="JP-FLUORO") == []
        # Decimals come back in the canonical spelling they were written in.
        assert store.lots(lot_id="LOT-B1")[0]["shipped"] == "0.001"
        assert keys(store.license_lots(["LIC-1", "LIC-unknown"])) == [("TR-B", "LOT-B2")]
        # The lots of several traces in one read, in the same byte order.
        assert keys(store.trace_lots(["TR-b", "TR-B", "TR-unknown"])) == [
            ("TR-B", "LOT-B1"), ("TR-B", "LOT-B2"), ("TR-b", "LOT-b1")]
        assert store.trace_lots(["TR-B"]) == store.lots(trace_id="TR-B")
        assert store.trace_lots([]) == []
        assert store.trace_ids_for(lot_or_trace="LOT-B1") == ["TR-B"]

    def test_standing_alerts_depend_on_the_clock(self, store: ProjectionStore) -> None:
        # 30 kg unaccounted from day 90, accounted for (0) from day 120.
        # a premise finding with no quantity, critical, at another party.
        day = lambda n: JULY + timedelta(days=n)  # noqa: E731
        store.commit_batch(
            batch(
                traced("TR-1", steps=[step("A-1", day(90)), step("A-1", day(120), quantity="0")]),
                traced("TR-2", steps=[step("A-2", day(100), trace_id="TR-2", lot_id="LOT-2", party="CN-JIANGSU",
                                           kind="premise_deviation", severity="critical", quantity=None,
                                           unit=None, event_ids=("e7", "e8"))]),
            ),
            [Tracking(f"{LOG}#0", 0)], JULY,
        )
        standing = lambda at, **f: [(a["alert_id"], a["quantity"]) for a in store.standing_alerts(at, **f)]  # noqa: E731
        assert standing(day(89)) == []
        assert standing(day(90)) == [("A-1", "30")]  # due at: stands from that instant
        assert standing(day(100)) == [("A-1", "30"), ("A-2", None)]
        assert standing(day(120)) == [("A-2", None)]  # quantity '0' does not stand
        assert standing(day(100), party="CN-JIANGSU") == [("A-2", None)]
        assert standing(day(100), severity="critical") == [("A-2", None)]
        assert standing(day(100), trace_id="TR-1") == [("A-1", "30")]
        assert standing(day(100), party="KR-SEMI", severity="critical") == []
        assert store.standing_alerts(day(100), trace_id="TR-2")[0]["event_ids"] == ["e7", "e8"]

    def test_alert_step_times_list_every_step_of_the_alerts_asked_about(self, store: ProjectionStore) -> None:
        day = lambda n: JULY + timedelta(days=n)  # noqa: E731
        store.commit_batch(batch(traced("TR-1", steps=[step("A-1", day(120), quantity="0"), step("A-1", day(90)),
                                                       step("A-2", day(95), quantity=None, unit=None)])),
                           [Tracking(f"{LOG}#0", 0)], JULY)
        assert store.alert_step_times(["A-1", "A-9"]) == {"A-1": [(ts(day(90)), "30"), (ts(day(120)), "0")]}
        assert store.alert_step_times(["A-2"]) == {"A-2": [(ts(day(95)), None)]}

    def test_sweep_journals_newly_due_alerts_exactly_once(self, store: ProjectionStore) -> None:
        day = lambda n: JULY + timedelta(days=n)  # noqa: E731
        store.commit_batch(batch(traced("TR-1", steps=[step("A-1", day(90)), step("A-1", day(120), quantity="0")])),
                           [Tracking(f"{LOG}#0", 0)], day(1))
        assert store.journal() == []  # nothing due yet when projected
        assert store.sweep(day(89)) == 0
        assert store.sweep(day(95)) == 1
        assert store.sweep(day(95)) == 0  # the same clock again
        assert store.sweep(day(110)) == 0  # nothing new came due
        assert store.sweep(day(121)) == 1  # the quantity was accounted for
        journal = store.journal()
        assert [(j["alert_id"], j["transition"], j["at"], j["quantity"]) for j in journal] == [
            ("A-1", "raised", ts(day(95)), "30"),
            ("A-1", "resolved", ts(day(121)), "30"),  # says what was resolved
        ]

    def test_a_sweep_in_pages_journals_what_one_call_would(self, open_store: OpenStore,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
        day = lambda n: JULY + timedelta(days=n)  # noqa: E731
        rows = batch(
            traced("TR-1", steps=[step("A-5", day(105)), step("A-1", day(90)), step("A-1", day(120), quantity="0"),
                                  step("A-8", day(200))]),
            traced("TR-2", steps=[step("A-7", day(128), trace_id="TR-2"), step("A-2", day(90), trace_id="TR-2"),
                                  step("A-2", day(125), trace_id="TR-2", quantity="20"),
                                  step("A-4", day(95), trace_id="TR-2")]),
            traced("TR-3", steps=[step("A-6", day(115), trace_id="TR-3"), step("A-3", day(110), trace_id="TR-3")]),
        )
        whole, paged = open_store("whole"), open_store("paged")
        for store in (whole, paged):
            store.commit_batch(rows, [Tracking(f"{LOG}#0", 0)], day(1))
        swept = [whole.sweep(day(100)), whole.sweep(day(130))]  # one page: SWEEP_PAGE is far above

        monkeypatch.setattr(sql_common, "SWEEP_PAGE", 2)
        calls: list[list[str]] = []
        journal = paged._journal  # type: ignore[attr-defined]

        def recording(c: object, alert_ids: set[str], clock: datetime) -> int:
            calls.append(sorted(alert_ids))
            return journal(c, alert_ids, clock)

        monkeypatch.setattr(paged, "_journal", recording)
        assert [paged.sweep(day(100)), paged.sweep(day(130))] == swept == [3, 6]
        # Each due alert once, in id order, two at a time: raised,
        # A-4 raised; then A-1 resolved, A-2 updated, A-3, A-5, A-6, A-7 raised.
        assert calls == [["A-1", "A-2"], ["A-4"], ["A-1", "A-2"], ["A-3", "A-5"], ["A-6", "A-7"]]
        assert paged.journal() == whole.journal()  # same transitions, ids, seq and order
        assert [(j["alert_id"], j["transition"]) for j in paged.journal()][3:5] == [
            ("A-1", "resolved"), ("A-2", "updated")]
        assert paged.sweep(day(130)) == whole.sweep(day(130)) == 0

    def test_journal_order_and_deterministic_transition_ids(self, store: ProjectionStore) -> None:
        day = lambda n: JULY + timedelta(days=n)  # noqa: E731
        store.commit_batch(batch(traced("TR-1", steps=[step("A-2", day(0)), step("A-1", day(0))])),
                           [Tracking(f"{LOG}#0", 0)], day(1))
        # The consignee reports more: A-1's quantity changes, A-2 is accounted for.
        store.commit_batch(batch(traced("TR-1", steps=[step("A-1", day(0), quantity="12")])),
                           [Tracking(f"{LOG}#0", 1)], day(2))
        journal = store.journal()
        assert [(j["alert_id"], j["transition"], j["transition_id"]) for j in journal] == [
            ("A-1", "raised", transition_id("A-1", "raised", 1)),
            ("A-2", "raised", transition_id("A-2", "raised", 1)),
            ("A-1", "updated", transition_id("A-1", "updated", 2, quantity="12")),
            ("A-2", "resolved", transition_id("A-2", "resolved", 2)),
        ]
        seqs = [j["seq"] for j in journal]
        assert seqs == sorted(seqs) and len(set(seqs)) == 4
        # Paging: after a seq, bounded by a limit.
        assert [j["seq"] for j in store.journal(after_seq=seqs[1], limit=1)] == [seqs[2]]
        assert store.journal(after_seq=seqs[-1]) == []

    def test_fingerprint_is_equal_for_equal_content_only(self, open_store: OpenStore) -> None:
        one, two, other = open_store("one"), open_store("two"), open_store("other")
        rows = batch(traced("TR-1", versions=[version("e1")], lots=[lot("TR-1", "LOT-1")],
                            steps=[step("A-1", JULY)]), licenses=[("LIC-1", "lic-e1", "d1", "{}")])
        # The same content, written at different clocks and with other offsets:
        # the journal and tracking are history, not state.
        one.commit_batch(rows, [Tracking(f"{LOG}#0", 5)], JULY)
        two.commit_batch(rows, [Tracking(f"{LOG}#0", 900)], JULY + timedelta(days=30))
        assert one.fingerprint() == two.fingerprint()
        other.commit_batch(
            batch(traced("TR-1", versions=[version("e1")], lots=[lot("TR-1", "LOT-1", on_hand="30.5")],
                         steps=[step("A-1", JULY)]), licenses=[("LIC-1", "lic-e1", "d1", "{}")]),
            [Tracking(f"{LOG}#0", 5)], JULY,
        )
        differing = {k for k, v in other.fingerprint().items() if one.fingerprint()[k] != v}
        assert differing == {"lots"}
        assert set(one.fingerprint()) == {"reports", "lots", "alert_steps", "licenses"}

    def test_dead_letters_are_kept_byte_for_byte(self, store: ProjectionStore) -> None:
        raw = b"\xff\x00{not json"
        letters = [DeadLetter(LOG, 1, 7, "TR-9", raw, "value is not UTF-8"),
                   DeadLetter(LOG, 0, 3, None, b"{}", "event_id: field required")]  # type: ignore[arg-type]
        store.commit_batch(batch(dead_letters=letters), [Tracking(f"{LOG}#0", 3), Tracking(f"{LOG}#1", 7)], JULY)
        assert store.dead_letters() == [
            {"log_name": LOG, "partition": 0, "offset": 3, "key": None, "value": b"{}",
             "error": "event_id: field required"},
            {"log_name": LOG, "partition": 1, "offset": 7, "key": "TR-9", "value": raw,
             "error": "value is not UTF-8"},
        ]

    def test_unread_records_are_found_by_key_without_a_quarantined_traces_own(self, store: ProjectionStore) -> None:
        letters = [DeadLetter(LOG, 1, 7, "TR-9", b"{", "not JSON"),
                   DeadLetter(LOG, 0, 3, "TR-9", b"{}", "event_id: field required"),
                   DeadLetter(LOG, 0, 4, "TR-9", b"{}", "quarantined: OverflowError: date value out of range"),
                   DeadLetter(LOG, 0, 5, "TR-8", b"[]", "not an object"),
                   DeadLetter(LOG, 0, 6, None, b"[]", "not an object")]  # type: ignore[arg-type]
        store.commit_batch(batch(dead_letters=letters), [Tracking(f"{LOG}#0", 6), Tracking(f"{LOG}#1", 7)], JULY)
        def sha(value: bytes) -> str:
            return hashlib.sha256(value).hexdigest()

        assert store.unread_records(["TR-9", "TR-7"]) == {
            "TR-9": sorted([(sha(b"{}"), "event_id: field required"), (sha(b"{"), "not JSON")])}
        assert store.unread_records(["TR-8"]) == {"TR-8": [(sha(b"[]"), "not an object")]}
        assert store.unread_records(["TR-7"]) == {}
        # The same bytes dead-lettered twice (a re-sent record) are one.
        again = [DeadLetter(LOG, 0, 9, "TR-8", b"[]", "not an object")]
        store.commit_batch(batch(dead_letters=again), [Tracking(f"{LOG}#0", 9)], JULY)
        assert store.unread_records(["TR-8"]) == {"TR-8": [(sha(b"[]"), "not an object")]}

    def test_licenses_are_found_by_id(self, store: ProjectionStore) -> None:
        store.commit_batch(batch(licenses=[("LIC-2", "e2", "d2", '{"b": 2}'), ("LIC-1", "e1", "d1", '{"a": 1}'),
                                           ("LIC-1", "e0", "d0", '{"a": 0}')]),
                           [Tracking(f"{LOG}#0", 0)], JULY)
        assert store.load_licenses(["LIC-1", "LIC-9"]) == [('{"a": 0}', "d0"), ('{"a": 1}', "d1")]

    @pytest.mark.parametrize("version_found", [0, 2])
    def test_a_store_of_another_schema_version_is_refused(
        self, open_store: OpenStore, set_schema_version: Callable[[str, int], None],
        identity: Callable[[str], str], version_found: int,
    ) -> None:
        open_store("old").close()
        set_schema_version("old", version_found)
        with pytest.raises(StoreUnavailable) as refused:
            open_store("old")
        message = str(refused.value)
        assert identity("old") in message
        assert f"schema version {version_found}" in message
        assert "version 1" in message


    # -- which log, and is the store whole -------------------------------------------

    def test_the_first_log_identity_recorded_is_the_one_kept(self, store: ProjectionStore) -> None:
        assert store.log_identity(LOG) is None
        assert store.record_log_identity(LOG, "log-a") == "log-a"
        assert store.record_log_identity(LOG, "log-b") == "log-a"
        assert store.log_identity(LOG) == "log-a"
        assert store.log_identity("another-log") is None

    def test_a_whole_store_passes_its_integrity_check(self, store: ProjectionStore) -> None:
        store.commit_batch(batch(traced("TR-1", versions=[version("e1")], lots=[lot("TR-1", "LOT-1")])),
                           [Tracking(f"{LOG}#0", 0)], JULY)
        method, problems = store.integrity_problems()
        assert method
        assert problems == []

    def test_an_index_that_lost_rows_fails_the_integrity_check(
        self, open_store: OpenStore, lose_index_rows: Callable[[str, str], None]
    ) -> None:
        store = open_store("damaged")
        store.commit_batch(batch(*(traced(f"TR-{n}", lots=[lot(f"TR-{n}", f"LOT-{n}")]) for n in range(20))),
                           [Tracking(f"{LOG}#0", 0)], JULY)
        store.close()
        lose_index_rows("damaged", "lots_by_lot")
        store = open_store("damaged")
        assert store.lots(lot_id="LOT-7") == []  # the damage is real: the lookup goes through the index
        _method, problems = store.integrity_problems()
        assert any("lots_by_lot" in p for p in problems), problems


class TestSQLiteProjectionStore(ProjectionStoreContract):
    @pytest.fixture
    def open_store(self, tmp_path: Path) -> Iterator[OpenStore]:
        opened: list[ProjectionStore] = []

        def open_(name: str = "main") -> ProjectionStore:
            opened.append(SQLiteProjectionStore(tmp_path / f"{name}.db"))
            return opened[-1]

        yield open_
        for store in opened:
            store.close()

    @pytest.fixture
    def set_schema_version(self, tmp_path: Path) -> Callable[[str, int], None]:
        def set_(name: str, version: int) -> None:
            with sqlite3.connect(tmp_path / f"{name}.db") as db:
                db.execute("UPDATE store_meta SET value = ? WHERE key = 'schema_version'", (str(version),))
            db.close()

        return set_

    @pytest.fixture
    def identity(self, tmp_path: Path) -> Callable[[str], str]:
        return lambda name: str(tmp_path / f"{name}.db")

    @pytest.fixture
    def lose_index_rows(self, tmp_path: Path) -> Callable[[str, str], None]:
        return lambda name, index: empty_sqlite_index(tmp_path / f"{name}.db", index)


class TestPostgresProjectionStore(ProjectionStoreContract):
    """Each store name is a schema of its own, beside the test's schema."""

    @pytest.fixture
    def schemas(self, postgres_url: str) -> Iterator[Callable[[str], str]]:
        base = postgres_url.rsplit("schema=", 1)[1]
        made: set[str] = set()

        def schema(name: str) -> str:
            made.add(f"{base}_{name}")
            return f"{base}_{name}"

        yield schema
        with admin_connection() as admin:
            for name in made:
                admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))

    @pytest.fixture
    def open_store(self, schemas: Callable[[str], str]) -> Iterator[OpenStore]:
        opened: list[ProjectionStore] = []

        def open_(name: str = "main") -> ProjectionStore:
            opened.append(PostgresProjectionStore.from_url(postgres_schema_url(schemas(name))))
            return opened[-1]

        yield open_
        for store in opened:
            store.close()

    @pytest.fixture
    def set_schema_version(self, schemas: Callable[[str], str]) -> Callable[[str, int], None]:
        def set_(name: str, version: int) -> None:
            with admin_connection() as admin:
                admin.execute(
                    sql.SQL("UPDATE {}.store_meta SET value = %s WHERE key = 'schema_version'").format(
                        sql.Identifier(schemas(name))),
                    (str(version),),
                )

        return set_

    @pytest.fixture
    def identity(self, schemas: Callable[[str], str]) -> Callable[[str], str]:
        return lambda name: f"schema={schemas(name)}"

    @pytest.fixture
    def lose_index_rows(self, schemas: Callable[[str], str]) -> Callable[[str, str], None]:
        """Rows written while the index is marked not ready never reach it
        (a superuser's catalog edit; what a failed CREATE INDEX CONCURRENTLY
        or a torn page can leave): half the table's rows go missing from it."""

        def lose(name: str, index: str) -> None:
            schema = sql.Identifier(schemas(name))
            qualified = f"{schemas(name)}.{index}"
            with admin_connection() as admin:
                admin.execute("UPDATE pg_index SET indisready = false WHERE indexrelid = %s::regclass", (qualified,))
                admin.execute(sql.SQL("CREATE TEMP TABLE moved AS SELECT * FROM {}.lots WHERE lot_id >= 'LOT-5'")
                              .format(schema))
                admin.execute(sql.SQL("DELETE FROM {}.lots WHERE lot_id >= 'LOT-5'").format(schema))
                admin.execute(sql.SQL("INSERT INTO {}.lots SELECT * FROM moved").format(schema))
                admin.execute("UPDATE pg_index SET indisready = true WHERE indexrelid = %s::regclass", (qualified,))

        return lose


def test_postgres_integrity_check_uses_amcheck_where_the_database_has_it(tmp_path: Path) -> None:
    """amcheck's bt_index_check(heapallindexed) finds an index that lost rows.
    A database of its own: installing an extension is database-wide."""
    database = f"ledger_amcheck_{uuid.uuid4().hex[:8]}"
    with admin_connection() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    server = postgres_server_url().rsplit("/", 1)[0]
    try:
        with psycopg.connect(f"{server}/{database}", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION amcheck")
        store = PostgresProjectionStore.from_url(f"{server}/{database}?schema=store")
        try:
            store.commit_batch(batch(*(traced(f"TR-{n}", lots=[lot(f"TR-{n}", f"LOT-{n}")]) for n in range(20))),
                               [Tracking(f"{LOG}#0", 0)], JULY)
            method, problems = store.integrity_problems()
            assert (method, problems) == (
                "PostgreSQL amcheck bt_index_check(heapallindexed) on every B-tree index", [])
            with psycopg.connect(f"{server}/{database}", autocommit=True) as conn:
                conn.execute("UPDATE pg_index SET indisready = false WHERE indexrelid = 'store.lots_by_lot'::regclass")
                conn.execute("CREATE TEMP TABLE moved AS SELECT * FROM store.lots WHERE lot_id >= 'LOT-5'")
                conn.execute("DELETE FROM store.lots WHERE lot_id >= 'LOT-5'")
                conn.execute("INSERT INTO store.lots SELECT * FROM moved")
                conn.execute("UPDATE pg_index SET indisready = true WHERE indexrelid = 'store.lots_by_lot'::regclass")
            _method, problems = store.integrity_problems()
            assert len(problems) == 1 and problems[0].startswith("index lots_by_lot of lots: "), problems
        finally:
            store.close()
    finally:
        with admin_connection() as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))


# -- both stores, one story ------------------------------------------------------


def test_the_2019_story_projects_to_the_same_fingerprint_on_sqlite_and_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    # The demo data, ingested into the embedded log at a fixed clock, then
    # projected in small batches into each store at the same clocks.
    clock = datetime(2019, 12, 1, tzinfo=UTC)
    log = EmbeddedLog(tmp_path / "log.db")
    with STORY.open(encoding="utf-8") as lines:
        report = ingest_lines(lines, log, source=str(STORY), clock=lambda: clock)
    assert report.rejected == 0 and report.accepted > 20
    sqlite_store = SQLiteProjectionStore(tmp_path / "projections.db")
    postgres_store = PostgresProjectionStore.from_url(postgres_url)
    try:
        for store in (sqlite_store, postgres_store):
            totals = catch_up(log, store, policy=Policy(), clock=lambda: clock, batch_max=5)
            assert totals.records == report.accepted
            store.sweep(clock + timedelta(days=365))
        assert postgres_store.fingerprint() == sqlite_store.fingerprint()
        # Beyond the fingerprint: what people are shown, and what was published.
        later = clock + timedelta(days=365)
        assert postgres_store.lots() == sqlite_store.lots()
        assert postgres_store.standing_alerts(later) == sqlite_store.standing_alerts(later)
        assert len(sqlite_store.standing_alerts(later)) > 0
        unsequenced = lambda journal: [{k: v for k, v in j.items() if k != "seq"} for j in journal]  # noqa: E731
        assert unsequenced(postgres_store.journal()) == unsequenced(sqlite_store.journal())
        assert postgres_store.tracked_offsets(log.name) == sqlite_store.tracked_offsets(log.name)
    finally:
        sqlite_store.close()
        postgres_store.close()
        log.close()


def test_postgres_fixture_gives_each_test_its_own_schema(postgres_url: str) -> None:
    schema = postgres_url.rsplit("schema=", 1)[1]
    with admin_connection() as admin:
        found = admin.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchall()
    assert found == [(1,)]

"""A license and the export citing it may sit in different partitions, handled
by two projectors sharing one store file (a Kafka consumer group).  Each batch
holds the store's batch lock from its first read to its commit, so the second
reads what the first committed: whichever goes first, the stored answer is the
reference (tests/unit/test_license_order.py: any order, one projector).
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from builders import exported, license_granted, log_records, re_exported, stamp
from ledger.policy import Policy
from projections.batch_lock import exclusive
from projections.sqlite_store import SQLiteProjectionStore
from projections.trace_projection import project_batch

POLICY = Policy()
CLOCK = datetime(2020, 6, 1, tzinfo=timezone.utc)
LICENSE = "JP-IND-2019-0001"


def _standing(store):
    return sorted((a["kind"], a["lot_id"], a["quantity"]) for a in store.standing_alerts(CLOCK))


def _reference(tmp_path, name, *reports_):
    store = SQLiteProjectionStore(tmp_path / f"{name}-reference.db")
    project_batch(store, "log", log_records(reports_), policy=POLICY, now=CLOCK)
    try:
        return _standing(store)
    finally:
        store.close()


def _at_once(path, first, second):
    """Projector A is in the middle of its batch of ``first`` (partition 0)
    when projector B, another store handle on the same file, starts its batch
    of ``second`` (partition 1)."""
    a, b = SQLiteProjectionStore(path), SQLiteProjectionStore(path)
    finished, failures = threading.Event(), []

    def projector_b():
        try:
            project_batch(b, "log", log_records(second, partition=1), policy=POLICY, now=CLOCK)
        except Exception as error:  # reported below, not lost in the thread
            failures.append(error)
        finished.set()

    try:
        with exclusive(a):
            thread = threading.Thread(target=projector_b)
            thread.start()
            # B waits for A's batch: reading now, it would compute without A's reports.
            assert not finished.wait(0.5), "projector B computed while A held the batch lock"
            project_batch(a, "log", log_records(first), policy=POLICY, now=CLOCK)
        thread.join(30)
        assert finished.is_set() and not failures, failures
        return _standing(a)
    finally:
        a.close()
        b.close()


def test_a_license_and_its_export_projected_at_once_by_two_projectors_end_as_the_reference(tmp_path):
    grant = stamp(license_granted(LICENSE, "2019-07-01", recorded_at="2019-07-01", end_users=("KR-SEMI",)))
    export = stamp(exported("A1", "100", trace="TR-A", at="2019-07-10", license_id=LICENSE, end_user="KR-SEMI"))
    onward = stamp(re_exported("A1", "A1-CN", "60", trace="TR-A", at="2019-08-01", end_user="CN-SEMI-XIAN"))
    reference = _reference(tmp_path, "premise", grant, export, onward)
    assert ("premise_deviation", "A1-CN", "60") in reference

    assert _at_once(tmp_path / "license-first.db", [grant], [export, onward]) == reference
    assert _at_once(tmp_path / "export-first.db", [export, onward], [grant]) == reference


def test_two_exports_under_one_ceiling_projected_at_once_end_as_the_reference(tmp_path):
    grant = stamp(license_granted(LICENSE, "2019-07-01", recorded_at="2019-07-01",
                                  ceiling={"amount": "150", "unit": "kg"}))
    first = stamp(exported("A1", "100", trace="TR-A", at="2019-07-10", license_id=LICENSE))
    second = stamp(exported("B1", "80", trace="TR-B", at="2019-08-10", license_id=LICENSE))
    reference = _reference(tmp_path, "ceiling", grant, first, second)
    assert ("license_ceiling", "B1", "30") in reference

    path = tmp_path / "ceiling.db"
    seeded = SQLiteProjectionStore(path)
    project_batch(seeded, "log", log_records([grant], partition=2), policy=POLICY, now=CLOCK)
    seeded.close()
    assert _at_once(path, [first], [second]) == reference

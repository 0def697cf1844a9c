"""Quarantine, not stop (issue 14): a record or a trace the projection cannot
handle is dead-lettered with the reason, the trace is flagged with a
``quarantined`` alert, and the rest of the batch and the log go on.  The
answer stays a function of the set of reports: replay and any batching give
the same rows."""

from datetime import datetime, timezone

from consumers.log.embedded import EmbeddedLog
from ledger.events import event_key
from consumers.projector import catch_up, rebuild
from ledger.events import digest_and_json
from ledger.policy import Policy
from projections.rows import ts
from projections.sqlite_store import SQLiteProjectionStore
from projections.store import ProjectedBatch, TraceRows
from tests.builders import OVERFLOWING_RECEIPT, append_stamped, exported, received, stamp

POLICY = Policy()
NOW = datetime(2020, 1, 2, tzinfo=timezone.utc)
RECORDED = "2019-12-01T00:00:00+00:00"


def test_a_record_the_contract_refuses_in_the_log_is_dead_lettered_and_the_log_goes_on():
    # An older ledger (or another producer) wrote the report to the log.
    log = EmbeddedLog(":memory:")
    append_stamped(log, exported("G1", trace="TR-GOOD"))
    log.append([("q-rcv-1", "0" * 64, "TR-Q1", OVERFLOWING_RECEIPT)])
    append_stamped(log, received("G1", trace="TR-GOOD"))
    store = SQLiteProjectionStore(":memory:")

    totals = catch_up(log, store, policy=POLICY, clock=lambda: NOW)

    assert (totals.records, totals.dead_letters) == (3, 1)
    [dead] = store.dead_letters()
    assert dead["key"] == "TR-Q1"
    assert "field 'occurred_at' value \"0001-01-01T00:00:00+14:00\"" in dead["error"]
    assert "years 1900 to 2199" in dead["error"]
    [lot] = store.lots()
    assert (lot["trace_id"], lot["received"]) == ("TR-GOOD", "100")
    # The trace the record is about (its log key) is flagged for the operator.
    [alert] = store.standing_alerts(NOW, trace_id="TR-Q1")
    assert (alert["kind"], alert["severity"]) == ("quarantined", "high")
    assert alert["message"].startswith("a record about trace 'TR-Q1' (sha256 ")
    assert "could not be read and is quarantined in the dead letters: field 'occurred_at'" in alert["message"]


def test_a_record_that_cannot_be_read_flags_its_trace_in_any_batching_and_on_replay():
    log = EmbeddedLog(":memory:")
    append_stamped(log, exported("Q1", trace="TR-Q1"), exported("G1", trace="TR-GOOD"))
    log.append([("q-rcv-1", "0" * 64, "TR-Q1", OVERFLOWING_RECEIPT)])
    append_stamped(log, received("Q1", qty="40", trace="TR-Q1"), received("G1", trace="TR-GOOD"))
    stores = [SQLiteProjectionStore(":memory:") for name in ("one", "all", "rebuilt")]
    catch_up(log, stores[0], policy=POLICY, clock=lambda: NOW, batch_max=1)
    catch_up(log, stores[1], policy=POLICY, clock=lambda: NOW)
    rebuild(log, stores[2], policy=POLICY, clock=lambda: NOW)

    assert stores[0].fingerprint() == stores[1].fingerprint() == stores[2].fingerprint()
    for store in stores:
        # The trace is still computed from the reports that could be read.
        assert [(lot["lot_id"], lot["received"]) for lot in store.lots(trace_id="TR-Q1")] == [("Q1", "40")]
        assert "quarantined" in {a["kind"] for a in store.standing_alerts(NOW, trace_id="TR-Q1")}
        assert "quarantined" not in {a["kind"] for a in store.standing_alerts(NOW, trace_id="TR-GOOD")}


def _store_holding_an_old_version() -> SQLiteProjectionStore:
    """A store an older ledger projected: it holds the issue's report as a
    version of TR-Q1, which the contract now refuses, so every recomputation
    of TR-Q1 fails."""
    store = SQLiteProjectionStore(":memory:")
    batch = ProjectedBatch(traces=[TraceRows("TR-Q1", [("q-rcv-1", "0" * 64, ts(datetime.fromisoformat(RECORDED)),
                                                        OVERFLOWING_RECEIPT.decode())], [], [])])
    store.commit_batch(batch, [], NOW)
    return store


def _log_for_poisoned_trace() -> EmbeddedLog:
    log = EmbeddedLog(":memory:")
    append_stamped(log, exported("Q1", trace="TR-Q1", at="2019-07-10"), exported("G1", trace="TR-GOOD"),
           received("G1", trace="TR-GOOD"), received("Q1", qty="40", trace="TR-Q1"),
           exported("G2", trace="TR-GOOD-2"))
    return log


def test_a_trace_that_cannot_be_computed_is_quarantined_and_the_rest_of_the_batch_goes_on():
    log = _log_for_poisoned_trace()
    store = _store_holding_an_old_version()

    totals = catch_up(log, store, policy=POLICY, clock=lambda: NOW)  # does not raise

    assert totals.records == 5
    assert sorted({lot["trace_id"] for lot in store.lots()}) == ["TR-GOOD", "TR-GOOD-2"]
    quarantined = [a for a in store.standing_alerts(NOW) if a["kind"] == "quarantined"]
    assert [(a["trace_id"], a["severity"]) for a in quarantined] == [("TR-Q1", "high")]
    assert "could not be projected and is quarantined" in quarantined[0]["message"]
    assert ("ValidationError: field 'occurred_at' value \"0001-01-01T00:00:00+14:00\": must be in the years 1900 "
            "to 2199 (UTC)") in quarantined[0]["message"]
    assert "\n" not in quarantined[0]["message"]
    # It stands at every as-of time: the trace cannot be computed at any.
    assert [a["kind"] for a in store.standing_alerts(datetime(1990, 1, 1, tzinfo=timezone.utc))] == ["quarantined"]
    dead = store.dead_letters()
    assert [d["key"] for d in dead] == ["TR-Q1", "TR-Q1"]
    assert all(d["error"].startswith("quarantined: ValidationError") for d in dead)
    # Its reports are kept: the trace is still the set of its reports.
    assert len(store.all_versions()["TR-Q1"]) == 3


def test_a_quarantined_trace_is_the_same_in_any_batching_and_on_replay():
    log = _log_for_poisoned_trace()
    one_by_one = _store_holding_an_old_version()
    catch_up(log, one_by_one, policy=POLICY, clock=lambda: NOW, batch_max=1)
    together = _store_holding_an_old_version()
    catch_up(log, together, policy=POLICY, clock=lambda: NOW)
    rebuilt = _store_holding_an_old_version()
    rebuild(log, rebuilt, policy=POLICY, clock=lambda: NOW)

    assert one_by_one.fingerprint() == together.fingerprint() == rebuilt.fingerprint()
    assert one_by_one.lots() == together.lots() == rebuilt.lots()


def test_a_trace_without_a_fault_is_not_quarantined():
    # The other side: the same reports, and a store without the old version.
    log = _log_for_poisoned_trace()
    store = SQLiteProjectionStore(":memory:")

    catch_up(log, store, policy=POLICY, clock=lambda: NOW)

    assert "quarantined" not in {a["kind"] for a in store.standing_alerts(NOW)}
    assert store.dead_letters() == []
    assert sorted({lot["trace_id"] for lot in store.lots()}) == ["TR-GOOD", "TR-GOOD-2", "TR-Q1"]


def test_as_of_answers_show_the_quarantine_and_leave_the_trace_out_as_the_projection_does():
    from projections.queries import standing_alerts, whereabouts

    log = _log_for_poisoned_trace()
    store = _store_holding_an_old_version()
    catch_up(log, store, policy=POLICY, clock=lambda: NOW)
    then = datetime(2019, 12, 1, tzinfo=timezone.utc)

    alerts = standing_alerts(store, now=NOW, policy=POLICY, as_of=then)
    assert [a["trace_id"] for a in alerts if a["kind"] == "quarantined"] == ["TR-Q1"]
    assert {a["trace_id"] for a in alerts if a["kind"] != "quarantined"} <= {"TR-GOOD", "TR-GOOD-2"}
    rows = whereabouts(store, None, now=NOW, policy=POLICY, as_of=then)
    assert sorted({r["trace_id"] for r in rows}) == ["TR-GOOD", "TR-GOOD-2"]


def test_the_same_records_in_any_arrival_order_give_the_same_rows():
    import random

    good = [exported("Q1", trace="TR-Q1"), exported("G1", trace="TR-GOOD"), received("Q1", qty="40", trace="TR-Q1"),
            received("G1", trace="TR-GOOD")]
    records = []
    for event in good:
        digest, value = digest_and_json(stamp(event, RECORDED))
        records.append((event.event_id, digest, event_key(event), value))
    records.append(("q-rcv-1", "0" * 64, "TR-Q1", OVERFLOWING_RECEIPT))
    fingerprints = []
    for seed in range(4):
        order = list(records)
        random.Random(seed).shuffle(order)
        log = EmbeddedLog(":memory:")
        for record in order:
            log.append([record])
        store = SQLiteProjectionStore(":memory:")
        catch_up(log, store, policy=POLICY, clock=lambda: NOW, batch_max=2)
        fingerprints.append(store.fingerprint())
        assert "quarantined" in {a["kind"] for a in store.standing_alerts(NOW, trace_id="TR-Q1")}
    assert all(fp == fingerprints[0] for fp in fingerprints)

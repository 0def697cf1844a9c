"""Retractions and corrections: only the original reporter may fix a report;
the original stays in history; the account and the alerts follow the fix;
as-of and known-at queries see the ledger before and after it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from builders import consumed, exported, projected, received, retracted, stamp, versions, when
from ledger.account import build_account
from ledger.alerts import alert_steps, alerts_as_of
from ledger.events import parse_event
from ledger.policy import Policy
from projections.queries import standing_alerts, whereabouts

POLICY = Policy()


def corrected(target, qty: str, unit: str = "kg", at: str = "2019-09-01", *, by: str | None = None,
              event_id: str | None = None, recorded_at: str | None = None):
    body = {
        "type": "corrected", "event_id": event_id or f"corrected.{target.event_id}.{qty}{unit}",
        "occurred_at": when(at).isoformat(), "reporter": by or target.reporter,
        "trace_id": target.trace_id, "lot_id": target.lot_id, "corrected_event_id": target.event_id,
        "quantity": {"amount": qty, "unit": unit}, "reason": "miscounted at the gate",
    }
    if recorded_at:
        body["recorded_at"] = when(recorded_at).isoformat()
    return parse_event(body)


def lot(*reports, **kw):
    return build_account("TR-1", versions(*reports), **kw).lots["L1"]


def findings(*reports):
    return [(f.kind, f.event_ids, f.message) for f in build_account("TR-1", versions(*reports)).findings]


# -- corrections ---------------------------------------------------------------------------


def test_a_correction_by_the_original_reporter_replaces_the_quantity():
    # KR-SEMI reported 100 kg received, then corrects it to 90 kg.
    receipt = received(qty="100")
    account = lot(exported(), receipt, corrected(receipt, "90"))
    assert (account.received, account.in_transit) == (Decimal(90), Decimal(10))


def test_a_correction_in_another_unit_of_the_same_dimension_is_converted():
    receipt = received(qty="100")
    assert lot(exported(), receipt, corrected(receipt, "0.095", "t")).received == Decimal(95)


def test_the_later_of_two_corrections_stands_in_any_arrival_order():
    receipt = received(qty="100")
    first, second = corrected(receipt, "90", at="2019-09-01"), corrected(receipt, "95", at="2019-09-02")
    assert lot(exported(), receipt, first, second).received == Decimal(95)
    assert lot(second, receipt, first, exported()).received == Decimal(95)


def test_a_correction_by_anyone_else_is_refused_and_names_both_events():
    receipt = received(qty="100")
    meddling = corrected(receipt, "10", by="JP-FLUORO")
    assert lot(exported(), receipt, meddling).received == Decimal(100)
    [(kind, ids, message)] = findings(exported(), receipt, meddling)
    assert kind == "invalid_report" and ids == (meddling.event_id,)
    assert f"by 'JP-FLUORO' refused: event {receipt.event_id!r} was reported by 'KR-SEMI'" in message


def test_a_correction_that_changes_the_unit_dimension_is_refused_naming_the_event():
    receipt = received(qty="100")
    wrong = corrected(receipt, "100", "L")
    [(kind, ids, message)] = findings(exported(), receipt, wrong)
    assert kind == "invalid_report" and ids == (wrong.event_id,)
    assert message == (
        f"correction {wrong.event_id!r} of event {receipt.event_id!r} changes the unit from 'kg' (mass) "
        f"to 'L' (volume); a correction cannot change the dimension"
    )


def test_a_correction_to_zero_of_a_report_that_needs_a_positive_quantity_is_refused():
    receipt = received(qty="100")
    [(_kind, _ids, message)] = findings(exported(), receipt, corrected(receipt, "0"))
    assert "quantity 0 kg must be greater than 0" in message


def test_a_correction_of_an_unknown_or_retracted_event_is_refused():
    receipt = received(qty="100")
    ghost = corrected(receipt.model_copy(update={"event_id": "no-such-report"}), "90")
    [(_k, _i, message)] = findings(exported(), receipt, ghost)
    assert "names event 'no-such-report', which is not known (or was retracted) in trace 'TR-1'" in message
    gone = retracted(receipt, "2019-08-01")
    assert lot(exported(), receipt, gone, corrected(receipt, "90")).received == 0


def test_retracting_a_correction_restores_the_original_quantity():
    receipt = received(qty="100")
    fix = corrected(receipt, "90")
    assert lot(exported(), receipt, fix, retracted(fix, "2019-09-02")).received == Decimal(100)


def test_alerts_re_evaluate_after_a_correction():
    # 100 kg received, 70 consumed: 30 unaccounted after 90 days.  The receipt
    # is corrected to 70 kg: nothing is unaccounted any more (30 kg short in transit instead).
    receipt = received(qty="100")
    before = versions(exported(), receipt, consumed(qty="70"))
    after = versions(exported(), receipt, consumed(qty="70"), corrected(receipt, "70"))
    late = datetime(2020, 1, 1, tzinfo=timezone.utc)

    def standing(vs):
        return sorted((a.kind, a.quantity) for a in alerts_as_of(alert_steps(build_account("TR-1", vs), POLICY), late))

    assert standing(before) == [("unaccounted", Decimal(30))]
    assert standing(after) == [("short_receipt", Decimal(30))]


# -- retractions -------------------------------------------------------------------------------


def test_a_retraction_of_an_unknown_event_is_refused_naming_it():
    ghost = retracted("no-such-report", lot="L1", by="KR-SEMI")
    [(kind, ids, message)] = findings(exported(), ghost)
    assert kind == "invalid_report" and ids == (ghost.event_id,)
    assert message == (
        f"retraction {ghost.event_id!r} names event 'no-such-report', which is not known in trace 'TR-1'"
    )


def test_a_retraction_by_anyone_else_is_refused():
    receipt = received(qty="100")
    meddling = retracted(receipt, by="JP-FLUORO")
    assert lot(exported(), receipt, meddling).received == Decimal(100)
    assert "only the original reporter may retract it" in findings(exported(), receipt, meddling)[0][2]


# -- bitemporal: as of D, known at K, before and after a retraction -------------------------------


def test_whereabouts_as_of_and_known_at_before_and_after_a_retraction():
    # KR-SEMI reports 70 kg consumed on 2019-08-20 (recorded that day), and on
    # 2019-10-01 retracts it (recorded 2019-10-02): it was never consumed.
    use = consumed(qty="70", recorded_at="2019-08-20T12:00:00+00:00")
    reports = [
        exported(recorded_at="2019-07-10T12:00:00+00:00"),
        received(qty="100", recorded_at="2019-07-15T12:00:00+00:00"),
        use,
        retracted(use, "2019-10-01", recorded_at="2019-10-02T00:00:00+00:00"),
    ]
    clock = datetime(2020, 6, 1, tzinfo=timezone.utc)
    store = projected([stamp(r) for r in reports], policy=POLICY, now=clock)

    def consumed_kg(**kw):
        [row] = whereabouts(store, "L1", now=clock, policy=POLICY, **kw)
        return row["consumed"], row["on_hand"]

    # Now: the retraction stands, nothing was consumed, 100 kg on hand.
    assert consumed_kg() == ("0", "100")
    # As of 2019-09-30, before the retraction occurred: a retraction fixes the
    # record, not the world, so the withdrawn consumption never happened on any date.
    assert consumed_kg(as_of=when("2019-09-30T23:59:59+00:00")) == ("0", "100")
    # Before the consumption occurred, as of 2019-08-19: 100 kg on hand either way.
    assert consumed_kg(as_of=when("2019-08-19T00:00:00+00:00")) == ("0", "100")
    # What the ledger said on 2019-09-30 about 2019-09-30: 70 consumed.
    assert consumed_kg(as_of=when("2019-09-30T23:59:59+00:00"),
                       known_at=when("2019-09-30T23:59:59+00:00")) == ("70", "30")
    # As of today, but with what the ledger knew on 2019-10-01 (retraction not yet recorded).
    assert consumed_kg(known_at=when("2019-10-01T23:59:59+00:00")) == ("70", "30")
    # Known at 2019-10-02: the retraction is known.
    assert consumed_kg(known_at=when("2019-10-02T00:00:00+00:00")) == ("0", "100")
    # The original stays in history: the store still holds all four reports.
    assert len(store.load_versions(["TR-1"])["TR-1"]) == 4
    # And the unaccounted alert follows: 100 kg unaccounted now, 30 kg as known before the retraction.
    now = {a["kind"]: a["quantity"] for a in standing_alerts(store, now=clock, policy=POLICY)}
    assert now["unaccounted"] == "100"
    earlier = standing_alerts(store, now=clock, policy=POLICY, known_at=when("2019-10-01T23:59:59+00:00"))
    assert {a["kind"]: a["quantity"] for a in earlier}["unaccounted"] == "30"
    store.close()

"""License ceilings in the as-of answer: an auditor asking "what stood on
date D, as known at K" gets the license_ceiling alerts too, counted from the
shipments citing the license by D that the ledger knew at K, against the
license as granted (or amended) by D and known at K.

Asked of a real projection store (projections/queries.py), like test_as_of.py.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from builders import EXPORTER, MICROSECOND, exported, license_granted, projected, retracted, stamp, when
from ledger.licenses import ceiling_trace_id
from ledger.policy import Policy
from projections.queries import standing_alerts
from projections.store import ProjectionStore

POLICY = Policy()
NOW = datetime(2021, 1, 1, tzinfo=timezone.utc)
LICENSE = "JP-IND-2019-0001"
CEILING = ceiling_trace_id(LICENSE)

GRANT = license_granted(LICENSE, "2019-07-01", ceiling={"amount": "150", "unit": "kg"}, recorded_at="2019-07-01")
# 100 kg in July, then 80 kg in August: 30 kg over the 150 kg ceiling from the second shipment.
FIRST = exported("A1", "100", trace="TR-A", at="2019-07-10", license_id=LICENSE, end_user="KR-SEMI",
                 event_id="exp-A1")
SECOND = exported("B1", "80", trace="TR-B", at="2019-08-10", license_id=LICENSE, end_user="KR-SEMI",
                  event_id="exp-B1")
# Another exporter's trace under a license without a ceiling.
OTHER = exported("X1", "500", trace="TR-X", at="2019-07-20", license_id="JP-BULK-2019-0009",
                 event_id="exp-X1")
OTHER_GRANT = license_granted("JP-BULK-2019-0009", "2019-07-01", kind="general_bulk", recorded_at="2019-07-01")

AUGUST_END = when("2019-08-31T23:59:59+00:00")
SEPTEMBER_END = when("2019-09-30T23:59:59+00:00")


def project(*reports) -> ProjectionStore:
    return projected([stamp(r) for r in reports], policy=POLICY, now=NOW)


@pytest.fixture
def store():
    store = project(GRANT, FIRST, SECOND, OTHER_GRANT, OTHER)
    yield store
    store.close()


def ceilings(rows):
    return [r for r in rows if r["kind"] == "license_ceiling"]


def as_of(store, when_, **kw):
    return ceilings(standing_alerts(store, now=NOW, policy=POLICY, as_of=when_, **kw))


# -- as of a date ---------------------------------------------------------------------------


def test_a_ceiling_exceeded_by_august_is_in_the_answer_now(store):
    [now] = ceilings(store.standing_alerts(NOW))
    assert (now["trace_id"], now["lot_id"], now["party"], now["quantity"], now["unit"]) == (
        CEILING, "B1", EXPORTER, "30", "kg")


def test_a_ceiling_exceeded_by_august_is_in_the_answer_as_of_august(store):
    [then] = as_of(store, AUGUST_END)
    [now] = ceilings(store.standing_alerts(NOW))
    # The same alert, step and words as the projection keeps.
    assert then == now
    assert then["event_ids"] == [GRANT.event_id, "exp-B1"]
    assert "total 180 kg by lot B1 (trace TR-B)" in then["message"]


def test_a_ceiling_exceeded_by_august_is_not_in_the_answer_before_the_second_shipment(store):
    assert as_of(store, SECOND.occurred_at - MICROSECOND) == []
    assert [a["lot_id"] for a in as_of(store, SECOND.occurred_at)] == ["B1"]


def test_the_answer_as_of_now_is_the_answer_now(store):
    assert standing_alerts(store, now=NOW, policy=POLICY, as_of=NOW) == store.standing_alerts(NOW)


def test_a_trace_citing_the_license_answers_with_the_ceiling_counted_across_traces(store):
    # TR-A's own 100 kg is within the ceiling; TR-B's shipment took the license over it.
    [then] = as_of(store, AUGUST_END, trace_id="TR-A")
    assert (then["trace_id"], then["lot_id"], then["quantity"]) == (CEILING, "B1", "30")
    assert as_of(store, AUGUST_END, trace_id="TR-X") == []


def test_the_ceiling_alert_is_addressed_to_the_license_holder(store):
    assert len(as_of(store, AUGUST_END, party=EXPORTER)) == 1
    assert as_of(store, AUGUST_END, party="KR-SEMI") == []


def test_the_answer_now_for_a_trace_includes_the_ceiling_of_the_licenses_it_cites(store):
    # Now and "as of now" agree for one trace too.
    for trace_id in ("TR-A", "TR-B", "TR-X"):
        now = standing_alerts(store, now=NOW, policy=POLICY, trace_id=trace_id)
        assert now == standing_alerts(store, now=NOW, policy=POLICY, as_of=NOW, trace_id=trace_id)
        assert len(ceilings(now)) == (0 if trace_id == "TR-X" else 1)


# -- known at a moment -----------------------------------------------------------------------


def test_a_retraction_known_later_does_not_change_what_was_known_then():
    # The August export pushed the license over; it was withdrawn in October.
    withdrawal = retracted(SECOND, "2019-10-01", event_id="ret-B1", recorded_at="2019-10-01")
    store = project(GRANT, FIRST, SECOND, withdrawal)
    try:
        # Known at the end of September, the ceiling stood as of August: in the whole
        # answer and in the answer about the withdrawn export's trace.  (A --trace answer
        # about another trace counts the traces citing the license now: docs/COMPLIANCE.md.)
        for trace_id in (None, "TR-B"):
            [then] = as_of(store, AUGUST_END, known_at=SEPTEMBER_END, trace_id=trace_id)
            assert (then["lot_id"], then["quantity"]) == ("B1", "30")
        # Once the retraction is known, it withdraws the shipment on every date.
        assert as_of(store, AUGUST_END) == []
        assert ceilings(store.standing_alerts(NOW)) == []
    finally:
        store.close()


def test_a_shipment_reported_late_counts_only_once_known():
    late = stamp(SECOND, "2019-09-20")
    store = project(GRANT, FIRST, late)
    try:
        assert as_of(store, AUGUST_END, known_at=when("2019-09-01")) == []
        [known] = as_of(store, AUGUST_END, known_at=when("2019-09-20"))
        assert known["quantity"] == "30"
    finally:
        store.close()


def test_the_ceiling_is_the_one_granted_by_then_and_known_then():
    # The ceiling was raised to 200 kg on 2019-09-15, recorded on 2019-09-16.
    amendment = license_granted(LICENSE, "2019-09-15", ceiling={"amount": "200", "unit": "kg"},
                                event_id="license_granted.amended", recorded_at="2019-09-16")
    store = project(GRANT, FIRST, SECOND, amendment)
    try:
        assert ceilings(store.standing_alerts(NOW)) == []  # 180 kg of 200 kg
        assert len(as_of(store, AUGUST_END)) == 1  # the 150 kg grant was in force in August
        assert as_of(store, SEPTEMBER_END) == []
        assert len(as_of(store, SEPTEMBER_END, known_at=when("2019-09-15T12:00:00+00:00"))) == 1
    finally:
        store.close()

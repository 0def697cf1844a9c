"""A party's event id names one report, ledger-wide (ledger/identity.py).

The same event id reported by one party in two traces: of all its versions the first
recorded wins (ties by digest, then trace id).  The other trace does not
count its version -- its lot does not move -- and carries a
``conflicting_report`` alert naming the event id and the trace that holds
the first recorded report.  Whatever the arrival order and however the log
is cut into batches; and as of / known at a time, with only what was
recorded by then.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from builders import cut, exported, log_records, projected, received, stamp
from ledger.account import Version
from ledger.alerts import alert_steps
from ledger.events import content_digest
from ledger.identity import claims_of, standing_versions
from ledger.policy import Policy
from ledger.trace import Trace
from projections.queries import standing_alerts, whereabouts
from projections.store import ProjectionStore
from projections.trace_projection import project_batch

POLICY = Policy()
CLOCK = datetime(2021, 1, 1, tzinfo=timezone.utc)
LOG = "embedded"
SHARED = "RCV-SHARED-1"

# Trace A's receipt is recorded first; trace B's, with the same event id, a day later.
EXPORT_A = stamp(exported(lot="LA", trace="TR-A", event_id="EXP-A"), "2019-07-10T12:00:00Z")
EXPORT_B = stamp(exported(lot="LB", trace="TR-B", event_id="EXP-B"), "2019-07-10T12:00:00Z")
RECEIPT_A = stamp(received(lot="LA", trace="TR-A", event_id=SHARED), "2019-07-15T12:00:00Z")
RECEIPT_B = stamp(received(lot="LB", trace="TR-B", event_id=SHARED), "2019-07-16T12:00:00Z")
HISTORY = [EXPORT_A, EXPORT_B, RECEIPT_A, RECEIPT_B]


def _project(reports: list, cuts: list[int]) -> ProjectionStore:
    """``reports`` applied in the order given, in batches cut at ``cuts``."""
    return projected(*cut(reports, cuts), policy=POLICY, now=CLOCK, log=LOG)


def _lots(store) -> dict[str, tuple[str, str]]:
    return {r["lot_id"]: (r["received"], r["in_transit"]) for r in store.lots()}


def _conflicts(store) -> list[dict]:
    return [a for a in store.standing_alerts(CLOCK) if a["kind"] == "conflicting_report"]


ORDERS = {
    "first recorded arrives first": HISTORY,
    "first recorded arrives last": [EXPORT_B, RECEIPT_B, EXPORT_A, RECEIPT_A],
    "interleaved": [RECEIPT_B, EXPORT_A, RECEIPT_A, EXPORT_B],
}
CUTS = {"one batch": [], "one record per batch": [1, 2, 3], "two batches": [2]}


@pytest.mark.parametrize("cuts", CUTS.values(), ids=CUTS.keys())
@pytest.mark.parametrize("order", ORDERS.values(), ids=ORDERS.keys())
def test_only_the_first_recorded_version_of_an_event_id_counts_ledger_wide(order, cuts):
    store = _project(order, cuts)

    # A's receipt counts; B's, recorded later under the same event id, does not: LB is still in transit.
    assert _lots(store) == {"LA": ("100", "0"), "LB": ("0", "100")}
    assert [a["kind"] for a in store.standing_alerts(CLOCK) if a["kind"] in ("invalid_report", "unknown_lot")] == []
    conflicts = _conflicts(store)
    assert [(a["trace_id"], a["lot_id"], a["party"], a["due_at"]) for a in conflicts] == [
        ("TR-B", "LB", "KR-SEMI", "2019-07-16T12:00:00.000000Z")
    ]
    message = conflicts[0]["message"]
    assert SHARED in message and "'TR-A'" in message and "first recorded report is used" in message
    assert conflicts[0]["event_ids"] == [SHARED]
    store.close()


def test_every_arrival_order_and_batching_gives_the_same_rows():
    seen = set()
    for order in ORDERS.values():
        for cuts in CUTS.values():
            store = _project(order, cuts)
            seen.add(tuple(sorted(store.fingerprint().items())))
            store.close()
    assert len(seen) == 1


def test_a_report_re_sent_in_its_own_trace_is_still_a_no_op():
    store = _project(HISTORY, [])
    before = store.fingerprint()
    outcome = project_batch(store, LOG, log_records([RECEIPT_A, RECEIPT_B], start=4), policy=POLICY, now=CLOCK)

    assert (outcome.duplicates, outcome.accepted, outcome.conflicts, outcome.traces) == (2, 0, 0, 0)
    assert store.fingerprint() == before
    store.close()


def test_a_re_send_in_one_trace_is_not_a_conflict_with_itself():
    trace = Trace("TR-A")
    for report in (EXPORT_A, RECEIPT_A):
        trace.record(report)
    claims = claims_of("TR-A", trace.versions())
    account = trace.account(claims=claims)
    assert account.findings == []
    assert account.lots["LA"].received == 100


def test_ties_at_one_instant_go_to_the_smaller_digest_then_the_trace_id():
    at = "2019-07-15T12:00:00Z"
    a = Version(stamp(received(lot="LA", trace="TR-A", event_id=SHARED), at), "")
    b = Version(stamp(received(lot="LB", trace="TR-B", event_id=SHARED), at), "")
    a = Version(a.event, content_digest(a.event))
    b = Version(b.event, content_digest(b.event))
    claims = {SHARED: [("TR-A", a.digest, a.recorded_at, "KR-SEMI"), ("TR-B", b.digest, b.recorded_at, "KR-SEMI")]}
    kept_a, lost_a = standing_versions("TR-A", [a], claims)
    kept_b, lost_b = standing_versions("TR-B", [b], claims)
    winner = "TR-A" if a.digest < b.digest else "TR-B"
    assert (bool(kept_a), bool(kept_b)) == (winner == "TR-A", winner == "TR-B")
    assert len(lost_a) + len(lost_b) == 1
    # The same digest in both (the identical body): the trace id decides.
    same = {SHARED: [("TR-A", "d", a.recorded_at, "KR-SEMI"), ("TR-B", "d", a.recorded_at, "KR-SEMI")]}
    assert standing_versions("TR-A", [Version(a.event, "d")], same)[1] == []
    assert len(standing_versions("TR-B", [Version(b.event, "d")], same)[1]) == 1


def test_the_trace_holding_the_first_version_keeps_its_own_later_versions_for_its_own_fold():
    # B's first version precedes A's, B's second (other content) follows it:
    # B wins ledger-wide; its second version loses within B, as before.
    first_b = stamp(received(lot="LB", trace="TR-B", event_id=SHARED, qty="60"), "2019-07-14T12:00:00Z")
    second_b = stamp(received(lot="LB", trace="TR-B", event_id=SHARED, qty="70"), "2019-07-17T12:00:00Z")
    trace_b = Trace("TR-B")
    for report in (EXPORT_B, first_b, second_b):
        trace_b.record(report)
    claims = {SHARED: [("TR-A", content_digest(RECEIPT_A), RECEIPT_A.recorded_at, "KR-SEMI")]}
    account = trace_b.account(claims=claims)
    assert account.lots["LB"].received == 60
    assert [f.message for f in account.findings if "first recorded in trace" in f.message] == []
    assert [f.kind for f in account.findings] == ["conflicting_report"]  # B's own second version

    trace_a = Trace("TR-A")
    for report in (EXPORT_A, RECEIPT_A):
        trace_a.record(report)
    theirs = claims_of("TR-B", trace_b.versions())
    account_a = trace_a.account(claims=theirs)
    assert account_a.lots["LA"].received == 0
    assert [("'TR-B'" in f.message, f.party, f.lot_id) for f in account_a.findings] == [(True, "KR-SEMI", "LA")]


def test_the_alert_is_an_alert_step_of_the_losing_trace():
    trace_b = Trace("TR-B")
    for report in (EXPORT_B, RECEIPT_B):
        trace_b.record(report)
    claims = {SHARED: [("TR-A", content_digest(RECEIPT_A), RECEIPT_A.recorded_at, "KR-SEMI")]}
    steps = [s for s in alert_steps(trace_b.account(claims=claims), POLICY) if s.kind == "conflicting_report"]
    assert [(s.trace_id, s.lot_id, s.party, s.due_at, s.event_ids) for s in steps] == [
        ("TR-B", "LB", "KR-SEMI", RECEIPT_B.recorded_at, (SHARED,))
    ]


# -- as of / known at ------------------------------------------------------------------


def _lot_rows(rows: list[dict]) -> dict[str, str]:
    return {r["lot_id"]: r["received"] for r in rows}


@pytest.mark.parametrize("order", ORDERS.values(), ids=ORDERS.keys())
def test_as_of_and_known_at_answers_follow_the_rule_with_what_was_recorded_by_then(order):
    store = _project(order, [])

    def lots(**when) -> dict[str, str]:
        return _lot_rows(whereabouts(store, None, now=CLOCK, policy=POLICY, **when))

    def conflicts(**when) -> list[tuple[str, str]]:
        return [(a["trace_id"], a["lot_id"])
                for a in standing_alerts(store, now=CLOCK, policy=POLICY, **when)
                if a["kind"] == "conflicting_report"]

    # Known before either receipt was recorded: neither counts, nothing conflicts.
    early = datetime(2019, 7, 15, tzinfo=timezone.utc)
    assert lots(known_at=early) == {"LA": "0", "LB": "0"}
    assert conflicts(known_at=early) == []
    # Known after A's and before B's: A's counts, B's was not yet known.
    between = datetime(2019, 7, 16, tzinfo=timezone.utc)
    assert lots(known_at=between) == {"LA": "100", "LB": "0"}
    assert conflicts(known_at=between) == []
    # Known after both: A's counts, B's does not and is alerted, as the stored rows say.
    later = datetime(2019, 7, 17, tzinfo=timezone.utc)
    assert lots(known_at=later) == {"LA": "100", "LB": "0"}
    assert conflicts(known_at=later) == [("TR-B", "LB")]
    assert conflicts(as_of=CLOCK) == [("TR-B", "LB")]
    # One trace asked for: the claims of the other trace still apply.
    assert _lot_rows(whereabouts(store, "TR-B", now=CLOCK, policy=POLICY, as_of=CLOCK)) == {"LB": "0"}
    assert [a["trace_id"] for a in standing_alerts(store, now=CLOCK, policy=POLICY, as_of=CLOCK, trace_id="TR-B")
            if a["kind"] == "conflicting_report"] == ["TR-B"]
    # As of before B's receipt was recorded, its alert is not yet due.
    assert conflicts(as_of=datetime(2019, 7, 16, tzinfo=timezone.utc)) == []
    store.close()


def test_a_version_recorded_first_counts_though_another_trace_reports_the_id_later():
    late_a = stamp(received(lot="LA", trace="TR-A", event_id=SHARED), "2019-07-20T12:00:00Z")
    trace_b = Trace("TR-B")
    for report in (EXPORT_B, RECEIPT_B):
        trace_b.record(report)
    claims = {SHARED: [("TR-A", content_digest(late_a), late_a.recorded_at, "KR-SEMI")]}
    assert trace_b.account(claims=claims).lots["LB"].received == 100
    assert trace_b.account(claims=claims).findings == []

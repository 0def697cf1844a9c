"""The alert rules, each checked on both sides of its deadline.

An alert is a pure function of (the reports known, the time T, the policy).
Each scenario records reports in a Trace (stamped as recorded when they
occurred, unless the story says otherwise) and asks which alerts stand at
the deadline and one microsecond before it.
"""

from datetime import timedelta
from decimal import Decimal

from builders import (
    DAY,
    MICROSECOND,
    consumed,
    exported,
    lost,
    re_exported,
    received,
    retracted,
    returned,
    stock_declared,
    trace_of,
    when,
)
from ledger.alerts import SEVERITY, alert_steps, alerts_as_of
from ledger.evaluation import trace_steps
from ledger.policy import Policy

POLICY = Policy()  # 90 days to account for a receipt, 30 in transit, 30 to confirm a ship-back

SHIPPED = when("2019-07-10T10:00:00+09:00")
RECEIVED = when("2019-07-15T14:00:00+09:00")
END_USE_DEADLINE = RECEIVED + timedelta(days=90)
TRANSIT_DEADLINE = SHIPPED + timedelta(days=30)


def standing(*reports, on, policy=POLICY, known_at=None):
    """The alerts standing at ``on``, as (kind, lot, party, quantity) tuples."""
    alerts = trace_of(*reports).alerts(as_of=when(on), policy=policy, known_at=known_at)
    return [(a.kind, a.lot_id, a.party, _q(a)) for a in alerts]


def standing_alerts(*reports, on, policy=POLICY):
    return trace_of(*reports).alerts(as_of=when(on), policy=policy)


def _q(alert):
    return None if alert.quantity is None else f"{alert.quantity} {alert.unit}"


def hf_export(qty="100", unit="unit", **kw):
    """Japan exports hydrogen fluoride to the consignee, KR-SEMI."""
    return exported(lot="HF-1", qty=qty, unit=unit, at=SHIPPED, event_id="exp-1", **kw)


def hf_receipt(qty="100", unit="unit", at=RECEIVED, event_id="rcv-1", **kw):
    return received(lot="HF-1", qty=qty, unit=unit, at=at, event_id=event_id, **kw)


# -- unaccounted: every receipt accounted for within end_use_reporting_days -----------


def test_thirty_of_one_hundred_units_unaccounted_ninety_days_after_receipt():
    # Japan exports 100 units of hydrogen fluoride to the consignee.
    # The consignee receives 100 and reports 70 consumed.
    reports = [
        hf_export(),
        hf_receipt(),
        consumed(lot="HF-1", qty="70", unit="unit", at=RECEIVED + 36 * DAY, event_id="use-1"),
    ]
    # Ninety days pass with no other report: until the last microsecond, nothing is due.
    assert standing(*reports, on=END_USE_DEADLINE - MICROSECOND) == []
    # At the deadline the ledger shows 30 units unaccounted at the consignee.
    assert standing(*reports, on=END_USE_DEADLINE) == [("unaccounted", "HF-1", "KR-SEMI", "30 unit")]
    [alert] = standing_alerts(*reports, on=END_USE_DEADLINE)
    assert alert.message == "30 unit of 100 unit received by KR-SEMI (KR) not accounted for within 90 days"
    assert alert.severity == "high"
    assert alert.event_ids == ("rcv-1", "use-1")
    # And it still stands a year later.
    assert standing(*reports, on=END_USE_DEADLINE + 365 * DAY) == [
        ("unaccounted", "HF-1", "KR-SEMI", "30 unit")
    ]


def test_nothing_unaccounted_when_everything_received_is_consumed():
    reports = [hf_export(), hf_receipt(), consumed(lot="HF-1", qty="100", unit="unit", at=RECEIVED + DAY)]
    assert standing(*reports, on=END_USE_DEADLINE + 365 * DAY) == []


def test_the_reporting_window_comes_from_the_policy():
    thirty_days = Policy(end_use_reporting_days=30)
    reports = [hf_export(), hf_receipt(), consumed(lot="HF-1", qty="70", unit="unit", at=RECEIVED + DAY)]
    deadline = RECEIVED + timedelta(days=30)
    assert standing(*reports, on=deadline - MICROSECOND, policy=thirty_days) == []
    assert standing(*reports, on=deadline, policy=thirty_days) == [
        ("unaccounted", "HF-1", "KR-SEMI", "30 unit")
    ]


def test_partial_receipts_each_have_their_own_deadline():
    # 60 kg arrive first, 40 kg a month later; 50 kg are consumed in between.
    first, second = RECEIVED, RECEIVED + 30 * DAY
    reports = [
        hf_export("100", "kg"),
        hf_receipt("60", "kg", at=first, event_id="rcv-1"),
        consumed(lot="HF-1", qty="50", unit="kg", at=first + 10 * DAY),
        hf_receipt("40", "kg", at=second, event_id="rcv-2"),
    ]
    first_deadline, second_deadline = first + 90 * DAY, second + 90 * DAY
    assert standing(*reports, on=first_deadline - MICROSECOND) == []
    # By the first receipt's deadline, 10 of its 60 kg are unexplained ...
    assert standing(*reports, on=first_deadline) == [("unaccounted", "HF-1", "KR-SEMI", "10 kg")]
    [alert] = standing_alerts(*reports, on=first_deadline)
    assert alert.message == "10 kg of 60 kg received by KR-SEMI (KR) not accounted for within 90 days"
    # ... and the second 40 kg are not yet due.
    assert standing(*reports, on=second_deadline - MICROSECOND) == [
        ("unaccounted", "HF-1", "KR-SEMI", "10 kg")
    ]
    # By the second receipt's deadline, 50 of the 100 kg are unexplained.
    assert standing(*reports, on=second_deadline) == [("unaccounted", "HF-1", "KR-SEMI", "50 kg")]
    # One alert, updated, not two.
    steps = [s for s in trace_steps(trace_of(*reports).account(), POLICY) if s.kind == "unaccounted"]
    assert [(s.due_at, str(s.quantity)) for s in steps] == [(first_deadline, "10"), (second_deadline, "50")]
    assert len({s.alert_id for s in steps}) == 1


def test_a_stock_declaration_explains_the_stock_still_on_hand():
    # 70 consumed; the consignee declares the other 30 still in its tank.
    reports = [
        hf_export(),
        hf_receipt(),
        consumed(lot="HF-1", qty="70", unit="unit", at=RECEIVED + 36 * DAY),
        stock_declared(lot="HF-1", qty="30", unit="unit", at=RECEIVED + 80 * DAY),
    ]
    assert standing(*reports, on=END_USE_DEADLINE) == []
    assert standing(*reports, on=END_USE_DEADLINE + 365 * DAY) == []


def test_a_stock_declaration_short_of_what_is_on_hand_leaves_the_rest_unaccounted():
    reports = [
        hf_export(),
        hf_receipt(),
        consumed(lot="HF-1", qty="70", unit="unit", at=RECEIVED + 36 * DAY),
        stock_declared(lot="HF-1", qty="20", unit="unit", at=RECEIVED + 80 * DAY),
    ]
    assert standing(*reports, on=END_USE_DEADLINE - MICROSECOND) == []
    assert standing(*reports, on=END_USE_DEADLINE) == [("unaccounted", "HF-1", "KR-SEMI", "10 unit")]


def test_outflows_after_a_declaration_come_out_of_the_declared_stock():
    # 30 declared on hand, then 10 of those consumed: 80 out + 20 left = 100.
    declared_at = RECEIVED + 40 * DAY
    reports = [
        hf_export(),
        hf_receipt(),
        consumed(lot="HF-1", qty="70", unit="unit", at=RECEIVED + 36 * DAY, event_id="use-1"),
        stock_declared(lot="HF-1", qty="30", unit="unit", at=declared_at),
        consumed(lot="HF-1", qty="10", unit="unit", at=declared_at + DAY, event_id="use-2"),
    ]
    assert standing(*reports, on=END_USE_DEADLINE) == []
    account = trace_of(*reports).account()
    assert (account.lots["HF-1"].on_hand, account.lots["HF-1"].explained) == (20, 100)


def test_a_later_declaration_replaces_an_earlier_one():
    reports = [
        hf_export(),
        hf_receipt(),
        stock_declared(lot="HF-1", qty="100", unit="unit", at=RECEIVED + 10 * DAY),
        consumed(lot="HF-1", qty="70", unit="unit", at=RECEIVED + 36 * DAY),
        stock_declared(lot="HF-1", qty="0", unit="unit", at=RECEIVED + 80 * DAY),
    ]
    # The tank is declared empty after only 70 were consumed: 30 unexplained.
    assert standing(*reports, on=END_USE_DEADLINE) == [("unaccounted", "HF-1", "KR-SEMI", "30 unit")]


def test_an_unaccounted_alert_resolves_when_later_reports_account_for_the_quantity():
    # 30 units stand unaccounted at the deadline.
    reports = [
        hf_export(),
        hf_receipt(),
        consumed(lot="HF-1", qty="70", unit="unit", at=RECEIVED + 36 * DAY),
    ]
    assert standing(*reports, on=END_USE_DEADLINE) == [("unaccounted", "HF-1", "KR-SEMI", "30 unit")]
    # Ten days later the consignee reports the 30 units destroyed, with evidence.
    destroyed_at = END_USE_DEADLINE + 10 * DAY
    reports.append(lost(lot="HF-1", qty="30", unit="unit", at=destroyed_at, disposition="destroyed"))
    # Until then the alert stood; from then on it no longer does.
    assert standing(*reports, on=destroyed_at - MICROSECOND) == [
        ("unaccounted", "HF-1", "KR-SEMI", "30 unit")
    ]
    assert standing(*reports, on=destroyed_at) == []
    # What the projection stores (every step, from everything known) has no alert left.
    assert [s for s in trace_steps(trace_of(*reports).account(), POLICY) if s.kind == "unaccounted"] == []


def test_a_partially_explained_alert_is_updated_not_duplicated():
    reports = [hf_export(), hf_receipt(), consumed(lot="HF-1", qty="70", unit="unit", at=RECEIVED + DAY)]
    [before] = standing_alerts(*reports, on=END_USE_DEADLINE)
    reports.append(consumed(lot="HF-1", qty="20", unit="unit", at=END_USE_DEADLINE + DAY, event_id="use-late"))
    [after] = standing_alerts(*reports, on=END_USE_DEADLINE + DAY)
    assert str(before.quantity) == "30"
    assert (after.alert_id, str(after.quantity)) == (before.alert_id, "10")


# -- transit_overdue and short_receipt: shipped but not (all) received in time ----------


def test_transit_overdue_when_no_receipt_is_reported_within_transit_days_max():
    reports = [hf_export("100", "kg")]
    assert standing(*reports, on=TRANSIT_DEADLINE - MICROSECOND) == []
    assert standing(*reports, on=TRANSIT_DEADLINE) == [("transit_overdue", "HF-1", "KR-SEMI", "100 kg")]
    [alert] = standing_alerts(*reports, on=TRANSIT_DEADLINE)
    assert alert.message == "100 kg shipped to KR-SEMI (KR) on 2019-07-10 (UTC), no receipt reported"
    assert alert.severity == "medium"


def test_a_receipt_after_the_transit_deadline_resolves_the_overdue_alert():
    late = TRANSIT_DEADLINE + 5 * DAY
    reports = [hf_export("100", "kg"), hf_receipt("100", "kg", at=late)]
    assert standing(*reports, on=late - MICROSECOND) == [("transit_overdue", "HF-1", "KR-SEMI", "100 kg")]
    assert standing(*reports, on=late) == []


def test_transit_window_comes_from_the_policy():
    a_week = Policy(transit_days_max=7)
    reports = [hf_export("100", "kg")]
    assert standing(*reports, on=SHIPPED + 7 * DAY - MICROSECOND, policy=a_week) == []
    assert standing(*reports, on=SHIPPED + 7 * DAY, policy=a_week) == [
        ("transit_overdue", "HF-1", "KR-SEMI", "100 kg")
    ]


def test_short_receipt_when_less_arrives_than_was_shipped():
    # Korea reports 4,050 t exported to China; China reports 4,000 t received.
    reports = [
        exported(lot="HF-4", qty="4050", unit="t", at=SHIPPED, exporter="KR-TRADE", consignee="CN-CHEM"),
        received(lot="HF-4", qty="4000", unit="t", at=SHIPPED + 19 * DAY, by="CN-CHEM"),
    ]
    assert standing(*reports, on=TRANSIT_DEADLINE - MICROSECOND) == []
    assert standing(*reports, on=TRANSIT_DEADLINE) == [("short_receipt", "HF-4", "CN-CHEM", "50 t")]
    [alert] = standing_alerts(*reports, on=TRANSIT_DEADLINE)
    assert alert.message == "4050 t shipped to CN-CHEM (CN), only 4000 t received: 50 t short"


def test_an_overdue_transit_that_partly_arrives_becomes_a_short_receipt_of_the_same_alert():
    late = TRANSIT_DEADLINE + DAY
    reports = [hf_export("100", "kg"), hf_receipt("60", "kg", at=late)]
    [overdue] = standing_alerts(*reports, on=late - MICROSECOND)
    [short] = standing_alerts(*reports, on=late)
    assert (overdue.kind, str(overdue.quantity)) == ("transit_overdue", "100")
    assert (short.kind, str(short.quantity)) == ("short_receipt", "40")
    assert overdue.alert_id == short.alert_id


def test_a_receipt_in_another_unit_of_the_same_dimension_counts_exactly():
    # Shipped in tonnes, received in kilograms: 39.65 t is 39,650 kg to the gram.
    reports = [hf_export("40", "t"), hf_receipt("39650", "kg"), hf_receipt("350", "kg", event_id="rcv-2")]
    assert standing(*reports, on=TRANSIT_DEADLINE) == []
    assert trace_of(*reports).account().lots["HF-1"].received == 40


# -- return_unconfirmed: a ship-back its addressee never confirms --------------------------


def test_a_ship_back_never_confirmed_by_its_addressee():
    # Hydrogen fluoride "shipped back to Japan as defective": 39,650 kg declared,
    # 120 kg recorded as arrived.
    shipped_back = when("2019-04-10T10:00:00+09:00")
    deadline = shipped_back + 30 * DAY
    reports = [
        exported(lot="HF-2", qty="40", unit="t", at="2019-03-01T09:30:00+09:00", consignee="KR-TRADE"),
        received(lot="HF-2", qty="40000", unit="kg", at="2019-03-06T11:00:00+09:00", by="KR-TRADE"),
        consumed(lot="HF-2", qty="350", unit="kg", at="2019-03-20T16:00:00+09:00", by="KR-TRADE"),
        returned(lot="HF-2", child="HF-2-R1", qty="39650", unit="kg", at=shipped_back, by="KR-TRADE"),
        received(lot="HF-2-R1", qty="120", unit="kg", at="2019-04-20T09:00:00+09:00", by="JP-FLUORO"),
    ]
    assert standing(*reports, on=deadline - MICROSECOND) == []
    assert standing(*reports, on=deadline) == [("return_unconfirmed", "HF-2-R1", "JP-FLUORO", "39530 kg")]
    [alert] = standing_alerts(*reports, on=deadline)
    assert alert.message == (
        "ship-back of 39650 kg to JP-FLUORO (JP): 120 kg confirmed received, 39530 kg unconfirmed"
    )
    assert alert.severity == "high"


def test_a_ship_back_with_no_receipt_at_all_is_unconfirmed_not_in_transit():
    shipped_back = RECEIVED + 10 * DAY
    reports = [
        hf_export("100", "kg"),
        hf_receipt("100", "kg"),
        returned(lot="HF-1", child="HF-1-R", qty="100", unit="kg", at=shipped_back),
    ]
    policy = Policy(return_confirmation_days=14)
    assert standing(*reports, on=shipped_back + 14 * DAY - MICROSECOND, policy=policy) == []
    assert standing(*reports, on=shipped_back + 14 * DAY, policy=policy) == [
        ("return_unconfirmed", "HF-1-R", "JP-FLUORO", "100 kg")
    ]


def test_a_ship_back_confirmed_in_full_raises_nothing():
    shipped_back = RECEIVED + 10 * DAY
    reports = [
        hf_export("100", "kg"),
        hf_receipt("100", "kg"),
        returned(lot="HF-1", child="HF-1-R", qty="100", unit="kg", at=shipped_back),
        received(lot="HF-1-R", qty="100", unit="kg", at=shipped_back + 20 * DAY, by="JP-FLUORO"),
        consumed(lot="HF-1-R", qty="100", unit="kg", at=shipped_back + 25 * DAY, by="JP-FLUORO"),
    ]
    assert standing(*reports, on=shipped_back + 400 * DAY) == []


def test_a_re_export_not_received_is_overdue_at_its_new_consignee():
    # 30 kg re-exported to the consignee's factory in China, never confirmed.
    re_exported_at = RECEIVED + 20 * DAY
    reports = [
        hf_export("100", "kg"),
        hf_receipt("100", "kg"),
        consumed(lot="HF-1", qty="70", unit="kg", at=RECEIVED + DAY),
        re_exported(lot="HF-1", child="HF-1-CN", qty="30", unit="kg", at=re_exported_at),
    ]
    deadline = re_exported_at + 30 * DAY
    assert standing(*reports, on=deadline - MICROSECOND) == []
    assert standing(*reports, on=deadline) == [("transit_overdue", "HF-1-CN", "CN-SEMI-XIAN", "30 kg")]


# -- over_accounting: more out than came in, or more in than was shipped -------------------


def test_a_holder_reporting_more_out_than_it_received():
    too_much = RECEIVED + 40 * DAY
    reports = [
        hf_export("100", "kg"),
        hf_receipt("100", "kg"),
        consumed(lot="HF-1", qty="70", unit="kg", at=RECEIVED + DAY, event_id="use-1"),
        consumed(lot="HF-1", qty="50", unit="kg", at=too_much, event_id="use-2"),
    ]
    # No deadline: it stands from the report that tipped the balance.
    assert standing(*reports, on=too_much - MICROSECOND) == []
    assert standing(*reports, on=too_much) == [("over_accounting", "HF-1", "KR-SEMI", "20 kg")]
    [alert] = standing_alerts(*reports, on=too_much)
    assert alert.message == "KR-SEMI reports 120 kg out of lot HF-1 but received only 100 kg: 20 kg too many"
    assert alert.event_ids == ("use-2",)


def test_a_holder_reporting_more_received_than_was_shipped():
    second = RECEIVED + 5 * DAY
    reports = [
        hf_export("100", "kg"),
        hf_receipt("60", "kg", event_id="rcv-1"),
        hf_receipt("60", "kg", at=second, event_id="rcv-2"),
    ]
    assert standing(*reports, on=second - MICROSECOND) == []
    assert standing(*reports, on=second) == [("over_accounting", "HF-1", "KR-SEMI", "20 kg")]
    [alert] = standing_alerts(*reports, on=second)
    assert alert.message == "KR-SEMI reports 120 kg received of lot HF-1, but only 100 kg was shipped: 20 kg too many"


def test_over_accounting_resolves_when_a_later_receipt_covers_it():
    # 60 kg arrive, 80 kg are reported consumed, then the other 40 kg arrive.
    over_at, covered_at = RECEIVED + DAY, RECEIVED + 3 * DAY
    reports = [
        hf_export("100", "kg"),
        hf_receipt("60", "kg", event_id="rcv-1"),
        consumed(lot="HF-1", qty="80", unit="kg", at=over_at),
        hf_receipt("40", "kg", at=covered_at, event_id="rcv-2"),
    ]
    assert standing(*reports, on=over_at) == [("over_accounting", "HF-1", "KR-SEMI", "20 kg")]
    assert standing(*reports, on=covered_at - MICROSECOND) == [("over_accounting", "HF-1", "KR-SEMI", "20 kg")]
    assert standing(*reports, on=covered_at) == []
    assert [s for s in trace_steps(trace_of(*reports).account(), POLICY) if s.kind == "over_accounting"] == []


# -- conflicting_report: one event id, two contents --------------------------------------


def test_the_same_event_id_with_other_content_is_a_conflict_and_the_first_recorded_wins():
    first = consumed(lot="HF-1", qty="70", unit="kg", at=RECEIVED + DAY, event_id="use-1",
                     recorded_at=RECEIVED + 2 * DAY)
    second = consumed(lot="HF-1", qty="75", unit="kg", at=RECEIVED + DAY, event_id="use-1",
                      recorded_at=RECEIVED + 3 * DAY)
    base = [hf_export("100", "kg"), hf_receipt("100", "kg")]
    for arrival in ([first, second], [second, first]):
        trace = trace_of(*base, *arrival)
        # Whichever arrives first, the version recorded first is the one used.
        assert trace.account().lots["HF-1"].consumed == 70
        on = RECEIVED + 3 * DAY
        assert standing(*base, *arrival, on=on - MICROSECOND) == []
        [alert] = standing_alerts(*base, *arrival, on=on)
        assert (alert.kind, alert.lot_id, alert.party, alert.quantity) == (
            "conflicting_report", "HF-1", "KR-SEMI", None
        )
        # The two values, not only two digests: a person can see who to ask about what.
        assert alert.message.startswith(
            "event 'use-1' was reported again with different content: quantity 75 kg vs 70 kg used (digest ")
        assert alert.message.endswith("; the first recorded version is used")
        assert alert.severity == "high"


def test_a_conflict_recorded_at_the_same_instant_is_decided_the_same_way_in_any_order():
    same_time = RECEIVED + 2 * DAY
    a = consumed(lot="HF-1", qty="70", unit="kg", at=RECEIVED + DAY, event_id="use-1", recorded_at=same_time)
    b = consumed(lot="HF-1", qty="75", unit="kg", at=RECEIVED + DAY, event_id="use-1", recorded_at=same_time)
    base = [hf_export("100", "kg"), hf_receipt("100", "kg")]
    one = trace_of(*base, a, b)
    other = trace_of(*base, b, a)
    assert one.account().lots["HF-1"].consumed == other.account().lots["HF-1"].consumed
    assert trace_steps(one.account(), POLICY) == trace_steps(other.account(), POLICY)


def test_the_same_report_sent_twice_is_not_a_conflict():
    use = consumed(lot="HF-1", qty="70", unit="kg", at=RECEIVED + DAY)
    reports = [hf_export("100", "kg"), hf_receipt("100", "kg"), use, use]
    assert trace_of(*reports).account().lots["HF-1"].consumed == 70
    assert standing(*reports, on=RECEIVED + 2 * DAY) == []


# -- invalid_report: reports the account refuses to post ---------------------------------


def test_a_retraction_by_someone_other_than_the_reporter_is_refused():
    use = consumed(lot="HF-1", qty="70", unit="kg", at=RECEIVED + DAY, event_id="use-1")
    retract_at = RECEIVED + 5 * DAY
    reports = [
        hf_export("100", "kg"),
        hf_receipt("100", "kg"),
        use,
        retracted(use, at=retract_at, by="JP-FLUORO", event_id="retract-1"),
    ]
    assert standing(*reports, on=retract_at - MICROSECOND) == []
    [alert] = standing_alerts(*reports, on=retract_at)
    assert (alert.kind, alert.lot_id, alert.party, alert.severity) == (
        "invalid_report", "HF-1", "JP-FLUORO", "low"
    )
    assert alert.message == (
        "retraction 'retract-1' by 'JP-FLUORO' refused: event 'use-1' was reported by "
        "'KR-SEMI', and only the original reporter may retract it"
    )
    # The consumption still counts.
    assert trace_of(*reports).account().lots["HF-1"].consumed == 70


def test_a_retraction_by_the_original_reporter_removes_the_report():
    use = consumed(lot="HF-1", qty="70", unit="kg", at=RECEIVED + DAY, event_id="use-1")
    reports = [hf_export("100", "kg"), hf_receipt("100", "kg"), use, retracted(use, at=RECEIVED + 5 * DAY)]
    assert trace_of(*reports).account().lots["HF-1"].consumed == 0
    assert standing(*reports, on=END_USE_DEADLINE) == [("unaccounted", "HF-1", "KR-SEMI", "100 kg")]


def test_a_retraction_of_an_unknown_report_is_refused():
    reports = [hf_export("100", "kg"), retracted("no-such-event", lot="HF-1", at=SHIPPED + DAY,
                                                 event_id="retract-1")]
    [alert] = standing_alerts(*reports, on=SHIPPED + DAY)
    assert alert.kind == "invalid_report"
    assert alert.message == (
        "retraction 'retract-1' names event 'no-such-event', which is not known in trace 'TR-1'"
    )


def test_a_unit_of_another_dimension_cannot_be_mixed_into_a_lot():
    # The lot left in kilograms; a receipt in litres needs a density nobody reported.
    litres = received(lot="HF-1", qty="100", unit="L", at=RECEIVED, event_id="rcv-L")
    reports = [hf_export("100", "kg"), litres]
    assert standing(*reports, on=RECEIVED - MICROSECOND) == []
    assert standing(*reports, on=RECEIVED) == [("invalid_report", "HF-1", "KR-SEMI", None)]
    [alert] = standing_alerts(*reports, on=RECEIVED)
    assert alert.message == (
        "received 'rcv-L' reports 'L' (volume) for lot 'HF-1' kept in 'kg' (mass); "
        "a lot cannot mix dimensions"
    )
    # The receipt is not posted, so the shipment is still in transit at its deadline.
    assert trace_of(*reports).account().lots["HF-1"].received == 0
    assert ("transit_overdue", "HF-1", "KR-SEMI", "100 kg") in standing(*reports, on=TRANSIT_DEADLINE)


def test_only_the_holder_reports_a_lots_movements():
    # The trading house, not the consignee, claims to have consumed the lot.
    claim = consumed(lot="HF-1", qty="70", unit="kg", at=RECEIVED + DAY, by="KR-TRADE", event_id="use-x")
    reports = [hf_export("100", "kg"), hf_receipt("100", "kg"), claim]
    [alert] = standing_alerts(*reports, on=RECEIVED + DAY)
    assert (alert.kind, alert.party) == ("invalid_report", "KR-TRADE")
    assert alert.message == (
        "consumed 'use-x' reported by 'KR-TRADE', but lot 'HF-1' is held by 'KR-SEMI'; "
        "only the holder reports its movements"
    )
    assert trace_of(*reports).account().lots["HF-1"].consumed == 0


def test_a_re_export_by_someone_other_than_the_holder_opens_no_child_lot():
    rex = re_exported(lot="HF-1", child="HF-1-CN", qty="30", unit="kg", at=RECEIVED + DAY,
                      by="KR-TRADE", event_id="rex-x")
    reports = [hf_export("100", "kg"), hf_receipt("100", "kg"), rex]
    account = trace_of(*reports).account()
    assert sorted(account.lots) == ["HF-1"]
    assert [(f.kind, f.event_ids) for f in account.findings] == [("invalid_report", ("rex-x",))]


# -- unknown_lot: a report about a lot no known export opened -----------------------------


def test_a_report_about_a_lot_nobody_exported():
    stray = received(lot="HF-9", qty="5", unit="kg", at=RECEIVED, event_id="rcv-9")
    reports = [hf_export("100", "kg"), stray]
    assert standing(*reports, on=RECEIVED - MICROSECOND) == []
    assert standing(*reports, on=RECEIVED) == [("unknown_lot", "HF-9", "KR-SEMI", None)]
    [alert] = standing_alerts(*reports, on=RECEIVED)
    assert alert.message == "received 'rcv-9' is about lot 'HF-9', which no known export or re-export opened"
    assert alert.severity == SEVERITY["unknown_lot"] == "medium"


def test_a_receipt_reported_before_its_export_is_posted_once_the_export_is_known():
    # The receipt arrives before the export report: once the export is known,
    # the receipt is posted to the lot and no unknown_lot alert remains.
    reports = [received(lot="HF-1", qty="100", unit="kg", at=RECEIVED, event_id="rcv-1")]
    assert standing(*reports, on=RECEIVED) == [("unknown_lot", "HF-1", "KR-SEMI", None)]
    reports.append(hf_export("100", "kg"))
    assert standing(*reports, on=RECEIVED) == []
    assert trace_of(*reports).account().lots["HF-1"].received == 100


# -- the two ways of asking agree ----------------------------------------------------------


def test_stored_steps_and_an_as_of_rebuild_agree_once_everything_has_happened():
    reports = [
        hf_export("100", "kg"),
        hf_receipt("60", "kg"),
        consumed(lot="HF-1", qty="50", unit="kg", at=RECEIVED + DAY),
        re_exported(lot="HF-1", child="HF-1-CN", qty="5", unit="kg", at=RECEIVED + 2 * DAY),
    ]
    trace = trace_of(*reports)
    for on in (TRANSIT_DEADLINE, END_USE_DEADLINE, END_USE_DEADLINE + 365 * DAY):
        assert alerts_as_of(alert_steps(trace.account(), POLICY), on) == trace.alerts(as_of=on, policy=POLICY)


# -- reports at one instant -------------------------------------------------------------


def test_two_receipts_on_the_same_day_share_one_deadline():
    # Parties that report dates only put both partial receipts at midnight.
    reports = [
        hf_export("100", "kg"),
        hf_receipt("50", "kg", event_id="rcv-1"),
        hf_receipt("50", "kg", event_id="rcv-2"),
    ]
    steps = [s for s in trace_steps(trace_of(*reports).account(), POLICY) if s.kind == "unaccounted"]
    assert [(s.due_at, str(s.quantity)) for s in steps] == [(END_USE_DEADLINE, "100")]
    assert standing(*reports, on=END_USE_DEADLINE) == [("unaccounted", "HF-1", "KR-SEMI", "100 kg")]


def test_two_conflicting_versions_recorded_at_one_instant_are_one_step_of_the_conflict():
    at = RECEIVED + 2 * DAY
    versions = [
        consumed(lot="HF-1", qty=q, unit="kg", at=RECEIVED + DAY, event_id="use-1", recorded_at=at)
        for q in ("70", "71", "72")
    ]
    steps = trace_steps(trace_of(hf_export("100", "kg"), hf_receipt("100", "kg"), *versions).account(), POLICY)
    conflicts = [s for s in steps if s.kind == "conflicting_report"]
    assert [(s.due_at, s.event_ids) for s in conflicts] == [(at, ("use-1",))]
    assert conflicts[0].message.count(", ") == 1  # both losing digests are named


def test_a_re_export_naming_a_lot_already_opened_moves_nothing():
    # Two re-exports claim child lot HF-1-CN; the second is refused, and its
    # 30 kg stay on hand rather than leave for a lot that is not theirs.
    reports = [
        hf_export("100", "kg"),
        hf_receipt("100", "kg"),
        re_exported(lot="HF-1", child="HF-1-CN", qty="30", unit="kg", at=RECEIVED + DAY, event_id="rex-1"),
        re_exported(lot="HF-1", child="HF-1-CN", qty="30", unit="kg", at=RECEIVED + 2 * DAY, event_id="rex-2"),
    ]
    account = trace_of(*reports).account()
    assert (account.lots["HF-1"].re_exported, account.lots["HF-1"].on_hand) == (30, 70)
    assert account.lots["HF-1-CN"].shipped == 30
    assert [(f.kind, f.lot_id, f.event_ids) for f in account.findings] == [
        ("invalid_report", "HF-1-CN", ("rex-2",))
    ]
    assert account.findings[0].message == "event 'rex-2' opens lot 'HF-1-CN', already opened by 'rex-1'"


def test_a_re_sent_report_stamped_later_does_not_change_which_version_wins():
    # KR-SEMI reports 70 kg (recorded day 2); someone sends 75 kg under the
    # same event id (day 3); KR-SEMI's system re-sends its 70 kg (day 4).
    # Whichever copy of the 70 kg arrives first, it was first recorded on day 2.
    use = consumed(lot="HF-1", qty="70", unit="kg", at=RECEIVED + DAY, event_id="use-1")
    first, resent = use.stamped(RECEIVED + 2 * DAY), use.stamped(RECEIVED + 4 * DAY)
    other = consumed(lot="HF-1", qty="75", unit="kg", at=RECEIVED + DAY, event_id="use-1",
                     recorded_at=RECEIVED + 3 * DAY)
    base = [hf_export("100", "kg"), hf_receipt("100", "kg")]
    for arrival in ([first, other, resent], [resent, other, first], [other, resent, first]):
        trace = trace_of(*base, *arrival)
        assert trace.account().lots["HF-1"].consumed == 70
        assert [s.due_at for s in trace_steps(trace.account(), POLICY) if s.kind == "conflicting_report"] == [
            RECEIVED + 3 * DAY
        ]


# -- stock declarations explain only what the book shows on hand ----------------------


def test_stock_declared_before_the_receipt_explains_nothing():
    # The consignee "declares" 100 kg in stock before anything arrived,
    # then receives 100 kg and never says what became of it.
    trace = trace_of(exported(qty="100"), stock_declared(qty="100", at="2019-07-11"), received(qty="100"))
    standing = alerts_as_of(alert_steps(trace.account(), Policy()), when("2020-06-01"))
    assert sorted((a.kind, a.quantity) for a in standing) == [
        ("over_declared", None), ("unaccounted", Decimal("100"))]


def test_stock_declared_beyond_the_book_does_not_hide_a_later_receipt():
    # 200 kg shipped; 100 received and consumed; 100 "declared" on hand the next
    # day (the book shows 0); another 100 received, never accounted for.
    trace = trace_of(exported(qty="200"), received(qty="100", at="2019-07-15"), consumed(qty="100", at="2019-08-01"),
                     stock_declared(qty="100", at="2019-08-02"), received(qty="100", at="2019-08-10", event_id="RCV-2"))
    standing = alerts_as_of(alert_steps(trace.account(), Policy()), when("2020-06-01"))
    assert ("unaccounted", Decimal("100")) in [(a.kind, a.quantity) for a in standing]


def test_a_consumption_and_a_declaration_at_one_instant_agree_whatever_their_ids():
    # Month-end reports carry a date only: 70 consumed and 30 declared on hand, both at midnight.
    for consumption_id, declaration_id in (("b-cons", "a-decl"), ("a-cons", "b-decl")):
        trace = trace_of(exported(qty="100"), received(qty="100"),
                         consumed(qty="70", at="2019-08-01", event_id=consumption_id),
                         stock_declared(qty="30", at="2019-08-01", event_id=declaration_id))
        standing = alerts_as_of(alert_steps(trace.account(), Policy()), when("2020-06-01"))
        assert standing == [], (consumption_id, declaration_id)


def test_an_alert_has_stood_since_the_first_step_after_it_last_stood_at_zero():
    from projections.alert_views import first_stood

    steps = [("2019-10-13", "10"), ("2019-11-13", "50"), ("2019-12-01", "0"), ("2020-01-05", "5"), ("2020-02-01", "7")]
    assert first_stood(steps, "2019-10-01") is None
    assert first_stood(steps, "2019-11-20") == "2019-10-13"
    assert first_stood(steps, "2019-12-10") is None  # resolved: nothing stands
    assert first_stood(steps, "2020-03-01") == "2020-01-05"  # stood again from then

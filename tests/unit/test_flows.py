"""Cross-border reconciliation, checked against totals computed by hand.

Both sides count the same lots: what the sender reported shipped against
what the receiver reported received, per (origin, destination, item, period).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from builders import exported, received, re_exported, returned, versions
from ledger.account import build_account
from ledger.flows import Period, PeriodError, Shipment, parse_period, reconcile


def shipment(lot, origin, destination, shipped, received_, unit, at, item="HF-UHP", trace="TR-1"):
    return Shipment(trace, lot, "export", origin, destination, item, unit,
                    datetime.fromisoformat(at).replace(tzinfo=timezone.utc), Decimal(shipped), Decimal(received_))


def figures(flows):
    """(from, to, item, period, unit, shipped, received, gap), amounts as canonical decimal text."""
    return [tuple(f.as_dict()[k] for k in ("from", "to", "item_id", "period", "unit", "shipped", "received", "gap"))
            for f in flows]


def test_korea_reports_4050_t_shipped_to_china_china_reports_4000_t_received():
    flows = reconcile([shipment("HF-0004", "KR", "CN", "4050", "4000", "t", "2019-05-01")],
                      period=parse_period("2019"))
    assert figures(flows) == [("KR", "CN", "HF-UHP", "2019", "t", "4050", "4000", "50")]
    assert flows[0].as_dict()["gap_percent"] == "1.2"  # 50 / 4050 = 1.23 %


def test_the_ship_back_39650_kg_declared_120_kg_received_is_a_997_percent_gap():
    [flow] = reconcile([shipment("HF-0002-R1", "KR", "JP", "39650", "120", "kg", "2019-04-10")])
    assert (flow.shipped, flow.received, flow.gap) == (Decimal(39650), Decimal(120), Decimal(39530))
    assert flow.as_dict()["gap_percent"] == "99.7"  # 39530 / 39650 = 99.697 %


def test_lots_in_one_unit_add_up_in_that_unit_and_mixed_units_in_the_base_unit():
    # 40 t + 2.5 t = 42.5 t; 40 t + 500 kg = 40,500 kg (received 39,900 kg + 500 kg).
    same = reconcile([shipment("A", "JP", "KR", "40", "40", "t", "2019-03-01"),
                      shipment("B", "JP", "KR", "2.5", "2", "t", "2019-06-01")])
    assert figures(same) == [("JP", "KR", "HF-UHP", "2019", "t", "42.5", "42", "0.5")]
    mixed = reconcile([shipment("A", "JP", "KR", "40", "39.9", "t", "2019-03-01"),
                       shipment("B", "JP", "KR", "500", "500", "kg", "2019-06-01")])
    assert figures(mixed) == [("JP", "KR", "HF-UHP", "2019", "kg", "40500", "40400", "100")]
    assert mixed[0].lots == ("TR-1/A", "TR-1/B")


def test_quantities_of_different_dimensions_are_different_flows():
    # 100 unit and 40 t of one item cannot be added without a density nobody reported.
    flows = reconcile([shipment("A", "JP", "KR", "100", "100", "unit", "2019-07-10"),
                       shipment("B", "JP", "KR", "40", "40", "t", "2019-03-01")])
    assert [(f.unit, f.as_dict()["shipped"]) for f in flows] == [("unit", "100"), ("t", "40")]  # count, mass


def test_filters_and_periods_select_by_the_utc_shipment_date():
    lots = [
        shipment("A", "JP", "KR", "10", "10", "kg", "2019-07-31T23:00:00"),
        shipment("B", "JP", "KR", "20", "15", "kg", "2019-08-01T00:00:00"),
        shipment("C", "KR", "CN", "30", "0", "kg", "2019-08-02T00:00:00"),
        shipment("D", "JP", "KR", "40", "40", "kg", "2018-12-31T23:59:59"),
    ]
    assert figures(reconcile(lots, period=parse_period("2019-08"), origin_country="JP")) == [
        ("JP", "KR", "HF-UHP", "2019-08", "kg", "20", "15", "5")
    ]
    by_year = reconcile(lots, origin_country="JP", destination_country="KR")
    assert [(f.period, f.as_dict()["shipped"]) for f in by_year] == [("2018", "40"), ("2019", "30")]
    assert reconcile(lots, item_id="EUV-PR") == []


def test_periods_are_a_year_or_a_month_and_anything_else_is_refused_by_name():
    assert parse_period("2019") == Period(2019) and str(parse_period("2019-07")) == "2019-07"
    for bad in ("19", "2019-13", "2019-7", "2019/07", "Q3-2019"):
        with pytest.raises(PeriodError, match=repr(bad).replace("(", r"\(")):
            parse_period(bad)


def test_flows_of_an_account_count_re_exports_and_ship_backs_from_the_transit_country():
    # JP ships 100 kg to KR; KR re-exports 30 kg to CN (CN reports 25) and ships 10 kg back to JP (never seen).
    account = build_account("TR-1", versions(
        exported("L1", "100"), received("L1", "100"),
        re_exported("L1", "L1-CN", "30"), received("L1-CN", "25", by="CN-SEMI-XIAN", at="2019-09-05"),
        returned("L1", "L1-R", "10"),
    ))
    shipments = [Shipment("TR-1", lot.lot_id, lot.origin, lot.shipper_country, lot.holder_country, lot.item_id,
                          lot.unit, lot.shipped_at, lot.shipped, lot.received) for lot in account.lots.values()]
    assert figures(reconcile(shipments)) == [
        ("JP", "KR", "HF-UHP", "2019", "kg", "100", "100", "0"),
        ("KR", "CN", "HF-UHP", "2019", "kg", "30", "25", "5"),
        ("KR", "JP", "HF-UHP", "2019", "kg", "10", "0", "10"),
    ]

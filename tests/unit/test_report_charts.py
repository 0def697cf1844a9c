"""The audit report's chart of a lot's quantities over time: the lot as of
each date its account may have changed (a report occurred, a deadline fell
due), and each trace's lineage as a graph, drawn as static SVG as the
dashboard draws them, so the page prints with no script."""

from __future__ import annotations

from datetime import datetime, timezone

from builders import consumed, exported, projected, received, stamp
from ledger.policy import Policy
from projections.audit import collect, html_report
from consumers.render import fmt_amount
from ledger.lineage import build_lineage
from projections.charts import SERIES, ChartPoint, lineage_svg, quantity_chart_svg

POLICY = Policy()  # 90 days to account for a receipt
CLOCK = datetime(2021, 1, 1, tzinfo=timezone.utc)

# Japan exports 100 kg to the consignee, which receives 100 kg and reports 70 kg consumed;
# ninety days after the receipt, 30 kg stand unaccounted.
STORY = [
    stamp(exported(lot="L1", qty="100", at="2019-07-10")),
    stamp(received(lot="L1", qty="100", at="2019-07-15")),
    stamp(consumed(lot="L1", qty="70", at="2019-08-20")),
]
SHOWN = ("shipped", "received", "consumed", "on_hand", "unaccounted")


def chart_of(data):
    [(trace_id, lot_id, unit, points)] = data.charts
    assert (trace_id, lot_id, unit) == ("TR-1", "L1", "kg")
    return [(p.at.date().isoformat(), *(p.row[k] for k in SHOWN)) for p in points]


def test_the_lot_is_charted_as_of_each_report_and_the_deadline_that_fell_due():
    store = projected(STORY, policy=POLICY, now=CLOCK)
    data = collect(store, "trace TR-1", ["TR-1"], now=CLOCK, policy=POLICY)
    #                  date          shipped received consumed on hand unaccounted
    assert chart_of(data) == [
        ("2019-07-10", "100", "0", "0", "0", "0"),
        ("2019-07-15", "100", "100", "0", "100", "0"),
        ("2019-08-20", "100", "100", "70", "30", "0"),
        ("2019-10-13", "100", "100", "70", "30", "30"),
    ]


def test_as_of_a_date_the_chart_stops_there():
    store = projected(STORY, policy=POLICY, now=CLOCK)
    as_of = datetime(2019, 9, 1, tzinfo=timezone.utc)
    data = collect(store, "trace TR-1", ["TR-1"], now=CLOCK, policy=POLICY, as_of=as_of)
    assert [point[0] for point in chart_of(data)] == ["2019-07-10", "2019-07-15", "2019-08-20"]


def test_only_the_html_report_asks_for_charts():
    store = projected(STORY, policy=POLICY, now=CLOCK)
    assert collect(store, "trace TR-1", ["TR-1"], now=CLOCK, policy=POLICY, charts=False).charts == []


def test_the_report_draws_each_series_with_its_last_value_in_the_legend_and_no_script():
    store = projected(STORY, policy=POLICY, now=CLOCK)
    page = html_report(collect(store, "trace TR-1", ["TR-1"], now=CLOCK, policy=POLICY))
    assert "<script" not in page
    assert "<figure class='chart' id='chart-TR-1-L1'><figcaption>L1 (TR-1), in kg</figcaption><svg" in page
    for key, _label, _colour in SERIES:
        assert f"data-series='{key}'" in page
    for legend in ("shipped 100", "received 100", "consumed 70", "on hand 30", "unaccounted 30"):
        assert f"class='legend'>{legend}</text>" in page


def test_a_quantity_holds_until_the_next_change_a_step_not_a_slope():
    points = [ChartPoint(datetime(2019, 7, 10, tzinfo=timezone.utc), {"shipped": "100"}),
              ChartPoint(datetime(2019, 7, 20, tzinfo=timezone.utc), {"shipped": "40"})]
    svg = quantity_chart_svg(points, "kg")
    [shipped] = [part for part in svg.split("<path ") if "data-series='shipped'" in part]
    # M(start at 100) H(hold to the 20th) V(drop to 40) H(hold to the end): no diagonal.
    assert shipped.startswith("d='M56.0,") and shipped.count("H") == 2 and shipped.count("V") == 1


def test_text_in_the_chart_is_escaped_and_no_points_is_an_empty_chart():
    assert "&lt;b&gt;" in quantity_chart_svg([ChartPoint(CLOCK, {"shipped": "1"})], "<b>")
    assert quantity_chart_svg([], "kg").endswith("class='chart' role='img' "
                                                 "aria-label='quantities of the lot over time'></svg>")


# The lineage graph: KR-SEMI re-exports 700 L to Xi'an and 300 L to Wuxi; Xi'an leaves 50 L unaccounted.
def lot(lot_id, parent, origin, holder, shipped, unaccounted="0"):
    return {"trace_id": "TR-1", "lot_id": lot_id, "parent_lot_id": parent, "origin": origin, "unit": "L",
            "shipper": "JP-FLUORO", "shipper_country": "JP", "holder": holder, "holder_country": holder[:2],
            "shipped": shipped, "received": shipped, "consumed": "0", "on_hand": "0", "unaccounted": unaccounted,
            "shipped_at": "2019-09-01T00:00:00Z"}


LINEAGE = build_lineage([
    lot("PR-1", None, "export", "KR-SEMI", "1000"),
    lot("PR-1-XA", "PR-1", "re_export", "CN-SEMI-XIAN", "700", unaccounted="50"),
    lot("PR-1-R", "PR-1", "ship_back", "JP-FLUORO", "300"),
])


def test_the_lineage_graph_draws_each_lot_at_its_holder_and_each_hop_with_its_quantity():
    svg = lineage_svg(LINEAGE, fmt=fmt_amount, link=lambda node: f"#chart-TR-1-{node.lot_id}")
    assert svg.count("<rect ") == 3 and svg.count("marker-end=") == 2
    assert "export 1,000 L from JP-FLUORO (JP)" in svg
    assert ">re-export 700 L</text>" in svg and ">ship-back 300 L</text>" in svg
    assert "class='hop ship-back'" in svg  # drawn dashed, as on the dashboard
    # The lot with a shortfall is marked, with the quantity, where it sits.
    assert "<g class='lot unaccounted' data-lot='PR-1-XA'>" in svg
    assert "class='warn'>unaccounted 50 L</text>" in svg
    assert "<a href='#chart-TR-1-PR-1-XA'><g class='lot unaccounted'" in svg


def test_the_report_draws_the_lineage_graph_beside_its_text():
    store = projected(STORY, policy=POLICY, now=CLOCK)
    page = html_report(collect(store, "trace TR-1", ["TR-1"], now=CLOCK, policy=POLICY))
    assert "<figure class='lineage'><figcaption>TR-1</figcaption><svg" in page
    assert "<a href='#chart-TR-1-L1'><g class='lot unaccounted' data-lot='L1'>" in page
    assert "<pre>\nL1  export  JP-FLUORO (JP) -&gt; KR-SEMI (KR)" in page

"""The audit report's chart of a lot's quantities over time: the lot as of
each date its account may have changed (a report occurred, a deadline fell
due), each trace's lineage as a graph, and the flows between countries
(shipped against received, the gaps marked), drawn as static SVG as the
dashboard draws them, so the page prints with no script."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal

from builders import consumed, exported, projected, re_exported, received, stamp
from ledger.flows import Flow
from ledger.policy import Policy
from projections.audit import FLOW_ROWS_PER_CHART, FLOWS_DRAWN_MAX, _flows_figures, collect, html_report
from consumers.render import fmt_amount
from ledger.lineage import build_lineage
from projections.charts import SERIES, ChartPoint, flows_svg, lineage_svg, quantity_chart_svg
from projections.queries import flows_of, whereabouts

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


# The flows chart: the dashboard's flows view on paper.  Japan ships 100 kg
# of hydrogen fluoride to Korea, which reports 70 kg received; Japan ships
# 40 L of it (another trace) and Korea receives all 40 L.  Korea re-exports
# 30 kg of the first to China, which receives them.
FLOWS_STORY = [
    stamp(exported(lot="L1", qty="100", at="2019-07-10")),
    stamp(received(lot="L1", qty="70", at="2019-07-15")),
    stamp(re_exported(lot="L1", child="L1-CN", qty="30", at="2019-08-01")),
    stamp(received(lot="L1-CN", qty="30", at="2019-08-05", by="CN-SEMI-XIAN")),
    stamp(exported(lot="L2", qty="40", unit="L", at="2019-07-11", trace="TR-2")),
    stamp(received(lot="L2", qty="40", unit="L", at="2019-07-16", trace="TR-2")),
]


def flows_report():
    store = projected(FLOWS_STORY, policy=POLICY, now=CLOCK)
    data = collect(store, "period 2019", ["TR-1", "TR-2"], now=CLOCK, policy=POLICY)
    return store, data


def flow_rows(svg):
    """Each drawn flow's group, by its data-flow key."""
    return {part.split("'", 1)[0]: part.split("</g>", 1)[0] for part in svg.split("data-flow='")[1:]}


def texts(svg_part):
    """The words a reader sees in part of an SVG, in order."""
    return re.findall(r">([^<>]+)</text>", svg_part)


def test_the_report_counts_the_flows_as_ledger_flows_does():
    store, data = flows_report()
    # The very computation `ledger flows` and /v1/flows make, on the same rows.
    assert data.flows == flows_of(whereabouts(store, None, now=CLOCK, policy=POLICY))
    assert [(f.origin_country, f.destination_country, f.unit, str(f.shipped), str(f.received))
            for f in data.flows] == [("JP", "KR", "kg", "100", "70"), ("JP", "KR", "L", "40", "40"),
                                     ("KR", "CN", "kg", "30", "30")]


def test_the_flows_chart_labels_each_country_pair_with_its_figures_in_its_own_unit():
    _store, data = flows_report()
    rows = flow_rows(flows_svg(data.flows, fmt=fmt_amount))
    assert set(rows) == {"JP-KR-HF-UHP-2019-kg", "JP-KR-HF-UHP-2019-L", "KR-CN-HF-UHP-2019-kg"}
    kg, litres = rows["JP-KR-HF-UHP-2019-kg"], rows["JP-KR-HF-UHP-2019-L"]
    assert texts(kg) == ["2019", "JP → KR", "HF-UHP", "shipped 100 kg", "received 70 kg", "gap 30 kg (30 %)"]
    assert texts(litres) == ["2019", "JP → KR", "HF-UHP", "shipped 40 L", "received 40 L", "—"]
    # Never kg added to L: the same pair and item are two rows, each bar scaled to its
    # own row (40 L fills the bar as 100 kg does), and no figure sums them.
    assert "<rect x='250' y='71' width='300.0' height='12' fill='#3b6fb6' class='bar-shipped'/>" in litres
    assert "<rect x='250' y='35' width='300.0' height='12' fill='#3b6fb6' class='bar-shipped'/>" in kg


def test_the_flows_chart_marks_the_gap_and_only_where_there_is_one():
    _store, data = flows_report()
    rows = flow_rows(flows_svg(data.flows, fmt=fmt_amount))
    short = rows["JP-KR-HF-UHP-2019-kg"]
    assert short.startswith("JP-KR-HF-UHP-2019-kg'>") and "class='gap-shade'" in short
    assert "class='gap-text'>gap 30 kg (30 %)</text>" in short
    # The 30 kg not received outlined on the received bar: from 70 % of the bar to its end.
    assert "<rect x='250' y='49' width='210.0' height='12' fill='#2a9d8f' class='bar-received'/>" in short
    assert "<rect x='460.0' y='49' width='90.0' height='12' fill='none' stroke='#c0392b'" in short
    for whole in ("JP-KR-HF-UHP-2019-L", "KR-CN-HF-UHP-2019-kg"):
        assert texts(rows[whole])[-1] == "—"
        assert not {"gap-shade", "gap-bar", "gap-text"} & set(re.findall(r"class='([^']+)'", rows[whole]))


def test_the_report_draws_the_flows_chart_with_no_script():
    _store, data = flows_report()
    page = html_report(data, fmt=fmt_amount)
    assert "<script" not in page
    assert "<h2>Flows between countries (3)</h2>" in page
    assert page.count("<figure class='flows'><svg") == 1 and "1 with a gap" in page


def test_many_flows_are_drawn_a_page_at_a_time_those_with_a_gap_first():
    flows = [Flow("JP", "KR", f"ITEM-{n:03d}", "2019", "kg", Decimal(100), Decimal(100 - (n % 50 == 0)), ())
             for n in range(FLOWS_DRAWN_MAX + 10)]
    page = "".join(_flows_figures(flows, fmt_amount))
    assert page.count("<figure class='flows'>") == FLOWS_DRAWN_MAX // FLOW_ROWS_PER_CHART
    assert page.count("data-flow=") == FLOWS_DRAWN_MAX
    assert "ITEM-100" in page and "ITEM-050" in page  # the gaps beyond the bound are drawn
    assert "10 more flows are not drawn here" in page

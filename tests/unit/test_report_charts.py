"""The audit report's chart of a lot's quantities over time: the lot as of
each date its account may have changed (a report occurred, a deadline fell
due), drawn as static SVG with the dashboard's series, so the page prints
with no script."""

from __future__ import annotations

from datetime import datetime, timezone

from builders import consumed, exported, projected, received, stamp
from ledger.policy import Policy
from projections.audit import collect, html_report
from projections.charts import SERIES, ChartPoint, quantity_chart_svg

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

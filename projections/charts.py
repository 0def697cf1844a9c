"""The charts of a printed report, drawn as static SVG (no script: a page
that prints as it is shown).  The dashboard draws the same charts in the
browser (consumers/http/dashboard/charts.js): ``quantityChart``, a step chart
of a lot's quantities over time, one point per date at which its account
changed; ``lineageGraph``, a trace's lots as boxes at their holders with
each hop an arrow labelled with its quantity; ``flowBars``, the flows view's
shipped and received bars, one pair per flow, its row shaded where the two
differ.  The same series, colours and layout, so an auditor who has seen one
reads the other.  Pure: rows in, SVG text out.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ledger.flows import Flow
from ledger.lineage import LotNode

__all__ = ["SERIES", "ChartPoint", "quantity_chart_svg", "lineage_svg", "flows_svg"]

# (row key, label, colour): the dashboard's SERIES, in its order (charts.js).
SERIES = (
    ("shipped", "shipped", "#3b6fb6"),
    ("received", "received", "#2a9d8f"),
    ("consumed", "consumed", "#8a5cc2"),
    ("on_hand", "on hand", "#e09f3e"),
    ("unaccounted", "unaccounted", "#c0392b"),
)
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 760, 300, 56, 130, 40, 40  # as charts.js
DATE_LABEL_GAP_MIN = 70  # a date under the axis closer than this to the previous one is left out
SERIES_OFFSET = 1.2  # equal values are drawn this far apart, so a line under another still shows


@dataclass(frozen=True, slots=True)
class ChartPoint:
    """A lot's account (a whereabouts row) as it stood at ``at``."""

    at: datetime
    row: Mapping[str, Any]


def _value(row: Mapping[str, Any], key: str) -> float:
    text = row.get(key)
    return float(Decimal(text)) if text not in (None, "") else 0.0


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10.0 * power


def _tick(value: float) -> str:
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def quantity_chart_svg(points: Sequence[ChartPoint], unit: str, *, fmt: Callable[[str], str] = str,
                       marker: datetime | None = None, label: str = "quantities of the lot over time") -> str:
    """A step chart (a quantity holds until the next report changes it) of
    ``points`` in time order; the legend gives each series' last value
    through ``fmt`` (e.g. "unaccounted 39,530").  ``marker``: a time drawn as
    a vertical line (the report's as-of time)."""
    e = html.escape
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {WIDTH} {HEIGHT}' class='chart' "
             f"role='img' aria-label='{e(label)}'>"]
    if not points:
        return parts[0] + "</svg>"
    t0 = points[0].at.timestamp()
    t1 = max(points[-1].at.timestamp(), t0 + timedelta(days=1).total_seconds())
    t_end = t1 + (t1 - t0) * 0.08  # room after the last point, where the last values hold
    v_max = _nice_max(max(_value(p.row, key) for p in points for key, _label, _colour in SERIES))

    def x(t: float) -> float:
        return round(LEFT + (t - t0) / (t_end - t0) * (WIDTH - LEFT - RIGHT), 2)

    def y(v: float) -> float:
        return round(TOP + (1 - v / v_max) * (HEIGHT - TOP - BOTTOM), 2)

    for i in range(5):
        v = v_max * i / 4
        parts.append(f"<line x1='{LEFT}' x2='{WIDTH - RIGHT}' y1='{y(v)}' y2='{y(v)}' class='grid'/>")
        parts.append(f"<text x='{LEFT - 6}' y='{y(v) + 4}' text-anchor='end' class='tick'>{_tick(v)}</text>")
    parts.append(f"<text x='{LEFT - 6}' y='{TOP - 12}' text-anchor='end' class='tick'>{e(unit)}</text>")
    for p in points:
        px = x(p.at.timestamp())
        parts.append(f"<line x1='{px}' x2='{px}' y1='{TOP}' y2='{HEIGHT - BOTTOM}' class='report-mark'/>")
    if marker is not None and t0 <= marker.timestamp() <= t_end:
        mx = x(marker.timestamp())
        parts.append(f"<line x1='{mx}' x2='{mx}' y1='{TOP - 20}' y2='{HEIGHT - BOTTOM}' class='as-of-mark'/>")
        parts.append(f"<text x='{mx + 4}' y='{TOP - 10}' class='as-of-label'>as of {marker.date()}</text>")
    parts.append(f"<text x='{WIDTH - RIGHT + 8}' y='{TOP}' class='tick'>latest</text>")
    labelled: float | None = None
    for p in points:
        px = x(p.at.timestamp())
        if labelled is None or px - labelled > DATE_LABEL_GAP_MIN:
            parts.append(f"<text x='{px}' y='{HEIGHT - BOTTOM + 16}' text-anchor='middle' "
                         f"class='tick'>{p.at.date()}</text>")
            labelled = px
    for n, (key, name, colour) in enumerate(SERIES):
        offset = (n - 2) * SERIES_OFFSET
        path = []
        for i, p in enumerate(points):
            v = round(y(_value(p.row, key)) + offset, 2)
            px = x(p.at.timestamp())
            path.append(f"M{px},{v}" if i == 0 else f"H{px}V{v}")
        path.append(f"H{x(t_end)}")
        parts.append(f"<path d='{''.join(path)}' class='series' fill='none' stroke='{colour}' "
                     f"stroke-width='2' data-series='{key}'/>")
        last = points[-1].row.get(key) or "0"
        parts.append(f"<circle cx='{x(t_end)}' cy='{round(y(_value(points[-1].row, key)) + offset, 2)}' r='3' "
                     f"fill='{colour}'/>")
        parts.append(f"<text x='{WIDTH - RIGHT + 8}' y='{TOP + 14 + n * 18}' fill='{colour}' "
                     f"class='legend'>{e(name)} {e(fmt(str(last)))}</text>")
    parts.append("</svg>")
    return "".join(parts)


# The lineage graph's layout (lineageGraph in charts.js).
BOX_W, BOX_H, COLUMN_GAP, ROW_GAP, PAD = 250, 94, 150, 26, 16


def lineage_svg(roots: Sequence[LotNode], *, fmt: Callable[[str], str] = str,
                link: Callable[[LotNode], str | None] = lambda _node: None, arrow_id: str = "arrow") -> str:
    """Each lot a box at its holder (columns: hops from the export), each
    re-export or ship-back an arrow labelled with what was shipped; a lot
    with something unaccounted drawn red with the quantity.  ``link``: where
    a box leads (None: nowhere); ``arrow_id``: unique in the page."""
    e = html.escape
    placed: list[tuple[LotNode, int, float]] = []
    leaves = 0

    def place(node: LotNode, depth: int) -> float:
        nonlocal leaves
        if not node.children:
            y_mid = float(leaves * (BOX_H + ROW_GAP))
            leaves += 1
        else:
            ys = [place(child, depth + 1) for child in node.children]
            y_mid = (ys[0] + ys[-1]) / 2
        placed.append((node, depth, y_mid))
        return y_mid

    for root in roots:
        place(root, 0)
    depth_max = max((depth for _node, depth, _y in placed), default=0)
    width = PAD * 2 + (depth_max + 1) * BOX_W + depth_max * COLUMN_GAP
    height = PAD * 2 + max(1, leaves) * (BOX_H + ROW_GAP) - ROW_GAP + 16
    at = {id(node): (PAD + depth * (BOX_W + COLUMN_GAP), PAD + 14 + y) for node, depth, y in placed}
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' class='lineage' "
             f"width='{width}' height='{height}' role='img' aria-label='lineage of the trace'>",
             f"<defs><marker id='{e(arrow_id)}' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='7' "
             f"markerHeight='7' orient='auto-start-reverse'><path d='M0,0L10,5L0,10z' fill='#555'/></marker></defs>"]
    for node, _depth, _y in placed:  # arrows first, boxes over them
        x_from, y_from = at[id(node)]
        for child in node.children:
            x_to, y_to = at[id(child)]
            x1, y1, x2, y2 = x_from + BOX_W, y_from + BOX_H / 2, x_to, y_to + BOX_H / 2
            mid = (x1 + x2) / 2
            ship_back = child.row.get("origin") == "ship_back"
            parts.append(f"<path d='M{x1},{y1}C{mid},{y1} {mid},{y2} {x2 - 2},{y2}' "
                         f"class='hop{' ship-back' if ship_back else ''}' marker-end='url(#{e(arrow_id)})'/>")
            label = f"{'ship-back' if ship_back else 're-export'} {fmt(str(child.row.get('shipped')))} {child.row.get('unit')}"
            label_y = y2 + 15 if y2 > y1 else y2 - 6  # under the arrow where it comes from above
            parts.append(f"<text x='{x2 - 6}' y='{label_y}' text-anchor='end' class='hop-label'>{e(label)}</text>")
    for node, _depth, _y in placed:
        x, y = at[id(node)]
        r = node.row
        unaccounted = r.get("unaccounted")
        short = unaccounted not in (None, "") and Decimal(str(unaccounted)) > 0
        box = [f"<g class='lot{' unaccounted' if short else ''}' data-lot='{e(node.lot_id)}'>",
               f"<rect x='{x}' y='{y}' width='{BOX_W}' height='{BOX_H}' rx='6'/>",
               f"<text x='{x + 8}' y='{y + 17}' class='lot-id'>{e(node.lot_id)}</text>",
               f"<text x='{x + 8}' y='{y + 34}'>{e(str(r.get('holder')))} ({e(str(r.get('holder_country')))})</text>",
               f"<text x='{x + 8}' y='{y + 51}'>shipped {e(fmt(str(r.get('shipped'))))} · received "
               f"{e(fmt(str(r.get('received'))))} {e(str(r.get('unit')))}</text>",
               f"<text x='{x + 8}' y='{y + 68}'>consumed {e(fmt(str(r.get('consumed'))))} · on hand "
               f"{e(fmt(str(r.get('on_hand'))))}</text>"]
        if short:
            box.append(f"<text x='{x + 8}' y='{y + 85}' class='warn'>unaccounted {e(fmt(str(unaccounted)))} "
                       f"{e(str(r.get('unit')))}</text>")
        box.append("</g>")
        href = link(node)
        parts.append(f"<a href='{e(href)}'>" + "".join(box) + "</a>" if href else "".join(box))
        if r.get("origin") == "export":
            parts.append(f"<text x='{x}' y='{y - 5}' class='hop-label'>export {e(fmt(str(r.get('shipped'))))} "
                         f"{e(str(r.get('unit')))} from {e(str(r.get('shipper')))} "
                         f"({e(str(r.get('shipper_country')))})</text>")
    parts.append("</svg>")
    return "".join(parts)


# The flows chart's layout: one row per flow, as the rows of the dashboard's
# flows table (flowsPage in app.js), its bars as flowBars in charts.js.
FLOW_W, FLOW_ROW_H, FLOW_HEAD_H = 1000, 36, 30
FLOW_BARS_X, FLOW_BARS_W = 250, 300  # the bars' column
FLOW_FIGURES_X, FLOW_GAP_X = 565, 760  # "shipped 4,050 t" / "received 4,000 t"; the gap
SHIPPED_COLOUR, RECEIVED_COLOUR, GAP_COLOUR, GAP_SHADE = "#3b6fb6", "#2a9d8f", "#c0392b", "#fdecea"


def flows_svg(flows: Sequence[Flow], *, fmt: Callable[[str], str] = str,
              label: str = "shipped against received, per country pair") -> str:
    """Each flow (``ledger.flows.reconcile``) a row: its period, countries
    and item, a bar of what the senders shipped above one of what the
    receivers received, both figures with the flow's unit, and its gap.  The
    bars of a row are scaled to that row alone (the larger of its two
    figures), as on the dashboard, so no row is measured against another's
    unit: a flow in kg and one in L never share a scale, and nothing is
    summed across rows.  A flow with a gap is shaded, its gap written in red
    and the part shipped but not received (or received but not shipped)
    outlined in red on the bars."""
    e = html.escape
    height = FLOW_HEAD_H + len(flows) * FLOW_ROW_H + 4
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {FLOW_W} {height}' class='flows' "
             f"role='img' aria-label='{e(label)}'>",
             "<text x='8' y='18' class='flow-head'>period</text>",
             "<text x='60' y='18' class='flow-head'>from → to</text>",
             "<text x='140' y='18' class='flow-head'>item</text>",
             f"<rect x='{FLOW_BARS_X}' y='8' width='12' height='10' fill='{SHIPPED_COLOUR}'/>",
             f"<text x='{FLOW_BARS_X + 16}' y='18' class='flow-head'>shipped (senders)</text>",
             f"<rect x='{FLOW_BARS_X + 150}' y='8' width='12' height='10' fill='{RECEIVED_COLOUR}'/>",
             f"<text x='{FLOW_BARS_X + 166}' y='18' class='flow-head'>received (receivers)</text>",
             f"<text x='{FLOW_GAP_X}' y='18' class='flow-head'>gap (shipped − received)</text>"]
    for n, flow in enumerate(flows):
        d = flow.as_dict()
        y = FLOW_HEAD_H + n * FLOW_ROW_H
        gap = flow.gap != 0
        top = max(flow.shipped, flow.received)

        def w(amount: Decimal) -> float:
            return round(float(amount / top) * FLOW_BARS_W, 2) if top > 0 else 0.0

        unit = e(flow.unit)
        parts.append(f"<g class='flow{' gap' if gap else ''}' data-flow='{e(flow.origin_country)}-"
                     f"{e(flow.destination_country)}-{e(flow.item_id)}-{e(flow.period)}-{unit}'>")
        if gap:
            parts.append(f"<rect x='0' y='{y}' width='{FLOW_W}' height='{FLOW_ROW_H}' fill='{GAP_SHADE}' "
                         f"class='gap-shade'/>")
        parts.append(f"<line x1='0' x2='{FLOW_W}' y1='{y + FLOW_ROW_H}' y2='{y + FLOW_ROW_H}' class='grid'/>")
        parts.append(f"<text x='8' y='{y + 22}'>{e(flow.period)}</text>"
                     f"<text x='60' y='{y + 22}'>{e(flow.origin_country)} → {e(flow.destination_country)}</text>"
                     f"<text x='140' y='{y + 22}'>{e(flow.item_id)}</text>")
        parts.append(f"<rect x='{FLOW_BARS_X}' y='{y + 5}' width='{w(flow.shipped)}' height='12' "
                     f"fill='{SHIPPED_COLOUR}' class='bar-shipped'/>"
                     f"<rect x='{FLOW_BARS_X}' y='{y + 19}' width='{w(flow.received)}' height='12' "
                     f"fill='{RECEIVED_COLOUR}' class='bar-received'/>")
        if gap:  # the missing part, on the bar that falls short
            short_y = y + 19 if flow.gap > 0 else y + 5
            x_from = FLOW_BARS_X + min(w(flow.shipped), w(flow.received))
            short_w = round(abs(w(flow.shipped) - w(flow.received)), 2)
            parts.append(f"<rect x='{x_from}' y='{short_y}' width='{short_w}' "
                         f"height='12' fill='none' stroke='{GAP_COLOUR}' stroke-width='2' "
                         f"stroke-dasharray='4 2' class='gap-bar'/>")
        parts.append(f"<text x='{FLOW_FIGURES_X}' y='{y + 15}' class='figure'>shipped {e(fmt(str(d['shipped'])))} "
                     f"{unit}</text><text x='{FLOW_FIGURES_X}' y='{y + 30}' class='figure'>received "
                     f"{e(fmt(str(d['received'])))} {unit}</text>")
        if gap:
            share = "" if d["gap_percent"] is None else f" ({e(str(d['gap_percent']))} %)"
            parts.append(f"<text x='{FLOW_GAP_X}' y='{y + 22}' fill='{GAP_COLOUR}' class='gap-text'>gap "
                         f"{e(fmt(str(d['gap'])))} {unit}{share}</text>")
        else:
            parts.append(f"<text x='{FLOW_GAP_X}' y='{y + 22}' class='no-gap'>—</text>")
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)

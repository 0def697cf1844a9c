"""Lineage: the tree of lots of a trace, from the export to every re-export
and ship-back, with the account of each lot at its node.

Works on lot rows as the projections hold them (mappings with ``lot_id``,
``parent_lot_id`` and the account columns as canonical decimal strings), so
the tree shows exactly the figures ``ledger whereabouts`` shows.  Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LotNode", "build_lineage", "render_lineage", "lineage_dict", "one_line", "NODE_FIGURES"]

# The account columns shown at each node, in the order a reader checks them:
# shipped = received + in transit; received = consumed + re-exported + returned + lost + on hand.
NODE_FIGURES = ("shipped", "in_transit", "received", "consumed", "re_exported", "returned", "lost",
                "on_hand", "unaccounted")  # fmt: skip
TREE_DEPTH_MAX = 1000  # guard against a parent cycle in damaged rows
_LABELS = {"re_exported": "re-exported"}


@dataclass(slots=True)
class LotNode:
    row: Mapping[str, Any]
    children: list[LotNode] = field(default_factory=list)

    @property
    def lot_id(self) -> str:
        return str(self.row["lot_id"])


def build_lineage(rows: Iterable[Mapping[str, Any]]) -> list[LotNode]:
    """Root nodes (lots with no known parent), children in shipment order.

    A lot id names a lot within its trace: two exporters' traces may each
    hold a lot "LOT-1", and each is a tree of its own."""
    nodes = {(row.get("trace_id"), row["lot_id"]): LotNode(row) for row in rows}
    roots = []
    for node in nodes.values():
        parent = nodes.get((node.row.get("trace_id"), node.row.get("parent_lot_id")))
        if parent is None or parent is node:
            roots.append(node)
        else:
            parent.children.append(node)
    key = lambda n: (str(n.row.get("shipped_at") or ""), n.lot_id)  # noqa: E731
    for node in nodes.values():
        node.children.sort(key=key)
    roots.sort(key=lambda n: (str(n.row.get("trace_id") or ""), *key(n)))
    return roots


def _head(row: Mapping[str, Any]) -> list[str]:
    """The lot, how it was opened, who shipped it to whom, the item, the license."""
    origin = str(row.get("origin") or "").replace("_", "-")
    head = [str(row["lot_id"]), origin,
            f"{row.get('shipper')} ({row.get('shipper_country')}) -> {row.get('holder')} ({row.get('holder_country')})",
            str(row.get("item_id"))]
    if row.get("license_id"):
        head.append(f"license {row['license_id']}")
    return head


def _figures(row: Mapping[str, Any], fmt: Any) -> list[str]:
    """Each figure with its name ("shipped 39,650"): a piece a line never splits."""
    return [f"{_LABELS.get(name, name.replace('_', ' '))} {fmt(row.get(name))}"
            for name in NODE_FIGURES if row.get(name) is not None]


Pack = Callable[[str, str, Sequence[str], str, int | None], list[str]]


def one_line(first: str, rest: str, pieces: Sequence[str], sep: str, width: int | None) -> list[str]:
    """The pieces on one line, whatever the width (a page, a pipe)."""
    return [first + sep.join(pieces)]


def render_lineage(roots: list[LotNode], *, fmt: Any = str, width: int | None = None,
                   pack: Pack = one_line) -> list[str]:
    """Text lines of the tree; ``fmt`` formats an amount string.  ``pack``
    lays a node's pieces (its head, then its figures) into lines of at most
    ``width`` (consumers.render.pack on a terminal), each line after the
    first under the node's own branch, so the tree stays readable."""
    lines: list[str] = []

    def walk(node: LotNode, prefix: str, last: bool, depth: int, top: bool) -> None:
        if depth > TREE_DEPTH_MAX:
            return
        branch = "" if top else ("└─ " if last else "├─ ")
        inner = prefix + ("" if top else ("   " if last else "│  "))
        below = inner + ("│  " if node.children else "   ")
        lines.extend(pack(prefix + branch, below + "  ", _head(node.row), "  ", width))
        unit = f"{node.row.get('unit') or ''}: "
        lines.extend(pack(below + unit, below + " " * len(unit), _figures(node.row, fmt), ", ", width))
        for i, child in enumerate(node.children):
            walk(child, inner, i == len(node.children) - 1, depth + 1, False)

    for root in roots:
        walk(root, "", True, 0, True)
    return lines


def lineage_dict(node: LotNode) -> dict[str, Any]:
    """The tree as nested JSON-ready dicts: the lot row plus ``children``."""
    out = dict(node.row)
    out["children"] = [lineage_dict(c) for c in node.children]
    return out

"""Human-readable tables for the terminal.  --json output never goes through here."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

__all__ = ["table", "fmt_amount"]

CELL_WIDTH_MAX = 60


def fmt_amount(text: str | None) -> str:
    """'39530' -> '39,530'; '0.5' -> '0.5'; None -> ''."""
    if text is None or text == "":
        return ""
    value = Decimal(text)
    whole, _, frac = text.partition(".")
    sign = "-" if value < 0 else ""
    whole = f"{abs(int(whole)):,}" if whole.lstrip("-") else "0"
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, right: set[int] | None = None) -> str:
    right = right or set()
    cells = [[_cell(v, last=(i == len(row) - 1)) for i, v in enumerate(row)] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(widths[i]) if i in right else v.ljust(widths[i]) for i, v in enumerate(values)]
        return "  ".join(parts).rstrip()

    # The last column may run on (a message); its rule stops at the cell width bound.
    rules = ["-" * (min(w, CELL_WIDTH_MAX) if i == len(widths) - 1 else w) for i, w in enumerate(widths)]
    out = [line(list(headers)), line(rules)]
    out.extend(line(row) for row in cells)
    return "\n".join(out)


def _cell(value: object, *, last: bool = False) -> str:
    text = "" if value is None else str(value)
    if len(text) > CELL_WIDTH_MAX and not last:  # the last column may run on
        text = text[: CELL_WIDTH_MAX - 1] + "…"
    return text

"""Human-readable tables for the terminal.  --json and -o csv never go through here.

A table fits the terminal it is printed on: the last column (free text: a
message, a problem) wraps within what the other columns leave; if even that
does not fit, each row is printed as a block of "HEADER value" pairs packed
into lines, so no figure is ever split or cut.  Piped into another program
(no terminal, no $COLUMNS) a table keeps its natural width, one row a line,
for grep and cut.  Severity is coloured on a terminal unless $NO_COLOR is set.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Sequence
from decimal import Decimal

__all__ = ["table", "pack", "fmt_amount", "plural", "terminal_width", "colour_enabled", "severity_colour"]

CELL_WIDTH_MAX = 60  # a cell other than the last is cut (with "…") past this many characters
GAP = "  "  # between two columns
LAST_COLUMN_WIDTH_MIN = 24  # narrower than this, a wrapped message reads badly: blocks instead
WIDTH_FALLBACK = 80  # a terminal that does not say how wide it is

_SEVERITY_COLOURS = {"high": "\033[1;31m", "medium": "\033[33m", "low": "\033[2m"}
_RESET = "\033[0m"

Paint = Callable[[str], str]  # (the cell's text) -> an ANSI colour prefix, or ""


def fmt_amount(text: str | None) -> str:
    """'39530' -> '39,530'; '0.5' -> '0.5'; None -> ''."""
    if text is None or text == "":
        return ""
    value = Decimal(text)
    whole, _, frac = text.partition(".")
    sign = "-" if value < 0 else ""
    whole = f"{abs(int(whole)):,}" if whole.lstrip("-") else "0"
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """The word for ``count`` of ``noun``: plural(1, "lot") -> "lot", plural(2,
    "lot") -> "lots", plural(0, "party", "parties") -> "parties".  Only the
    word: the caller prints the count as it prints its other figures
    (f"{n:,} {plural(n, 'record')}")."""
    return noun if count == 1 else nouns or noun + "s"


def terminal_width(stream: object = None) -> int | None:
    """The width to fit: $COLUMNS if set, else the terminal's; None when the
    output is not a terminal (a pipe or a file keeps whole lines)."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    out = stream if stream is not None else sys.stdout
    if not getattr(out, "isatty", lambda: False)():
        return None
    return shutil.get_terminal_size((WIDTH_FALLBACK, 24)).columns


def colour_enabled(stream: object = None) -> bool:
    """Colour only on a terminal, and never with $NO_COLOR (https://no-color.org) or TERM=dumb."""
    if os.environ.get("NO_COLOR", "") != "" or os.environ.get("TERM") == "dumb":
        return False
    out = stream if stream is not None else sys.stdout
    return bool(getattr(out, "isatty", lambda: False)())


def severity_colour(text: str) -> str:
    return _SEVERITY_COLOURS.get(text.strip(), "")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, right: set[int] | None = None,
          width: int | None = None, paint: dict[int, Paint] | None = None) -> str:
    """``rows`` under ``headers``; columns in ``right`` are right-aligned
    (figures).  ``width``: the characters available (None: no limit).
    ``paint``: column -> colour for a cell's text (applied after padding,
    so colour codes never count as width)."""
    right = right or set()
    paint = paint or {}
    last = len(headers) - 1
    cells = [[_cell(v, last=(i == last)) for i, v in enumerate(row)] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))

    natural = sum(widths) + len(GAP) * last
    if width is not None and natural > width:
        room = width - (sum(widths[:last]) + len(GAP) * last)
        if room < max(LAST_COLUMN_WIDTH_MIN, len(headers[last])) or last in right:
            return _blocks(headers, cells, width, paint)
        widths[last] = room

    def line(values: Sequence[str], *, painted: bool = True) -> str:
        parts = []
        for i, v in enumerate(values):
            text = v.rjust(widths[i]) if i in right else v.ljust(widths[i])
            colour = paint[i](v) if painted and i in paint else ""
            parts.append(f"{colour}{text}{_RESET}" if colour else text)
        return GAP.join(parts).rstrip()

    # The last column may run on (a message); its rule stops at the cell width bound.
    rules = ["-" * (min(w, CELL_WIDTH_MAX) if i == last else w) for i, w in enumerate(widths)]
    out = [line(list(headers), painted=False), line(rules, painted=False)]
    indent = sum(widths[:last]) + len(GAP) * last
    for row in cells:
        text = row[last]
        if len(text) <= widths[last]:
            out.append(line(row))
            continue
        # Wrap the free text at word boundaries under its own column.
        wrapped = textwrap.wrap(text, widths[last], break_on_hyphens=False) or [""]
        out.append(line([*row[:last], wrapped[0]]))
        out.extend(" " * indent + more for more in wrapped[1:])
    return "\n".join(out)


def pack(first: str, rest: str, pieces: Sequence[str], sep: str, width: int | None) -> list[str]:
    """``pieces`` joined by ``sep`` after ``first``, in lines of at most
    ``width`` characters, each line after the first starting with ``rest``.
    A piece ("shipped 39,650", "license JP-IND-2019-0002") is never split
    across lines (a line broken between two ends with ``sep`` stripped: ","); one longer than a whole line gets lines of its own, broken
    only between words (so a figure stays whole).  ``width`` None: one line."""
    if width is None:
        return [first + sep.join(pieces)]
    lines: list[str] = []
    current, empty = first, True  # the line being filled; nothing on it yet
    mark = sep.rstrip()  # ends a line the list goes on after: "shipped 40,"
    for number, piece in enumerate(pieces, start=1):
        room = width - (len(mark) if number < len(pieces) else 0)
        if len(current + ("" if empty else sep) + piece) <= room:
            current, empty = current + ("" if empty else sep) + piece, False
            continue
        if not empty:
            lines.append(current + mark)
            current, empty = rest, True
            if len(current + piece) <= room:
                current, empty = current + piece, False
                continue
        # Longer than a whole line: lines of its own, broken only between words.
        lines.extend(textwrap.wrap(piece, width, initial_indent=current, subsequent_indent=rest,
                                   break_long_words=False, break_on_hyphens=False))
        current, empty = rest, True
    if not empty or not lines:
        lines.append(current)
    return lines


def _blocks(headers: Sequence[str], cells: list[list[str]], width: int, paint: dict[int, Paint]) -> str:
    """Each row as "HEADER value" pairs packed into lines of at most ``width``
    (a pair longer than a line gets a line of its own, its value wrapped at words)."""
    out: list[str] = []
    for number, row in enumerate(cells, start=1):
        out.append(f"-[ {number} ]" + "-" * max(0, min(width, 40) - len(f"-[ {number} ]")))
        current = ""
        for i, (header, value) in enumerate(zip(headers, row)):
            if value == "":
                continue
            colour = paint[i](value) if i in paint else ""
            shown = f"{colour}{value}{_RESET}" if colour else value
            pair_length = len(header) + 1 + len(value)
            if pair_length > width:
                if current:
                    out.append(current)
                    current = ""
                out.extend(textwrap.wrap(f"{header} {value}", width, subsequent_indent="  ",
                                         break_on_hyphens=False))
                continue
            visible = len(_strip(current))
            if current and visible + len(GAP) + pair_length > width:
                out.append(current)
                current = ""
            current = f"{current}{GAP}{header} {shown}" if current else f"{header} {shown}"
        if current:
            out.append(current)
    return "\n".join(out)


def _strip(text: str) -> str:
    for code in (*_SEVERITY_COLOURS.values(), _RESET):
        text = text.replace(code, "")
    return text


def _cell(value: object, *, last: bool = False) -> str:
    text = "" if value is None else str(value)
    if len(text) > CELL_WIDTH_MAX and not last:  # the last column may run on
        text = text[: CELL_WIDTH_MAX - 1] + "…"
    return text

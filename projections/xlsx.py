"""A small, fast XLSX (SpreadsheetML) writer for the audit export.

Only what the export needs: several sheets of rows, text cells as inline
strings (never formulas: a cell reading "=HYPERLINK(...)" stays text),
number cells holding exact decimal text (never a binary float), times as
spreadsheet date-times in UTC; a bold, shaded header row that stays in view
(frozen pane) with an autofilter, and column widths that fit the content.
The result opens in Excel, LibreOffice and openpyxl.load_workbook (the tests
read it back that way, and render it through LibreOffice).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

__all__ = ["write", "TEXT", "NUMBER", "DATETIME", "SHEET_NAME_LENGTH_MAX", "CELL_TEXT_LENGTH_MAX"]

# What a column holds, which decides how its cells are written.
TEXT, NUMBER, DATETIME = "text", "number", "datetime"

SHEET_NAME_LENGTH_MAX = 31  # Excel's bound
CELL_TEXT_LENGTH_MAX = 32_767  # Excel's bound
ROWS_MAX = 1_048_576  # Excel's bound per sheet
WIDTH_MIN_CHARS = 6  # a column is never narrower than this
WIDTH_MAX_CHARS = 60  # free text longer than this wraps in the cell instead of widening the column
DATETIME_WIDTH_CHARS = 20  # "2019-07-10 00:00:00" and a little room
_EXCEL_EPOCH = datetime(1899, 12, 30, tzinfo=timezone.utc)  # serial 0 (the 1900 leap-year bug included)
# Cell styles (indexes into cellXfs below): 0 plain, 1 header, 2 UTC date-time, 3 wrapped text.
_STYLE_HEADER, _STYLE_DATETIME, _STYLE_WRAP = 1, 2, 3
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
# Characters XML 1.0 does not allow; a report's free text could carry them.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "{sheets}</Types>"
)
_SHEET_TYPE = (
    '<Override PartName="/xl/worksheets/sheet{n}.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    "<sheets>{sheets}</sheets>{names}</workbook>"
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    "{sheets}"
    '<Relationship Id="rIdStyles" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
    'Target="styles.xml"/></Relationships>'
)
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><color rgb="FFFFFFFF"/><name val="Calibri"/></font></fonts>'
    '<fills count="3"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill>'
    '<fill><patternFill patternType="solid"><fgColor rgb="FF305496"/><bgColor indexed="64"/></patternFill></fill>'
    '</fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="2" borderId="0" xfId="0" applyFont="1" applyFill="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" applyAlignment="1">'
    '<alignment wrapText="1" vertical="top"/></xf></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    # fitToPage: printed (or made a PDF) on A4 landscape, every column of a
    # sheet fits the page width and the rows run on over pages (pageSetup in
    # _SHEET_TAIL); by default LibreOffice printed 3 events on 35 pages, a
    # few columns each.
    '<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>'
    '<dimension ref="{ref}"/>'
    '<sheetViews><sheetView workbookViewId="0">'
    '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
    '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
    '<sheetFormatPr defaultRowHeight="15"/>{cols}<sheetData>'
)
_SHEET_TAIL = (
    "</sheetData>{filter}"
    '<pageMargins left="0.3" right="0.3" top="0.4" bottom="0.4" header="0.2" footer="0.2"/>'
    '<pageSetup paperSize="9" orientation="landscape" fitToWidth="1" fitToHeight="0"/>'
    "</worksheet>"
)


def _column(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


_NEEDS_WORK = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(text: str) -> str:
    if len(text) > CELL_TEXT_LENGTH_MAX:
        text = text[:CELL_TEXT_LENGTH_MAX]
    if _NEEDS_WORK.search(text) is None:  # most cells: ids, codes, dates
        return text
    return escape(_ILLEGAL.sub("", text))


def excel_datetime(text: str) -> str | None:
    """An ISO 8601 time with its offset as a spreadsheet serial in UTC (days
    since 1899-12-30), or None if the text is not such a time."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    delta = moment.astimezone(timezone.utc) - _EXCEL_EPOCH
    return repr(delta.days + (delta.seconds + delta.microseconds / 1e6) / 86_400)


def _widths(rows: Sequence[Sequence[Any]], kinds: Sequence[str], width: int) -> list[int]:
    """Characters per column: the longest cell (header included), within the bounds."""
    out = [WIDTH_MIN_CHARS] * width
    for row in rows:
        for c, value in enumerate(row):
            if value is not None and c < width:
                length = len(str(value))
                if length > out[c]:
                    out[c] = length
    return [DATETIME_WIDTH_CHARS if kinds[c] == DATETIME else min(out[c] + 2, WIDTH_MAX_CHARS)
            for c in range(width)]


def write(path: Path, sheets: Sequence[tuple[str, Sequence[Sequence[Any]], Sequence[str | bool]]]) -> None:
    """Write ``sheets`` as (name, rows, column kinds: TEXT, NUMBER or DATETIME;
    True / False mean NUMBER / TEXT).  The first row of each sheet is its
    header: always text, styled, frozen, with an autofilter.  In later rows a
    NUMBER value that reads as a decimal becomes a number cell, a DATETIME
    value that reads as an ISO time with an offset a date-time cell in UTC;
    anything else stays text, so nothing is lost."""
    names = []
    for name, rows, _numeric in sheets:
        if not name or len(name) > SHEET_NAME_LENGTH_MAX or set(name) & set("[]:*?/\\"):
            raise ValueError(f"sheet name {name!r} is not allowed in XLSX")
        if len(rows) > ROWS_MAX:
            raise ValueError(f"sheet {name!r} has {len(rows)} rows; XLSX holds at most {ROWS_MAX}")
        names.append(name)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("[Content_Types].xml", _CONTENT_TYPES.format(
            sheets="".join(_SHEET_TYPE.format(n=i + 1) for i in range(len(sheets)))))
        z.writestr("_rels/.rels", _RELS)
        # The header row is repeated on every printed page (Print_Titles).
        titles = "".join(f'<definedName name="_xlnm.Print_Titles" localSheetId="{i}">'
                         f"'{escape(n)}'!$1:$1</definedName>" for i, n in enumerate(names))
        z.writestr("xl/workbook.xml", _WORKBOOK.format(sheets="".join(
            f'<sheet name="{escape(n)}" sheetId="{i + 1}" r:id="rId{i + 1}"/>' for i, n in enumerate(names)),
            names=f"<definedNames>{titles}</definedNames>" if titles else ""))
        z.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS.format(sheets="".join(
            f'<Relationship Id="rId{i + 1}" '
            f'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
            f'Target="worksheets/sheet{i + 1}.xml"/>' for i in range(len(names)))))
        z.writestr("xl/styles.xml", _STYLES)
        for i, (_name, rows, numeric) in enumerate(sheets):
            with z.open(f"xl/worksheets/sheet{i + 1}.xml", "w", force_zip64=True) as out:
                width = max((len(r) for r in rows), default=0)
                columns = [_column(c) for c in range(width)]
                ref = f"A1:{columns[-1]}{len(rows)}" if rows and width else "A1"
                kinds = [(NUMBER if k is True else TEXT if k is False else k) for k in numeric]
                kinds += [TEXT] * (width - len(kinds))
                widths = _widths(rows, kinds, width)
                wrapped = [w >= WIDTH_MAX_CHARS for w in widths]
                cols = ("<cols>" + "".join(f'<col min="{c + 1}" max="{c + 1}" width="{w}" customWidth="1"/>'
                                           for c, w in enumerate(widths)) + "</cols>") if width else ""
                out.write(_SHEET_HEAD.format(ref=ref, cols=cols).encode())
                chunk: list[str] = []
                for r, row in enumerate(rows, start=1):
                    cells = []
                    for c, value in enumerate(row):
                        if value is None or value == "":
                            continue
                        ref = f"{columns[c]}{r}"
                        text = str(value)
                        if r == 1:
                            cells.append(f'<c r="{ref}" s="{_STYLE_HEADER}" t="inlineStr"><is><t xml:space="preserve">'
                                         f"{_text(text)}</t></is></c>")
                            continue
                        kind = kinds[c]
                        if kind == NUMBER and _NUMBER.match(text):
                            cells.append(f'<c r="{ref}"><v>{text}</v></c>')
                            continue
                        if kind == DATETIME and (serial := excel_datetime(text)) is not None:
                            cells.append(f'<c r="{ref}" s="{_STYLE_DATETIME}"><v>{serial}</v></c>')
                            continue
                        style = f' s="{_STYLE_WRAP}"' if wrapped[c] else ""
                        cells.append(f'<c r="{ref}"{style} t="inlineStr"><is><t xml:space="preserve">'
                                     f"{_text(text)}</t></is></c>")
                    chunk.append(f'<row r="{r}">{"".join(cells)}</row>')
                    if len(chunk) >= 5000:
                        out.write("".join(chunk).encode())
                        chunk.clear()
                out.write("".join(chunk).encode())
                autofilter = f'<autoFilter ref="A1:{columns[-1]}{max(len(rows), 1)}"/>' if width else ""
                out.write(_SHEET_TAIL.format(filter=autofilter).encode())

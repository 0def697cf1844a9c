"""A small, fast XLSX (SpreadsheetML) writer for the audit export.

Only what the export needs: several sheets of rows, text cells as inline
strings, number cells holding exact decimal text (never a binary float),
a bold-free default style.  The result opens in Excel, LibreOffice and
openpyxl.load_workbook (the tests read it back that way).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

__all__ = ["write", "SHEET_NAME_LENGTH_MAX", "CELL_TEXT_LENGTH_MAX"]

SHEET_NAME_LENGTH_MAX = 31  # Excel's bound
CELL_TEXT_LENGTH_MAX = 32_767  # Excel's bound
ROWS_MAX = 1_048_576  # Excel's bound per sheet
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
    "<sheets>{sheets}</sheets></workbook>"
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
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<dimension ref="{ref}"/><sheetData>'
)
_SHEET_TAIL = "</sheetData></worksheet>"


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


def write(path: Path, sheets: Sequence[tuple[str, Sequence[Sequence[Any]], Sequence[bool]]]) -> None:
    """Write ``sheets`` as (name, rows, numeric-column flags).  The first row
    of each sheet is its header and always text; in later rows a value in a
    numeric column that reads as a decimal number becomes a number cell."""
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
        z.writestr("xl/workbook.xml", _WORKBOOK.format(sheets="".join(
            f'<sheet name="{escape(n)}" sheetId="{i + 1}" r:id="rId{i + 1}"/>' for i, n in enumerate(names))))
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
                out.write(_SHEET_HEAD.format(ref=ref).encode())
                flags = list(numeric) + [False] * (width - len(numeric))
                chunk: list[str] = []
                for r, row in enumerate(rows, start=1):
                    cells = []
                    for c, value in enumerate(row):
                        if value is None or value == "":
                            continue
                        ref = f"{columns[c]}{r}"
                        text = str(value)
                        if r > 1 and flags[c] and _NUMBER.match(text):
                            cells.append(f'<c r="{ref}"><v>{text}</v></c>')
                        else:
                            cells.append(f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">'
                                         f"{_text(text)}</t></is></c>")
                    chunk.append(f'<row r="{r}">{"".join(cells)}</row>')
                    if len(chunk) >= 5000:
                        out.write("".join(chunk).encode())
                        chunk.clear()
                out.write("".join(chunk).encode())
                out.write(_SHEET_TAIL.encode())

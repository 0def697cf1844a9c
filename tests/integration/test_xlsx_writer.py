"""The XLSX writer of the audit export: what it writes, read back by openpyxl."""

from __future__ import annotations

from decimal import Decimal

import pytest
from openpyxl import load_workbook

from projections import xlsx


def test_xlsx_cells_keep_exact_decimals_and_escape_what_xml_cannot_hold(tmp_path):
    path = tmp_path / "t.xlsx"
    xlsx.write(path, [
        ("events", [["amount", "detail"], ["39650", "a & b < c > d"], ["0.000001", "bell\x07 here"],
                    ["not a number", None], ["-12.5", ""]], [True, False]),
    ])
    sheet = load_workbook(path)["events"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("amount", "detail")  # the header is text even in a numeric column
    assert rows[1] == (39650, "a & b < c > d")
    assert Decimal(str(rows[2][0])) == Decimal("0.000001") and rows[2][1] == "bell here"
    assert rows[3] == ("not a number", None)  # a numeric column keeps what is not a number as text
    assert rows[4] == (-12.5, None)
    assert sheet.max_row == 5


@pytest.mark.parametrize("name", ["", "x" * 32, "a/b", "a[1]"])
def test_xlsx_refuses_a_sheet_name_excel_refuses(tmp_path, name):
    with pytest.raises(ValueError, match="sheet name"):
        xlsx.write(tmp_path / "t.xlsx", [(name, [["a"]], [False])])

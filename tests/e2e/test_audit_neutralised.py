"""What a party writes reaches an auditor's spreadsheet and browser as text,
never as something that runs.

CSV: a cell starting with =, +, -, @, a tab or a carriage return is a
formula to a spreadsheet (OWASP "CSV injection"); it is written with a
single quote before it, in the audit CSV files and in `ledger whereabouts|alerts
-o csv` alike (one rule: projections.audit.csv_cell).  A number in a number column is left a number,
negative ones included (over-accounting shows as a negative unaccounted
quantity).  The workbook holds text as inline strings, never formulas.
HTML: every control character is shown as its code (\\x1b), never raw.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path

from builders import consumed, exported, payload, received, write_jsonl
from openpyxl import load_workbook

from projections.audit import BALANCE_COLUMNS, AuditData, write_csv, write_html

HYPERLINK = '=HYPERLINK("http://evil.example/x","click")'
ITEM = {"id": "HF-UHP", "name": HYPERLINK, "classification": "+AG 1C350.25"}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def record_a_formula_laden_lot(ledger, tmp_path: Path) -> None:
    """A lot whose item and end use would each start a formula in a spreadsheet."""
    reports = write_jsonl(
        tmp_path / "reports.jsonl",
        payload(exported("L1", "100", item=ITEM)),
        payload(received("L1", "100")),
        payload(consumed("L1", "70", end_use="@SUM(A1:A9)")),
    )
    assert ledger("ingest", reports).returncode == 0


def test_formulas_in_reports_reach_the_csv_as_text_and_negative_quantities_as_numbers(ledger, tmp_path):
    record_a_formula_laden_lot(ledger, tmp_path)
    out = tmp_path / "audit"
    result = ledger("audit", "--trace", "TR-1", "--out", str(out))
    assert result.returncode == 0, result.stderr

    balance = read_csv(out / "balances.csv")[0]
    assert balance["item_name"] == "'" + HYPERLINK
    assert balance["classification"] == "'+AG 1C350.25"
    events = {row["type"]: row for row in read_csv(out / "events.csv")}
    assert events["consumed"]["detail"] == "'@SUM(A1:A9)"
    assert events["consumed"]["amount"] == "70"
    # No cell of any CSV starts a formula unless it is a number in a number column.
    for path in out.glob("*.csv"):
        for row in read_csv(path):
            for column, cell in row.items():
                if cell[:1] in ("=", "+", "@", "\t", "\r"):
                    raise AssertionError(f"{path.name} {column}: {cell!r}")
                if cell.startswith("-"):
                    assert column in ("unaccounted", "amount", "quantity", "on_hand"), (path.name, column, cell)
                    float(cell)

    # The workbook: the item name is a text cell, not a formula.
    book = load_workbook(out / "audit.xlsx")
    names = [row[0].value for row in book["balances"].iter_rows(min_row=2)
             for cell in row if cell.value == HYPERLINK]
    assert names, "the item name is kept as it was written"
    assert all(cell.data_type == "s" for row in book["balances"].iter_rows() for cell in row
               if cell.value == HYPERLINK)


def test_a_negative_number_in_a_number_column_stays_a_number_and_in_a_text_column_is_text(tmp_path):
    row = dict.fromkeys(BALANCE_COLUMNS, "")
    row.update(trace_id="TR-1", lot_id="-L1", item_name="-30", on_hand="-30", unaccounted="-0.5", shipped="-")
    data = AuditData(selection="trace TR-1", generated_at=datetime(2020, 1, 1, tzinfo=timezone.utc),
                     trace_ids=["TR-1"], balances=[row])
    write_csv(data, tmp_path)
    written = read_csv(tmp_path / "balances.csv")[0]
    assert (written["on_hand"], written["unaccounted"]) == ("-30", "-0.5")  # numbers, as written
    assert (written["lot_id"], written["item_name"]) == ("'-L1", "'-30")  # text columns: text
    assert written["shipped"] == "'-"  # a number column holding no number: text


def test_control_characters_never_reach_report_html_raw(tmp_path):
    text = "etching\x1b[31m red\x07 bell\x00 nul\x9b csi"
    data = AuditData(
        selection="trace TR-1", generated_at=datetime(2020, 1, 1, tzinfo=timezone.utc), trace_ids=["TR-1"],
        events=[{"event_id": "e\x071", "type": "consumed", "detail": text, "trace_id": "TR-1"}],
    )
    page = write_html(data, tmp_path / "report.html").read_text(encoding="utf-8")
    assert not any(ord(ch) < 0x20 and ch not in "\n" or 0x7F <= ord(ch) <= 0x9F for ch in page)
    assert ("etching<span class='ctl'>\\x1b</span>[31m red<span class='ctl'>\\x07</span> bell"
            "<span class='ctl'>\\x00</span> nul<span class='ctl'>\\x9b</span> csi") in page
    assert "id='ev-e\\x071'" in page  # in an attribute: the code, without markup


def test_formulas_reach_the_cli_csv_as_text_by_the_same_rule(ledger, tmp_path):
    """`ledger whereabouts|alerts -o csv` goes to a spreadsheet too: the same rule as the audit CSV."""
    record_a_formula_laden_lot(ledger, tmp_path)
    whereabouts = ledger("whereabouts", "-o", "csv")
    assert whereabouts.returncode == 0, whereabouts.stderr
    [lot] = list(csv.DictReader(io.StringIO(whereabouts.stdout)))
    assert (lot["item_name"], lot["classification"]) == ("'" + HYPERLINK, "'+AG 1C350.25")
    assert (lot["on_hand"], lot["unaccounted"]) == ("30", "30")
    alerts = ledger("alerts", "-o", "csv")
    assert alerts.returncode == 0, alerts.stderr
    for printed in (whereabouts.stdout, alerts.stdout):
        for row in csv.DictReader(io.StringIO(printed)):
            for column, cell in row.items():
                assert cell[:1] not in ("=", "+", "@", "-", "\t", "\r"), (column, cell)
    # --json is for programs: it keeps the text exactly as reported.
    [shown] = json.loads(ledger("whereabouts", "--json").stdout)["lots"]
    assert shown["item_name"] == HYPERLINK


def test_a_negative_quantity_printed_as_cli_csv_stays_a_number_and_negative_text_is_text():
    from consumers.cli.common import print_csv

    row = {"lot_id": "-L1", "on_hand": "-30", "unaccounted": "-0.5", "item_name": "-30", "event_ids": ["-e1", "e2"]}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_csv([row])
    [written] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert written == {"lot_id": "'-L1", "on_hand": "-30", "unaccounted": "-0.5", "item_name": "'-30",
                       "event_ids": "'-e1 e2"}

"""`ledger audit`: the export opens, and every figure in it is checked against
`ledger whereabouts --json`, the reports in the story, and the alerts."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from builders import write_jsonl

STORY = Path(__file__).resolve().parents[2] / "examples" / "story-2019.jsonl"


def story(trace_id: str) -> list[dict]:
    reports = [json.loads(line) for line in STORY.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in reports if r.get("trace_id") == trace_id]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_sheet(book, name: str) -> list[dict]:
    rows = list(book[name].iter_rows(values_only=True))
    return [dict(zip(rows[0], row)) for row in rows[1:]]


def as_text(value) -> str:
    """A cell as the text the JSON uses: canonical decimals, UTC times ('' for empty).

    A date-time cell holds the instant in UTC to the millisecond (a
    spreadsheet's precision); the ledger's reports here carry whole seconds."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, (int, float)):
        text = format(Decimal(str(value)).normalize(), "f")
        return text
    return str(value)


def test_audit_of_the_demo_trace_opens_and_matches_whereabouts(ledger, tmp_path):
    assert ledger("demo").returncode == 0
    out = tmp_path / "audit"
    result = ledger("audit", "--trace", "TR-HF-2019-0002", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["selection"], summary["traces"], summary["lots"]) == ("trace TR-HF-2019-0002", 1, 2)

    where = json.loads(ledger("whereabouts", "TR-HF-2019-0002", "--json").stdout)["lots"]
    expected = {lot["lot_id"]: {k: "" if v is None else str(v) for k, v in lot.items()} for lot in where}

    # balances.csv is `ledger whereabouts --json`, column for column, figure for figure.
    balances = {row["lot_id"]: row for row in read_csv(out / "balances.csv")}
    assert balances == expected
    assert balances["HF-0002-R1"]["in_transit"] == "39530"  # 39,650 kg declared, 120 kg seen

    # The workbook holds the same figures as numbers.
    book = load_workbook(out / "audit.xlsx", read_only=True)
    assert book.sheetnames == ["about", "events", "balances", "totals", "alerts", "alert_history", "licenses", "columns"]
    for row in read_sheet(book, "balances"):
        assert {k: as_text(v) for k, v in row.items()} == expected[row["lot_id"]]

    # Every report of the trace is listed once, in effect, with its amount as reported.
    reports = {r["event_id"]: r for r in story("TR-HF-2019-0002")}
    events = read_csv(out / "events.csv")
    assert sorted(e["event_id"] for e in events) == sorted(reports)
    for event in events:
        sent = reports[event["event_id"]]
        assert (event["type"], event["reporter"], event["status"]) == (sent["type"], sent["reporter"], "in effect")
        assert (event["amount"], event["unit"]) == (sent["quantity"]["amount"], sent["quantity"]["unit"])
    assert [as_text(e["amount"]) for e in read_sheet(book, "events")] == [e["amount"] for e in events]

    # The totals balance: 40 t shipped = 39.53 t in transit + 0.35 t consumed + 0.12 t destroyed.
    [totals] = read_csv(out / "totals.csv")
    assert (totals["unit"], totals["shipped"], totals["in_transit"], totals["consumed"], totals["lost"]) == (
        "t", "40", "39.53", "0.35", "0.12")
    assert Decimal(totals["in_transit"]) + Decimal(totals["consumed"]) + Decimal(totals["lost"]) + Decimal(
        totals["on_hand"]) == Decimal(totals["shipped"])
    assert totals["balance_check"] == "balances"

    # The open alerts are those `ledger alerts` shows, and cite only listed reports.
    alerts = read_csv(out / "alerts.csv")
    shown = json.loads(ledger("alerts", "--trace", "TR-HF-2019-0002", "--json").stdout)["alerts"]
    assert sorted((a["kind"], a["lot_id"], a["quantity"]) for a in alerts) == sorted(
        (a["kind"], a["lot_id"], a["quantity"]) for a in shown)
    assert ("ship_back_exemption", "HF-0002-R1", "39650") in {(a["kind"], a["lot_id"], a["quantity"]) for a in alerts}
    for alert in alerts:
        assert set(alert["event_ids"].split()) <= set(reports)

    # The license the export cites is in the export, as granted.
    [license_row] = read_csv(out / "licenses.csv")
    assert (license_row["license_id"], license_row["kind"], license_row["destinations"]) == (
        "JP-BULK-2017-0031", "general_bulk", "KR TW")

    # The HTML report a person reads: the alerts, the lineage and the reports, each cited by id.
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "Open alerts (2)" in report and "return_unconfirmed" in report and "ship_back_exemption" in report
    assert "HF-0002  export  JP-FLUORO (JP) -&gt; KR-TRADE (KR)" in report
    assert "└─ HF-0002-R1  ship-back  KR-TRADE (KR) -&gt; JP-FLUORO (JP)" in report
    for event_id in reports:
        assert f"id='ev-{event_id}'" in report
        assert f"href='#ev-{event_id}'" in report or event_id not in {
            i for a in alerts for i in a["event_ids"].split()}


def test_audit_by_party_and_by_period_select_the_traces_concerned(ledger, tmp_path):
    assert ledger("demo").returncode == 0
    by_party = json.loads(ledger("audit", "--party", "KR-SEMI", "--out", str(tmp_path / "p"), "--format", "csv",
                                 "--json").stdout)
    assert by_party["traces"] == 2  # HF-0001 and the photoresist
    assert {r["trace_id"] for r in read_csv(tmp_path / "p" / "balances.csv")} == {"TR-HF-2019-0001",
                                                                                 "TR-PR-2019-0003"}
    assert not (tmp_path / "p" / "audit.xlsx").exists()
    # The photoresist trace lists both premise deviations, citing the export and the re-exports.
    alerts = read_csv(tmp_path / "p" / "alerts.csv")
    deviation = {a["lot_id"]: a["event_ids"].split() for a in alerts if a["kind"] == "premise_deviation"}
    assert deviation["PR-0003-XA"] == ["fluoro-2019-0801-011", "semi-rex-2019-0901-013", "meti-lic-2019-0002"]

    april = ledger("audit", "--period", "2019-04", "--out", str(tmp_path / "q"), "--format", "xlsx", "--json")
    assert json.loads(april.stdout)["traces"] == 1  # the ship-back of 2019-04-10
    book = load_workbook(tmp_path / "q" / "audit.xlsx", read_only=True)
    assert {r["lot_id"] for r in read_sheet(book, "balances")} == {"HF-0002", "HF-0002-R1"}

    nothing = ledger("audit", "--period", "2031", "--out", str(tmp_path / "r"))
    assert nothing.returncode == 1 and "no lot was shipped in 2031" in nothing.stderr


def test_retracted_and_corrected_reports_stay_in_the_audit_with_their_status(ledger, tmp_path):
    base = {"occurred_at": "2019-07-15T10:00:00+09:00", "trace_id": "TR-FIX", "lot_id": "FIX-1"}
    reports = [
        {**base, "type": "exported", "event_id": "x-exp", "occurred_at": "2019-07-10T10:00:00+09:00",
         "reporter": "JP-FLUORO", "exporter": {"id": "JP-FLUORO", "country": "JP"},
         "consignee": {"id": "KR-SEMI", "country": "KR"}, "item": {"id": "HF-UHP", "classification": "AG"},
         "quantity": {"amount": "100", "unit": "kg"}},
        {**base, "type": "received", "event_id": "x-rcv", "reporter": "KR-SEMI", "quantity": {"amount": "10", "unit": "kg"}},
        {**base, "type": "corrected", "event_id": "x-fix", "occurred_at": "2019-07-16T10:00:00+09:00",
         "reporter": "KR-SEMI", "corrected_event_id": "x-rcv", "quantity": {"amount": "100", "unit": "kg"},
         "reason": "a zero was lost"},
        {**base, "type": "consumed", "event_id": "x-use", "reporter": "KR-SEMI", "end_use": "etching",
         "quantity": {"amount": "5", "unit": "kg"}},
        {**base, "type": "retracted", "event_id": "x-ret", "occurred_at": "2019-07-17T10:00:00+09:00",
         "reporter": "KR-SEMI", "retracted_event_id": "x-use", "reason": "entered twice"},
    ]
    assert ledger("ingest", write_jsonl(tmp_path / "fix.jsonl", *reports)).returncode == 0
    assert ledger("audit", "--trace", "TR-FIX", "--out", str(tmp_path / "a"), "--format", "csv").returncode == 0
    status = {e["event_id"]: e["status"] for e in read_csv(tmp_path / "a" / "events.csv")}
    assert status == {
        "x-exp": "in effect",
        "x-rcv": "corrected by x-fix to 100 kg",
        "x-fix": "in effect",
        "x-use": "retracted by x-ret",
        "x-ret": "in effect",
    }
    [lot] = read_csv(tmp_path / "a" / "balances.csv")
    assert (lot["received"], lot["consumed"], lot["on_hand"]) == ("100", "0", "100")


def test_the_workbook_is_ready_for_an_auditor_header_filter_widths_utc_times_and_a_column_guide(ledger, tmp_path):
    assert ledger("demo").returncode == 0
    out = tmp_path / "audit"
    assert ledger("audit", "--trace", "TR-PR-2019-0003", "--out", str(out), "--format", "xlsx").returncode == 0
    book = load_workbook(out / "audit.xlsx")  # not read-only: styles, panes and widths are read too
    for name in ("events", "balances", "totals", "alerts", "licenses"):
        sheet = book[name]
        header = [c.value for c in sheet[1]]
        assert sheet.freeze_panes == "A2", name  # the header stays in view
        assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, len(header)).column_letter}{sheet.max_row}", name
        assert all(c.font.b for c in sheet[1]), name
        for column, title in enumerate(header, start=1):
            letter = sheet.cell(1, column).column_letter
            longest = max(len(str(sheet.cell(r, column).value or "")) for r in range(1, sheet.max_row + 1))
            width = sheet.column_dimensions[letter].width
            # Fits its longest cell, except free text past the cap, which wraps.
            assert width >= min(longest, 58) or sheet.cell(1, column).value.endswith("_at"), (name, title)
    # Times are date-time cells in UTC: the export reported at 10:00+09:00 reads 01:00.
    events = read_sheet(book, "events")
    export = next(e for e in events if e["event_id"] == "fluoro-2019-0801-011")
    assert export["occurred_at"] == datetime(2019, 8, 1, 1, 0)
    assert book["events"]["E2"].number_format == "yyyy-mm-dd hh:mm:ss"
    # A sheet says what every column of every sheet means.
    guide = read_sheet(book, "columns")
    explained = {(g["sheet"], g["column"]) for g in guide if g["meaning"]}
    for name in ("events", "balances", "totals", "alerts", "licenses"):
        for title in (c.value for c in book[name][1]):
            assert (name, title) in explained, (name, title)


@pytest.mark.parametrize("selection", [("--trace", "TR-PR-2019-0003"), ("--lot", "PR-0003-XA")],
                         ids=["a trace", "one re-exported lot"])
def test_every_event_id_an_alert_cites_in_the_html_report_links_to_its_row(ledger, tmp_path, selection):
    import re

    assert ledger("demo").returncode == 0
    out = tmp_path / "audit"
    assert ledger("audit", *selection, "--out", str(out), "--format", "html,csv").returncode == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    links = set(re.findall(r"href='#(ev-[^']+)'", page)) | set(re.findall(r'href="#(ev-[^"]+)"', page))
    anchors = set(re.findall(r"id='(ev-[^']+)'", page)) | set(re.findall(r'id="(ev-[^"]+)"', page))
    assert links and "ev-meti-lic-2019-0002" in links  # the license an alert cites...
    assert links <= anchors  # ...and every cited report has a row to land on
    # The CSV files hold them too: the export a premise deviation cites, and the
    # license it is judged against, which the material left Japan under.
    cited = {e for a in csv.DictReader((out / "alerts.csv").open(encoding="utf-8")) for e in a["event_ids"].split()}
    listed = {e["event_id"] for e in csv.DictReader((out / "events.csv").open(encoding="utf-8"))}
    licenses = {row["event_id"]: row["license_id"] for row in csv.DictReader((out / "licenses.csv").open(encoding="utf-8"))}
    assert licenses["meti-lic-2019-0002"] == "JP-IND-2019-0002"
    assert cited <= listed | set(licenses)
    # A lot that is not a trace's first export has no per-trace totals, and the page says why.
    assert ("this selection holds no trace's first export" in page) == (selection[0] == "--lot")


def test_the_export_names_the_software_and_the_deadlines_it_judged_by(ledger, tmp_path):
    assert ledger("demo").returncode == 0
    out = tmp_path / "audit"
    assert ledger("audit", "--trace", "TR-HF-2019-0001", "--out", str(out), "--format", "xlsx,html").returncode == 0
    version = ledger("--version").stdout.split()[-1]
    about = {row["field"]: row["value"] for row in read_sheet(load_workbook(out / "audit.xlsx"), "about")}
    assert about["software"] == f"traceability-ledger {version}"
    assert about["policy.end_use_reporting_days"] == "90"  # the demo's policy: 90 days to account for a receipt
    page = (out / "report.html").read_text(encoding="utf-8")
    assert f"Made by traceability-ledger {version}" in page and "end use reporting days 90" in page


def test_an_audit_selects_by_item_alone_or_within_a_period(ledger, tmp_path):
    assert ledger("demo").returncode == 0

    def traces_of(*selection: str) -> list[str]:
        out = tmp_path / "-".join(selection).replace(" ", "")
        result = ledger("audit", *selection, "--out", str(out), "--format", "csv")
        assert result.returncode == 0, result.stderr
        return sorted({row["trace_id"] for row in read_csv(out / "balances.csv")})

    assert traces_of("--item", "EUV-PR") == ["TR-PR-2019-0003"]
    hf_2019 = traces_of("--period", "2019", "--item", "HF-UHP")
    assert "TR-PR-2019-0003" not in hf_2019 and "TR-HF-2019-0001" in hf_2019
    assert set(hf_2019) < set(traces_of("--period", "2019"))

    nothing = ledger("audit", "--out", str(tmp_path / "none"))
    assert nothing.returncode == 2 and "select what to audit: --trace, --lot, --party, --period, --from/--to or --item" in nothing.stderr
    unknown = ledger("audit", "--item", "NO-SUCH-ITEM", "--out", str(tmp_path / "unknown"))
    assert unknown.returncode == 1 and "no lot matches item NO-SUCH-ITEM" in unknown.stderr


def test_an_audit_of_a_lot_a_date_range_and_an_earlier_date_with_the_alert_history(ledger, tmp_path):
    assert ledger("demo").returncode == 0

    def export(name: str, *selection: str) -> Path:
        out = tmp_path / name
        result = ledger("audit", *selection, "--out", str(out), "--format", "csv")
        assert result.returncode == 0, result.stderr
        return out

    # A lot: it and what was re-exported from it (none here), not its sibling.
    xa = export("xa", "--lot", "PR-0003-XA")
    assert [r["lot_id"] for r in read_csv(xa / "balances.csv")] == ["PR-0003-XA"]
    assert {r["lot_id"] for r in read_csv(xa / "alerts.csv")} == {"PR-0003-XA"}
    # Its reports, and the one report of another lot its alert cites: the export it was re-exported from.
    events = read_csv(xa / "events.csv")
    assert {r["event_id"] for r in events if (r["child_lot_id"] or r["lot_id"]) != "PR-0003-XA"} == \
        {"fluoro-2019-0801-011"}
    assert {r["child_lot_id"] or r["lot_id"] for r in events} == {"PR-0003-XA", "PR-0003"}

    # A free date range of shipments (UTC days, both ends included).
    q3 = export("q3", "--from", "2019-07-01", "--to", "2019-09-30")
    shipped = {r["lot_id"]: r["shipped_at"] for r in read_csv(q3 / "balances.csv")}
    assert "HF-0001" in shipped and "HF-0004" not in shipped  # HF-0004 left in May

    # As of a date before the 90 days ran out, the 30 units stood unaccounted by no alert yet;
    # the history lists the alert's raising only in the export of now.
    now = export("now", "--trace", "TR-HF-2019-0001")
    before = export("before", "--trace", "TR-HF-2019-0001", "--as-of", "2019-09-01")
    assert [r["kind"] for r in read_csv(now / "alerts.csv")] == ["unaccounted"]
    assert read_csv(before / "alerts.csv") == []
    history = read_csv(now / "alert_history.csv")
    assert [(h["transition"], h["kind"], h["due_at"][:10]) for h in history] == [
        ("raised", "unaccounted", "2019-10-13")]
    assert read_csv(before / "alert_history.csv") == []

    # Every format names the as-of time, the software and the deadlines: about.csv too.
    about = {r["field"]: r["value"] for r in read_csv(before / "about.csv")}
    assert about["as_of"].startswith("2019-09-01T23:59:59")
    assert about["software"].startswith("traceability-ledger ") and about["policy.end_use_reporting_days"] == "90"

    both = ledger("audit", "--period", "2019", "--from", "2019-07-01", "--out", str(tmp_path / "x"))
    assert both.returncode == 2 and "--period 2019 and --from/--to both select shipment dates" in both.stderr
    trace = ledger("audit", "--lot", "TR-HF-2019-0001", "--out", str(tmp_path / "x"))
    assert trace.returncode == 1 and "is a trace, not a lot: select it with --trace TR-HF-2019-0001" in trace.stderr


def test_an_audit_into_a_directory_an_earlier_audit_used_leaves_only_its_own_files(ledger, tmp_path):
    assert ledger("demo").returncode == 0
    out = tmp_path / "audit"
    assert ledger("audit", "--trace", "TR-PR-2019-0003", "--out", str(out)).returncode == 0
    assert (out / "report.html").exists() and (out / "audit.xlsx").exists()

    # The next audit, of another trace and only as CSV, into the same (default-like) directory:
    result = ledger("audit", "--trace", "TR-HF-2019-0001", "--out", str(out), "--format", "csv")
    assert result.returncode == 0, result.stderr
    # ... says what it removed, and no file of the first selection is left to be mistaken for the second's.
    assert f"removed what an earlier audit left in {out}/: audit.xlsx, report.html" in result.stderr
    assert not (out / "report.html").exists() and not (out / "audit.xlsx").exists()
    about = {row["field"]: row["value"] for row in csv.DictReader((out / "about.csv").open(encoding="utf-8"))}
    assert about["selection"] == "trace TR-HF-2019-0001"
    assert {e["trace_id"] for e in csv.DictReader((out / "events.csv").open(encoding="utf-8"))} == {"TR-HF-2019-0001"}


def test_an_audit_never_removes_a_file_it_did_not_write(ledger, tmp_path):
    # Someone's own notes, under names an audit also uses, in the directory they audit into.
    assert ledger("demo").returncode == 0
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.html").write_text("<html>my notes</html>")
    (out / "totals.csv").write_text("my,own\n")
    result = ledger("audit", "--trace", "TR-HF-2019-0001", "--out", str(out), "--format", "xlsx")
    assert result.returncode == 0, result.stderr
    assert "removed" not in result.stderr
    assert (out / "report.html").read_text() == "<html>my notes</html>"
    assert (out / "totals.csv").read_text() == "my,own\n"


def test_an_audit_that_selects_nothing_leaves_no_empty_directory_behind(ledger, tmp_path):
    assert ledger("demo").returncode == 0
    out = tmp_path / "audit-nope"
    result = ledger("audit", "--trace", "TR-NO-SUCH", "--out", str(out))
    assert result.returncode == 1 and "TR-NO-SUCH" in result.stderr
    assert not out.exists()
    # A directory that was there before stays, with what it held.
    kept = tmp_path / "kept"
    kept.mkdir()
    assert ledger("audit", "--trace", "TR-NO-SUCH", "--out", str(kept)).returncode == 1
    assert kept.is_dir()

"""Issue 14, as the operator runs it: the reports that once stopped or
silenced the ledger are refused by line, the rest is recorded and projected,
and the exit status tells "some lines rejected" from "the ledger failed"."""

from __future__ import annotations

import json

EXIT_OK, EXIT_ERROR, EXIT_REJECTED = 0, 1, 3

# Passed validation, then overflowed converting to UTC: every later ingest,
# project and replay exited 1 and nothing after it was projected.
OVERFLOWING = ('{"type":"received","event_id":"q-rcv-1","occurred_at":"0001-01-01T00:00:00+14:00",'
               '"reporter":"KR-B","trace_id":"TR-Q1","lot_id":"Q1","quantity":{"amount":"100","unit":"kg"}}')
# Stored as "999-07-10...", which sorts after every later date: its
# license_unknown alert was never due.
YEAR_999_EXPORT = json.dumps({
    "type": "exported", "event_id": "x-999", "occurred_at": "0999-07-10T10:00:00+09:00", "reporter": "JP-X",
    "trace_id": "TR-999", "lot_id": "L999", "exporter": {"id": "JP-X", "country": "JP"},
    "consignee": {"id": "KR-Y", "country": "KR"}, "item": {"id": "HF", "classification": "AG 1C350.25"},
    "quantity": {"amount": "10", "unit": "kg"}, "license_id": "NO-SUCH-LICENSE"})
GOOD_EXPORT = json.dumps({
    "type": "exported", "event_id": "x-2019", "occurred_at": "2019-07-10T10:00:00+09:00", "reporter": "JP-X",
    "trace_id": "TR-2019", "lot_id": "L2019", "exporter": {"id": "JP-X", "country": "JP"},
    "consignee": {"id": "KR-Y", "country": "KR"}, "item": {"id": "HF", "classification": "AG 1C350.25"},
    "quantity": {"amount": "10", "unit": "kg"}, "license_id": "NO-SUCH-LICENSE"})


def test_the_reports_that_stopped_or_silenced_the_ledger_are_refused_by_line_and_the_rest_goes_on(ledger, tmp_path):
    reports = tmp_path / "reports.jsonl"
    deep = '{"type": "received", "x": ' + '[' * 1000 + ']' * 1000 + '}'
    reports.write_text("\n".join([OVERFLOWING, YEAR_999_EXPORT, deep, GOOD_EXPORT]) + "\n")

    result = ledger("ingest", str(reports))

    assert result.returncode == EXIT_REJECTED, result.stderr
    assert "4 lines: 1 recorded, 0 already recorded (no-op), 0 conflicting, 3 rejected" in result.stdout
    assert ("rejected line 1: field 'occurred_at' value \"0001-01-01T00:00:00+14:00\": "
            "must be in the years 1900 to 2199 (UTC)") in result.stderr
    assert ("rejected line 2: field 'occurred_at' value \"0999-07-10T10:00:00+09:00\": "
            "must be in the years 1900 to 2199 (UTC)") in result.stderr
    assert "rejected line 3: field 'x' value " in result.stderr
    assert "Traceback" not in result.stderr
    # The good export is projected, and its unknown license raises its alert.
    alerts = ledger("alerts", "--json")
    assert alerts.returncode == EXIT_OK, alerts.stderr
    assert {(a["trace_id"], a["kind"]) for a in json.loads(alerts.stdout)["alerts"]} >= {("TR-2019", "license_unknown")}
    assert ledger("project").returncode == EXIT_OK
    assert ledger("replay").returncode == EXIT_OK


def test_a_ledger_that_fails_exits_1_even_when_lines_were_also_rejected(ledger, tmp_path):
    reports = tmp_path / "reports.jsonl"
    reports.write_text("\n".join([OVERFLOWING, GOOD_EXPORT]) + "\n")
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("not a projection store\n")

    result = ledger("ingest", str(reports), "--store", f"sqlite:///{not_a_database}")

    assert result.returncode == EXIT_ERROR
    assert "Traceback" not in result.stderr


def test_a_log_holding_the_overflowing_report_is_projected_and_replayed_with_the_trace_flagged(ledger):
    # The log an older ledger wrote, with the report it let through: every
    # later project and replay once exited 1 with OverflowError.
    from pathlib import Path

    from consumers.log.embedded import EmbeddedLog
    from ledger.events import stored_body_digest

    story = Path(__file__).resolve().parents[2] / "examples" / "story-2019.jsonl"
    assert ledger("ingest", str(story)).returncode == EXIT_OK
    stamped = OVERFLOWING[:-1] + ',"recorded_at":"2019-12-01T00:00:00+00:00"}'
    log = EmbeddedLog(ledger.log_db)
    # With the digest that ledger stored beside it: the record is intact (so
    # `replay` and `verify` do not call it damage), only refused now.
    log.append([("q-rcv-1", stored_body_digest(json.loads(stamped)), "TR-Q1", stamped.encode())])
    log.close()

    projected = ledger("project")
    assert projected.returncode == EXIT_OK, projected.stderr
    assert "1 dead letter" in projected.stdout
    alerts = json.loads(ledger("alerts", "--json", "--trace", "TR-Q1").stdout)["alerts"]
    assert [(a["kind"], a["severity"]) for a in alerts] == [("quarantined", "high")]
    assert "field 'occurred_at' value \"0001-01-01T00:00:00+14:00\"" in alerts[0]["message"]
    replayed = ledger("replay")
    assert replayed.returncode == EXIT_OK and "replay: identical" in replayed.stdout

"""Bad input, as a party's system sends it: refused line by line, never lost.

examples/bad-reports.jsonl is the documented sample (examples/bad-reports.md):
three good reports about one lot, and between them one line of each kind the
ledger refuses.  This test keeps the sample honest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bad-reports.jsonl"
EXIT_REJECTED = 3


def ledger_exe() -> Path:
    return Path(sys.executable).parent / "ledger"

# line -> (field, value as shown, what the message says): the error messages
# are a contract with integrators, who grep them.
# The value is its JSON text: a line that is not JSON, as a JSON string; one
# that is JSON but no object, as it is.
EXPECTED_REJECTS = {
    2: ("(line)", '"this line is not JSON at all"', "not JSON"),
    3: ("(line)", '["a report is one JSON object per line, not a list"]', "must be a JSON object"),
    4: ("lot_id", "(missing)", "Field required"),
    5: ("quantity.amount", '"-5"', "must be greater than 0"),
    6: ("quantity.amount", '"thirty"', "must be a plain decimal"),
    7: ("quantity.amount", "30.5", "JSON floats are inexact"),
    8: ("quantity.unit", '"barrels"', "unknown unit"),
    9: ("occurred_at", '"2019-07-15T14:00:00"', "timezone"),
    10: ("type", '"teleported"', "does not match any of the expected tags"),
}
GOOD_LINES = (1, 11, 12)


def test_good_lines_are_recorded_and_each_bad_line_is_named(ledger):
    result = ledger("ingest", str(SAMPLE))

    # Exit status 3: some input was rejected, the rest was recorded.
    assert result.returncode == EXIT_REJECTED, result.stderr
    assert f"{SAMPLE}: 12 lines: 3 recorded, 0 already recorded (no-op), 0 conflicting, 9 rejected" \
        in result.stdout
    assert ledger.event_rows() == (len(GOOD_LINES), len(GOOD_LINES))

    # Each refused line is on stderr with its number, the field and the value.
    reported = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    assert len(reported) == len(EXPECTED_REJECTS)
    for text, (number, (field, value, message)) in zip(reported, sorted(EXPECTED_REJECTS.items())):
        assert text.startswith(f"rejected line {number}: field '{field}' value {value}: "), text
        assert message in text

    # The good reports were projected: the lot is on the books.
    lots = json.loads(ledger("whereabouts", "TR-BAD-EXAMPLE", "--json").stdout)["lots"]
    assert [(lot["lot_id"], lot["received"], lot["consumed"], lot["on_hand"]) for lot in lots] == \
        [("BAD-0001", "100", "70", "30")]


def test_rejected_lines_are_kept_for_the_record(ledger, tables):
    ledger("ingest", str(SAMPLE))

    kept = json.loads(ledger("rejects", "--json").stdout)
    assert [r["line"] for r in kept] == sorted(EXPECTED_REJECTS)
    raw_lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    for reject in kept:
        field, value, message = EXPECTED_REJECTS[reject["line"]]
        assert set(reject) == {"source", "line", "raw", "problems", "rejected_at"}
        assert reject["source"] == str(SAMPLE)
        assert reject["raw"] == raw_lines[reject["line"] - 1]  # exactly what was sent
        assert reject["problems"].startswith(f"field '{field}' value {value}: ")
        assert message in reject["problems"]

    shown = tables(ledger("rejects").stdout)[0]
    assert [row["LINE"] for row in shown] == [str(n) for n in sorted(EXPECTED_REJECTS)]
    assert all(row["SOURCE"] == str(SAMPLE) for row in shown)
    assert "field 'quantity.unit' value \"barrels\"" in shown[6]["PROBLEMS"]


def test_re_running_the_file_records_nothing_twice(ledger):
    ledger("ingest", str(SAMPLE))
    first_kept = ledger("rejects", "--json").stdout

    again = ledger("ingest", str(SAMPLE), "--json")
    assert again.returncode == EXIT_REJECTED
    summary = json.loads(again.stdout)
    # The good reports are already in the log (a no-op); the bad ones are
    # refused again, and the rejects table holds each of them once.
    assert (summary["lines"], summary["recorded"], summary["duplicates"], summary["conflicts"]) == (12, 0, 3, 0)
    assert [r["line"] for r in summary["rejected"]] == sorted(EXPECTED_REJECTS)
    assert summary["rejected"][3]["problems"] == [
        {"field": "quantity.amount", "value": '"-5"', "message": "must be greater than 0"}
    ]
    assert ledger.event_rows() == (len(GOOD_LINES), len(GOOD_LINES))
    assert ledger("rejects", "--json").stdout == first_kept


def test_a_file_that_is_all_good_exits_0_and_keeps_no_rejects(ledger, tmp_path):
    good = tmp_path / "good.jsonl"
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    # A blank line is not a report and not an error; a byte-order mark, as
    # spreadsheet exports write, is not part of the first report.
    good.write_text("\ufeff" + "\n\n".join(lines[n - 1] for n in GOOD_LINES) + "\n", encoding="utf-8")
    result = ledger("ingest", str(good))
    assert result.returncode == 0, result.stderr
    assert "5 lines: 3 recorded, 0 already recorded (no-op), 0 conflicting, 0 rejected" in result.stdout
    assert result.stderr == ""
    assert ledger("rejects").stdout.strip() == "no rejected input"


def test_reports_can_come_on_standard_input(ledger):
    result = ledger("ingest", "-", stdin=SAMPLE.read_text(encoding="utf-8"))
    assert result.returncode == EXIT_REJECTED
    assert "<stdin>: 12 lines: 3 recorded" in result.stdout
    assert {r["source"] for r in json.loads(ledger("rejects", "--json").stdout)} == {"<stdin>"}


def test_a_file_of_nothing_but_bad_lines_is_kept_whole(ledger, tmp_path):
    # 1,200 bad lines and not one good one: every reject is kept (in batches,
    # not held until the end), stderr shows the first 50 and says how many more.
    bad_lines = 1200
    junk = tmp_path / "junk.jsonl"
    junk.write_text("".join(f'{{"type": "received", "event_id": "junk-{n}"}}\n' for n in range(bad_lines)))
    result = ledger("ingest", str(junk), "--json")
    assert result.returncode == EXIT_REJECTED
    summary = json.loads(result.stdout)
    assert (summary["lines"], summary["recorded"], summary["rejected_count"]) == (bad_lines, 0, bad_lines)
    assert len(summary["rejected"]) == 1000  # the first thousand, in the summary
    assert ledger.event_rows() == (0, 0)

    assert len(json.loads(ledger("rejects", "--json", "--limit", "0").stdout)) == bad_lines
    assert len(json.loads(ledger("rejects", "--json").stdout)) == 1000  # the default limit

    shown = ledger("ingest", str(junk))
    reported = shown.stderr.strip().splitlines()
    assert len(reported) == 51
    assert reported[-1].strip() == "... and 1150 more (see `ledger rejects`)"


def test_a_file_that_is_not_utf8_is_refused_line_by_line_not_garbled(ledger, tmp_path):
    # A Japanese exporter's name, once in UTF-8 (fine) and once in Shift_JIS:
    # silently replacing the bytes would record a name nobody wrote.
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    export = json.loads(lines[0])
    export["exporter"]["name"] = "フルオロ化学"
    in_utf8 = json.dumps(export, ensure_ascii=False)
    export["event_id"] = "example-exp-sjis"
    in_sjis = json.dumps(export, ensure_ascii=False)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(in_utf8.encode("utf-8") + b"\n" + in_sjis.encode("shift_jis") + b"\n")

    for args, stdin in ((("ingest", str(mixed)), None), (("ingest", "-"), mixed.read_bytes())):
        result = subprocess.run([str(ledger_exe()), *args], input=stdin, capture_output=True,
                                env=ledger.env, timeout=60)
        assert result.returncode == EXIT_REJECTED, result.stderr
        stderr = result.stderr.decode()
        assert stderr.strip().startswith("rejected line 2: field '(line)' value (byte 0x83 at character ")
        assert "not UTF-8" in stderr

    lots = json.loads(ledger("whereabouts", "BAD-0001", "--json").stdout)["lots"]
    assert [lot["shipper"] for lot in lots] == ["JP-FLUORO"]
    # The refused line is kept as sent, its undecodable bytes shown as \xNN.
    kept = json.loads(ledger("rejects", "--json").stdout)
    assert [r["line"] for r in kept] == [2, 2]
    assert '"name": "\\x83t\\x83' in kept[0]["raw"]


def test_a_report_sent_twice_in_one_file_counts_once_and_a_changed_copy_is_a_conflict(ledger, tmp_path):
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    export, receipt, use = (lines[n - 1] for n in GOOD_LINES)
    changed = json.loads(receipt)
    changed["quantity"]["amount"] = "90"  # same event id, other content
    twice = tmp_path / "twice.jsonl"
    twice.write_text("\n".join([export, receipt, receipt, use, json.dumps(changed)]) + "\n")

    result = ledger("ingest", str(twice))
    assert result.returncode == 0, result.stderr
    assert "5 lines: 3 recorded, 1 already recorded (no-op), 1 conflicting, 0 rejected" in result.stdout
    # Both versions of the receipt are kept (nothing is edited); the conflict
    # is an alert for someone to resolve.
    assert ledger.event_rows() == (4, 3)
    alerts = json.loads(ledger("alerts", "--json", "--trace", "TR-BAD-EXAMPLE").stdout)["alerts"]
    assert "conflicting_report" in {a["kind"] for a in alerts}

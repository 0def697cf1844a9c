"""What a compliance officer sees in a terminal: tables that fit its width
without splitting a figure, severity in colour only where colour belongs,
filters, CSV for a spreadsheet, --version and shell completion."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

LEDGER = Path(sys.executable).parent / "ledger"
RUN_TIMEOUT_S = 120

ANSI = re.compile(r"\x1b\[[0-9;]*m")
FIGURES = ("39,650", "39,530", "4,050", "4,000")  # quantities of the 2019 story, as printed


def in_a_terminal(ledger, *args: str, columns: int = 120, **extra_env: str) -> str:
    """Run ``ledger ARGS`` with its output on a pseudo-terminal of ``columns`` columns."""
    controller, terminal = pty.openpty()
    env = {**ledger.env, "COLUMNS": str(columns), "TERM": "xterm", **extra_env}
    process = subprocess.Popen([str(LEDGER), *args], stdout=terminal, stderr=subprocess.PIPE, env=env)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process is done writing
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=RUN_TIMEOUT_S)
    os.close(controller)
    assert process.returncode == 0, process.stderr.read()
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_tables_fit_a_120_column_terminal_and_never_split_a_figure(ledger):
    assert ledger("demo").returncode == 0
    for command in (("alerts",), ("whereabouts",), ("alerts", "--journal")):
        shown = ANSI.sub("", in_a_terminal(ledger, *command, columns=120))
        too_wide = [line for line in shown.splitlines() if len(line) > 120]
        assert too_wide == [], command
        for figure in FIGURES:
            if figure in ledger(*command).stdout:  # what the piped output shows whole...
                assert figure in shown, (command, figure)  # ...the terminal shows whole too


def words(text: str) -> Counter[str]:
    """Every word and figure, wherever a line broke; not the tree's and rules' drawing."""
    return Counter(w for w in ANSI.sub("", text).split() if w.strip("-│├└─") != "")


def test_a_trace_fits_an_80_column_terminal_and_keeps_every_figure_whole(ledger):
    assert ledger("demo").returncode == 0
    for trace in ("TR-HF-2019-0001", "TR-HF-2019-0002", "TR-PR-2019-0003", "TR-HF-2019-0004"):
        piped = ledger("trace", trace).stdout
        shown = in_a_terminal(ledger, "trace", trace, columns=80)
        too_wide = [line for line in ANSI.sub("", shown).splitlines() if len(line) > 80]
        assert too_wide == [], trace
        # The same words and figures, only broken into more lines: no figure cut in two.
        assert words(shown) == words(piped), trace
    assert max(len(line) for line in ledger("trace", "TR-HF-2019-0002").stdout.splitlines()) > 80  # piped: whole lines
    shown = ANSI.sub("", in_a_terminal(ledger, "trace", "TR-HF-2019-0002", columns=80))
    assert "kg: shipped 39,650, in transit 39,530, received 120" in shown
    assert "39,530 kg" in shown  # the alert's quantity, in its own column


def test_the_message_wraps_under_its_column_and_keeps_every_word(ledger):
    assert ledger("demo").returncode == 0
    shown = ANSI.sub("", in_a_terminal(ledger, "alerts", "--kind", "return_unconfirmed", columns=100))
    assert "ship-back of 39650 kg to JP-FLUORO (JP): 120 kg confirmed received, 39530 kg unconfirmed" \
        in " ".join(line.strip() for line in shown.splitlines()[3:])
    assert max(len(line) for line in shown.splitlines()) <= 100


def test_severity_is_coloured_on_a_terminal_and_plain_when_piped_or_with_no_color(ledger):
    assert ledger("demo").returncode == 0
    coloured = in_a_terminal(ledger, "alerts")
    assert "\x1b[1;31mhigh" in coloured
    assert ANSI.search(in_a_terminal(ledger, "alerts", NO_COLOR="1")) is None
    assert ANSI.search(ledger("alerts").stdout) is None  # piped


def test_alerts_filter_by_severity_and_kind_and_limit_to_the_oldest(ledger):
    assert ledger("demo").returncode == 0
    every = json.loads(ledger("alerts", "--json").stdout)["alerts"]
    high = json.loads(ledger("alerts", "--severity", "high", "--json").stdout)["alerts"]
    assert high and high == [a for a in every if a["severity"] == "high"]
    deviations = json.loads(ledger("alerts", "--kind", "premise_deviation", "-o", "json").stdout)["alerts"]
    assert [a["lot_id"] for a in deviations] == sorted(a["lot_id"] for a in every if a["kind"] == "premise_deviation")
    [oldest] = json.loads(ledger("alerts", "--limit", "1", "--json").stdout)["alerts"]
    assert oldest["due_at"] == min(a["due_at"] for a in every)
    refused = ledger("alerts", "--severity", "urgent")
    assert refused.returncode == 2 and "invalid choice: 'urgent'" in refused.stderr


def test_csv_output_holds_the_same_rows_as_json(ledger):
    assert ledger("demo").returncode == 0
    lots = json.loads(ledger("whereabouts", "--json").stdout)["lots"]
    rows = list(csv.DictReader(io.StringIO(ledger("whereabouts", "-o", "csv").stdout)))
    assert rows == [{k: "" if v is None else str(v) for k, v in lot.items()} for lot in lots]
    alerts = list(csv.DictReader(io.StringIO(ledger("alerts", "-o", "csv").stdout)))
    assert [a["alert_id"] for a in alerts] == [a["alert_id"] for a in json.loads(ledger("alerts", "--json").stdout)["alerts"]]
    refused = ledger("whereabouts", "--json", "-o", "csv")
    assert refused.returncode == 2 and "--json and -o csv ask for two outputs" in refused.stderr


# Every command that has --json, and where in its JSON the rows -o csv prints are
# (None: the JSON is one summary, which -o csv prints as one row).
WITH_JSON = {
    ("ingest", "examples/story-2019.jsonl"): None,
    ("rejects",): [],
    ("replay",): None,
    ("verify",): None,
    ("parties", "list"): [],
    ("credentials", "list"): [],
    ("whereabouts",): ["lots"],
    ("alerts",): ["alerts"],
    ("alerts", "--journal"): [],
    ("flows",): ["flows"],
    ("trace", "TR-PR-2019-0003"): ["lineage"],
    ("audit", "--trace", "TR-PR-2019-0003"): None,
}


def test_every_command_with_json_takes_o_json_and_o_csv(ledger, tmp_path):
    """`-o json` is `--json`; `-o csv` prints the rows of the JSON (a summary: one row of its fields)."""
    assert ledger("demo").returncode == 0
    assert ledger("parties", "add", "--file", "examples/parties.json").returncode == 0
    assert ledger("credentials", "issue", "KR-SEMI").returncode == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "exported"}\n')
    assert ledger("ingest", str(bad)).returncode == 3
    for command, rows_at in WITH_JSON.items():
        if command[0] == "audit":
            command = (*command, "--out", str(tmp_path / "audit"))
        by_flag, by_option = ledger(*command, "--json"), ledger(*command, "-o", "json")
        assert by_flag.returncode == by_option.returncode == 0, (command, by_option.stderr)
        as_json = json.loads(by_option.stdout)
        if command[0] != "audit":  # the audit says how long it took
            assert by_option.stdout == by_flag.stdout, command
        printed = ledger(*command, "-o", "csv")
        assert printed.returncode == 0, (command, printed.stderr)
        rows = list(csv.DictReader(io.StringIO(printed.stdout)))
        if rows_at is None:
            [row] = rows
            assert {k.split(".")[0] for k in row} == set(as_json), command
            continue
        expected = as_json
        for key in rows_at:
            expected = expected[key]
        if command[0] == "trace":  # the lineage is a tree: the CSV has a row per lot in it
            def lots(nodes):
                return sum((1 + lots(n["children"]) for n in nodes), 0)
            assert len(rows) == lots(expected) == 3, command
        else:
            assert len(rows) == len(expected) > 0, command
    assert [r["lot_id"] for r in csv.DictReader(io.StringIO(ledger("trace", "PR-0003", "-o", "csv").stdout))] == [
        "PR-0003", "PR-0003-WX", "PR-0003-XA"]
    [flow] = [f for f in csv.DictReader(io.StringIO(ledger("flows", "--period", "2019", "-o", "csv").stdout))
              if (f["from"], f["to"], f["item_id"]) == ("KR", "CN", "HF-UHP")]
    assert (flow["shipped"], flow["received"], flow["gap"], flow["gap_percent"], flow["lots"]) == (
        "4050", "4000", "50", "1.2", "TR-HF-2019-0004/HF-0004")
    [issued] = list(csv.DictReader(io.StringIO(ledger("credentials", "issue", "KR-SEMI", "-o", "csv").stdout)))
    assert issued["party"] == "KR-SEMI" and issued["token"].startswith("ldg_")


def test_version_and_shell_completion(ledger):
    version = ledger("--version")
    assert version.returncode == 0 and re.fullmatch(r"ledger \d+\.\d+\.\d+\n", version.stdout)
    script = ledger("completion", "bash")
    assert script.returncode == 0
    for command in ("ingest", "whereabouts", "alerts", "audit", "completion"):
        assert command in script.stdout
    assert "--severity" in script.stdout


def test_the_exporter_of_origin_sees_the_alerts_about_its_material_marked_as_such(ledger):
    assert ledger("demo").returncode == 0
    alerts = json.loads(ledger("alerts", "--party", "JP-FLUORO", "--json").stdout)["alerts"]
    mine = {(a["lot_id"], a["kind"], a["party"]): a["about_your_material"] for a in alerts}
    # KR-SEMI re-exported JP-FLUORO's photoresist to China outside the license's premise:
    # addressed to KR-SEMI, shown to JP-FLUORO too, as about its material.
    assert mine[("PR-0003-XA", "premise_deviation", "KR-SEMI")] is True
    assert mine[("HF-0002-R1", "return_unconfirmed", "JP-FLUORO")] is False  # its own
    assert all(a["since"] <= a["due_at"] for a in alerts)
    printed = ledger("alerts", "--party", "JP-FLUORO").stdout
    assert "KR-SEMI (your material)" in printed and "SINCE (UTC)" in printed
    # The re-exporter's own view is unchanged: only what is addressed to it.
    assert {a["party"] for a in json.loads(ledger("alerts", "--party", "KR-SEMI", "--json").stdout)["alerts"]} == {
        "KR-SEMI"}


def test_since_is_when_an_alert_first_stood_not_its_latest_step(ledger, tmp_path):
    from builders import consumed, exported, payload, received, write_jsonl

    # 60 kg received on 15 July, 40 kg on 15 August, 50 kg reported used:
    # 10 kg stood unaccounted from 13 October, 50 kg from 13 November.
    reports = write_jsonl(tmp_path / "r.jsonl", *(payload(e) for e in (
        exported(), received(qty="60", at="2019-07-15"), received(qty="40", at="2019-08-15"),
        consumed(qty="50", at="2019-08-20"))))
    assert ledger("ingest", reports).returncode == 0
    [alert] = json.loads(ledger("alerts", "--kind", "unaccounted", "--json").stdout)["alerts"]
    assert (alert["quantity"], alert["since"][:10], alert["due_at"][:10]) == ("50", "2019-10-13", "2019-11-13")
    assert "2019-10-13" in ledger("alerts", "--kind", "unaccounted").stdout


def test_one_of_a_thing_is_said_in_the_singular(ledger, tmp_path):
    story = (Path(__file__).resolve().parents[2] / "examples" / "story-2019.jsonl").read_text().splitlines()
    one = tmp_path / "one.jsonl"
    one.write_text(next(line for line in story if '"type": "exported"' in line) + "\n")
    ingested = ledger("ingest", "--no-project", str(one))
    assert ingested.returncode == 0
    assert f"{one}: 1 line: 1 recorded, " in ingested.stdout
    assert ledger("project").stdout.strip() == "projected 1 record in 1 batch (0 duplicates, 0 dead letters)"
    assert ledger("replay").stdout.startswith("replayed 1 record from position 0\n")
    [lot] = json.loads(ledger("whereabouts", "--json").stdout)["lots"]
    audited = ledger("audit", "--lot", lot["lot_id"], "--format", "csv", "--out", str(tmp_path / "audit"))
    assert audited.returncode == 0, audited.stderr
    said = re.search(r": 1 report, 1 lot, (\d+) open (alerts?), (\d+) alert (transitions?) in 1 trace, written in ",
                     audited.stdout)
    assert said, audited.stdout
    for count, word in ((said[1], said[2]), (said[3], said[4])):
        assert word.endswith("s") == (count != "1"), said[0]


def test_csv_writes_true_and_false_as_json_does_and_a_header_when_there_are_no_rows(ledger):
    assert ledger("demo").returncode == 0
    rows = list(csv.DictReader(io.StringIO(ledger("alerts", "--party", "JP-FLUORO", "-o", "csv").stdout)))
    assert {r["about_your_material"] for r in rows} == {"true", "false"}
    as_json = json.loads(ledger("alerts", "--party", "JP-FLUORO", "--json").stdout)["alerts"]
    assert [r["about_your_material"] for r in rows] == [json.dumps(a["about_your_material"]) for a in as_json]

    # No rejects: the header row still says what the columns would be.
    empty = ledger("rejects", "-o", "csv")
    assert empty.returncode == 0
    assert empty.stdout == "source,line,raw,problems,rejected_at\n"


def test_a_kafka_broker_that_does_not_answer_is_one_line_saying_so(ledger):
    # Port 1 on this machine: nothing listens there.
    result = ledger("kafka", "publish-alerts", "--log", "kafka://127.0.0.1:1/ledger")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "ledger kafka: the Kafka broker at 127.0.0.1:1 did not answer: start one there, or name another in "
        "--log; to try the ledger on Kafka, `PORT=1 make kafka` starts one (docs/KAFKA.md)")

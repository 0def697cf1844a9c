"""When something is wrong, `ledger` says what in one line, and its exit
status says which kind of wrong: 1 an error, 2 a usage error.  And `--help`
tells a compliance officer and an integrator what each command does, with
examples, defaults and exit statuses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

EXIT_ERROR, EXIT_USAGE, EXIT_REJECTED = 1, 2, 3
STORY = Path(__file__).resolve().parents[2] / "examples" / "story-2019.jsonl"
OUR_COMMANDS = ("ingest", "project", "whereabouts", "alerts", "rejects", "replay", "schema", "demo", "verify")


def one_line(stderr: str) -> str:
    """The error, asserting it is a single line (no traceback, no usage dump)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture(scope="module")
def recorded(ledger_at, tmp_path_factory):  # type: ignore[no-untyped-def]
    """A ledger with the 2019 story recorded (shared: the tests only read it)."""
    ledger = ledger_at(tmp_path_factory.mktemp("story") / "home")
    assert ledger("demo").returncode == 0
    return ledger


def test_an_unknown_lot_is_one_clear_line_and_exit_1(recorded):
    result = recorded("whereabouts", "NO-SUCH-LOT")
    assert result.returncode == EXIT_ERROR
    assert result.stdout == ""
    assert one_line(result.stderr) == "ledger whereabouts: no lot or trace 'NO-SUCH-LOT' is known"

    # The same as of a date (answered by rebuilding the trace, not from the rows).
    result = recorded("whereabouts", "NO-SUCH-LOT", "--as-of", "2019-09-01")
    assert result.returncode == EXIT_ERROR
    assert one_line(result.stderr) == "ledger whereabouts: no lot or trace 'NO-SUCH-LOT' is known"


def test_a_mistyped_trace_is_not_an_all_clear(recorded):
    # "no alerts standing" for a trace nobody knows would be a false all-clear.
    result = recorded("alerts", "--trace", "TR-HF-2019-9999")
    assert result.returncode == EXIT_ERROR
    assert "no trace 'TR-HF-2019-9999' is known" in one_line(result.stderr)

    result = recorded("alerts", "--trace", "HF-0001")  # a lot id where a trace id belongs
    assert result.returncode == EXIT_ERROR
    assert one_line(result.stderr) == "ledger alerts: 'HF-0001' is a lot, not a trace; its trace is TR-HF-2019-0001"

    assert recorded("alerts", "--trace", "TR-HF-2019-0001").returncode == 0


@pytest.mark.parametrize("command", ["whereabouts", "alerts"])
def test_a_date_that_cannot_be_read_is_a_usage_error_naming_it(recorded, command):
    result = recorded(command, "--as-of", "yesterday")
    assert result.returncode == EXIT_USAGE
    assert result.stdout == ""
    *usage, error = result.stderr.strip().splitlines()
    assert usage[0].startswith(f"usage: ledger {command}")
    assert error.startswith(f"ledger {command}: error: argument --as-of: 'yesterday' is not a date (2019-10-01)")

    result = recorded(command, "--as-of", "2019-10-01T12:00")  # a time without a zone
    assert result.returncode == EXIT_USAGE
    assert "'2019-10-01T12:00' has no time zone; add one, e.g. 2019-10-01T12:00+00:00" in result.stderr

    result = recorded(command, "--known-at", "2019-02-30")
    assert result.returncode == EXIT_USAGE
    assert "argument --known-at: '2019-02-30' is not a date" in result.stderr


def test_a_store_that_cannot_be_opened_is_one_line_naming_it(ledger, tmp_path):
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("these are not the projections you are looking for\n")

    result = ledger("whereabouts", "--store", f"sqlite:///{not_a_database}")
    assert result.returncode == EXIT_ERROR
    assert one_line(result.stderr) == (
        f"ledger whereabouts: projection store '{not_a_database}': file is not a database: it is not a "
        f"projection store, or it is damaged; rebuild it from the log (move it aside and run `ledger project`)")

    # A path under a regular file cannot be created.
    result = ledger("demo", "--store", f"sqlite:///{not_a_database}/projections.db")
    assert result.returncode == EXIT_ERROR
    assert one_line(result.stderr).startswith(f"ledger demo: projection store '{not_a_database}/projections.db': ")

    result = ledger("alerts", "--store", f"sqlite:///{tmp_path}")
    assert result.returncode == EXIT_ERROR
    assert one_line(result.stderr) == f"ledger alerts: projection store '{tmp_path}' is a directory; name the database file in it"

    result = ledger("alerts", "--store", "mysql://db/ledger")
    assert result.returncode == EXIT_ERROR
    assert one_line(result.stderr).startswith("ledger alerts: unknown store URL 'mysql://db/ledger': use sqlite:///")


def test_a_log_that_cannot_be_opened_is_one_line_naming_it(ledger, tmp_path):
    reports = tmp_path / "reports.jsonl"
    reports.write_text("")
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("not an event log\n")

    result = ledger("ingest", str(reports), "--log", f"sqlite:///{not_a_database}")
    assert result.returncode == EXIT_ERROR
    assert one_line(result.stderr) == f"ledger ingest: embedded log '{not_a_database}': file is not a database"

    result = ledger("ingest", str(reports), "--log", f"sqlite:///{not_a_database}/log.db")
    assert result.returncode == EXIT_ERROR
    assert one_line(result.stderr).startswith(f"ledger ingest: embedded log '{not_a_database}/log.db': ")

    result = ledger("ingest", str(tmp_path / "missing.jsonl"))
    assert result.returncode == EXIT_ERROR
    assert one_line(result.stderr) == f"ledger ingest: '{tmp_path / 'missing.jsonl'}' is not a readable file"


def test_the_schema_for_integrators_is_written_or_the_reason_given(ledger, tmp_path):
    target = tmp_path / "ledger-event.schema.json"
    result = ledger("schema", "--out", str(target))
    assert result.returncode == 0
    assert result.stderr.strip() == f"wrote {target}"
    assert '"title": "LedgerEvent"' in target.read_text()

    result = ledger("schema", "--out", str(tmp_path / "no-such-dir" / "schema.json"))
    assert result.returncode == EXIT_ERROR
    assert one_line(result.stderr).startswith("ledger schema: cannot write ")
    assert one_line(result.stderr).endswith("No such file or directory")


def test_schema_o_json_prints_the_schema_as_every_command_does(ledger, tmp_path, monkeypatch):
    # `-o json` is what the global help promises on every command: not a file named json.
    monkeypatch.chdir(tmp_path)
    printed = ledger("schema", "-o", "json")
    assert printed.returncode == 0 and printed.stderr == ""
    assert printed.stdout == ledger("schema").stdout
    assert json.loads(printed.stdout)["title"] == "LedgerEvent"
    assert not (tmp_path / "json").exists()

    for output in ("csv", "table"):
        refused = ledger("schema", "-o", output)
        assert refused.returncode == EXIT_USAGE and refused.stdout == ""
        *usage, error = refused.stderr.strip().splitlines()
        assert usage[0].startswith("usage: ledger schema")
        assert error == (f"ledger schema: error: argument -o/--output: the schema is JSON only: -o json, "
                         f"or no -o ({output!r} is not one)")
        assert not (tmp_path / output).exists()

    # -o FILE, as before: still written, with a warning naming --out.
    old = ledger("schema", "-o", "old.schema.json")
    assert old.returncode == 0
    assert old.stderr.splitlines() == ["ledger schema: warning: -o FILE is deprecated, write --out old.schema.json",
                                       "wrote old.schema.json"]
    assert (tmp_path / "old.schema.json").read_text() == printed.stdout


@pytest.mark.parametrize("command", ["whereabouts", "alerts", "rejects"])
def test_reading_a_ledger_that_is_not_there_is_an_error_not_an_empty_answer(ledger, command):
    # A mistyped LEDGER_HOME must not answer "no alerts standing".
    result = ledger(command)
    assert result.returncode == EXIT_ERROR
    assert "nothing has been recorded there (check LEDGER_HOME" in one_line(result.stderr)
    assert not ledger.home.exists()  # and asking does not create it


def test_no_command_shows_the_help_and_is_a_usage_error(ledger):
    result = ledger()
    assert result.returncode == EXIT_USAGE
    assert "ledger demo" in result.stdout and "exit status:" in result.stdout


@pytest.mark.parametrize("command", OUR_COMMANDS)
def test_every_command_help_has_examples_defaults_and_exit_status(ledger, command):
    result = ledger(command, "--help")
    assert result.returncode == 0
    text = result.stdout
    assert "exit status:" in text
    assert "example" in text
    assert f"  ledger {command}" in text or f") ledger {command}" in text  # an example of it
    # Each option whose default is not obvious states it.
    options = text.split("options:\n", 1)[1].split("\n\n", 1)[0]
    entries = {entry.split()[0]: entry for entry in re.split(r"\n(?=  -)", options)}
    for option in ("--as-of", "--known-at", "--store", "--log", "--policy", "--progress", "--no-project"):
        if option in entries:
            assert "default" in entries[option], (command, entries[option])


def test_a_mistyped_party_is_not_an_all_clear(ledger):
    assert ledger("demo").returncode == 0
    assert "Alerts (" in ledger("alerts", "--party", "KR-SEMI").stdout
    for typo in ("kr-semi", "NOBODY"):
        result = ledger("alerts", "--party", typo)
        assert result.returncode == 1, typo
        assert f"no party '{typo}' is registered or named in any lot" in result.stderr


@pytest.mark.parametrize("command", ["flows", "audit"])
def test_a_period_that_is_not_one_is_a_usage_error_naming_it(recorded, command, tmp_path):
    result = recorded(command, "--period", "2019-13", "--out" if command == "audit" else "--json",
                      *([str(tmp_path / "audit")] if command == "audit" else []))
    assert result.returncode == EXIT_USAGE
    assert result.stdout == ""
    *usage, error = result.stderr.strip().splitlines()
    assert usage[0].startswith(f"usage: ledger {command}")
    assert error == (f"ledger {command}: error: argument --period: "
                     f"period '2019-13' is not a year (2019) or a month (2019-07)")
    assert not (tmp_path / "audit").exists()


def test_ingesting_nothing_says_nothing_was_read_and_names_the_file(ledger, tmp_path):
    # An empty file is most often the wrong file (or an export that failed):
    # "0 lines: 0 recorded" alone reads like success.
    empty = tmp_path / "reports.jsonl"
    empty.write_text("")
    result = ledger("ingest", str(empty))
    assert result.returncode == 0
    assert result.stdout.startswith(f"{empty}: 0 lines: 0 recorded")
    assert one_line(result.stderr) == f"ledger ingest: warning: nothing was read from {str(empty)!r}: it is empty"

    result = ledger("ingest", "-", stdin="\n   \n")
    assert result.returncode == 0
    assert one_line(result.stderr) == "ledger ingest: warning: nothing was read from <stdin>: it holds only blank lines"

    # A file with reports in it says nothing of the kind.
    assert ledger("ingest", str(STORY)).stderr == ""


@pytest.mark.parametrize(("indent", "shown"), [(None, '[{"type": "license_granted"'), (2, '"["')],
                         ids=["one line", "pretty-printed"])
def test_a_json_array_gets_the_hint_that_the_ledger_reads_json_lines(ledger, tmp_path, indent, shown):
    reports = [json.loads(line) for line in STORY.read_text(encoding="utf-8").splitlines() if line.strip()]
    array = tmp_path / "reports.json"
    array.write_text(json.dumps(reports[:3], indent=indent) + "\n")
    result = ledger("ingest", str(array))
    assert result.returncode == EXIT_REJECTED  # every line refused by number, as before
    assert "0 recorded" in result.stdout
    *rejected, hint = result.stderr.rstrip().splitlines()
    # The value as its JSON text: the whole array on one line, the lone '[' of a pretty-printed one.
    assert rejected[0].startswith(f"  rejected line 1: field '(line)' value {shown}")
    assert hint == (f"ledger ingest: hint: {str(array)!r} starts with '[', as a JSON array does; the ledger reads "
                    f"JSON Lines, one report (one JSON object) per line: `jq -c '.[]' FILE` turns an array into that")


@pytest.mark.parametrize("typo", ["Unaccounted", "nope"])
def test_an_alert_kind_that_is_not_one_is_a_usage_error_not_an_all_clear(recorded, typo):
    # "no alerts standing" for a kind the ledger never raises would be a false all-clear.
    result = recorded("alerts", "--kind", typo)
    assert result.returncode == EXIT_USAGE
    assert result.stdout == ""
    *usage, error = result.stderr.strip().splitlines()
    assert usage[0].startswith("usage: ledger alerts")
    assert error.startswith(f"ledger alerts: error: argument --kind: {typo!r} is not an alert kind; the kinds: "
                            "unaccounted, transit_overdue, ")
    assert recorded("alerts", "--kind", "unaccounted").returncode == 0


@pytest.mark.parametrize("command, option, country", [
    (("flows",), "--from", "jp"), (("flows",), "--to", "kr"), (("flows",), "--to", "XX"),
    (("parties", "add", "KR-X", "--role", "consignee"), "--country", "kr"),
])
def test_a_country_that_is_not_an_upper_case_iso_code_is_a_usage_error_naming_it(recorded, command, option, country):
    # One rule for a country code everywhere: a filter and the party registry alike.
    result = recorded(*command, option, country)
    assert result.returncode == EXIT_USAGE
    assert result.stdout == ""
    *usage, error = result.stderr.strip().splitlines()
    name = " ".join(command[:2]) if command[0] == "parties" else command[0]
    assert usage[0].startswith(f"usage: ledger {name}")
    assert error.startswith(f"ledger {name}: error: argument {option}: {country!r} is not an ISO 3166-1 alpha-2 "
                            "country code")
    assert error.endswith(f"; write {country.upper()}") == (country != "XX")
    assert "KR" in recorded("flows", "--from", "JP", "--to", "KR").stdout


def usage_error(result, command: str) -> str:
    """The error line of a usage error (exit 2, nothing on stdout) said under ``command``'s usage line."""
    assert result.returncode == EXIT_USAGE, (result.returncode, result.stderr)
    assert result.stdout == ""
    usage, *_, error = result.stderr.strip().splitlines()
    assert usage.startswith(f"usage: ledger {command} "), result.stderr
    assert error.startswith(f"ledger {command}: error: "), result.stderr
    return error[len(f"ledger {command}: error: "):]


def test_a_command_asked_what_it_cannot_be_asked_is_a_usage_error_under_its_own_usage(recorded, tmp_path):
    out = tmp_path / "audit"
    assert usage_error(recorded("audit", "--out", str(out)), "audit").startswith("select what to audit: --trace")
    assert not out.exists()  # nothing made for a command that was not run
    assert usage_error(recorded("audit", "--trace", "TR-HF-2019-0001", "--format", "pdf", "--out", str(out)),
                       "audit") == "argument --format: 'pdf': choose from csv, xlsx, html (comma-separated)"
    assert usage_error(recorded("audit", "--period", "2019", "--from", "2019-07-01", "--out", str(out)),
                       "audit").startswith("--period 2019 and --from/--to both select shipment dates")
    assert usage_error(recorded("parties", "add", "KR-Y", "--role", "consignee"), "parties add") == (
        "give ID, --country CC and at least one --role (or --file FILE); missing: --country CC")
    assert usage_error(recorded("parties", "add", "--file", "x.json", "--country", "KR"), "parties add").startswith(
        "--file registers the parties the file lists")
    assert usage_error(recorded("parties"), "parties").startswith("name a subcommand: add, list or remove")
    # An option the command does not take is said by that command, not by `ledger` itself.
    assert usage_error(recorded("demo", "-o", "json"), "demo") == "unrecognized arguments: -o json"
    assert usage_error(recorded("parties", "add", "KR-Y", "--country", "KR", "--role", "consignee", "-o", "json"),
                       "parties add") == "unrecognized arguments: -o json"
    assert usage_error(recorded("schema", "-o", "a.json", "--out", "b.json"), "schema") == (
        "-o 'a.json' and --out 'b.json': give --out FILE only")


def _listed(help_text: str, heading: str) -> list[str]:
    """The commands a help lists under ``heading`` (COMMAND or SUBCOMMAND)."""
    listing = help_text.split(f"\n  {heading}\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in listing.splitlines() if re.match(r"    \S", line)]


def test_every_command_and_subcommand_help_has_examples_and_exit_status(ledger):
    # `ledger --help` promises each command's help shows its options, examples and exit status.
    top = ledger("--help").stdout
    commands = _listed(top, "COMMAND")
    assert {"ingest", "alerts", "flows", "trace", "kafka", "parties", "demo", "serve"} <= set(commands)
    helps = {}
    for command in commands:
        text = ledger(command, "--help").stdout
        helps[command] = text
        if "SUBCOMMAND ..." in text.split("\n\n", 1)[0]:
            for sub in _listed(text, "SUBCOMMAND"):
                helps[f"{command} {sub}"] = ledger(command, sub, "--help").stdout
    assert {"kafka publish-alerts", "parties add", "parties list", "parties remove"} <= set(helps)
    missing = {name: [h for h in ("\nexamples:\n", "\nexit status:\n") if h not in text]
               for name, text in helps.items()}
    assert {name: m for name, m in missing.items() if m} == {}
    # User-facing text, not the module's note to developers.
    for name, text in helps.items():
        assert "consumers.cli" not in text and "EXTENSIONS" not in text, name

    # No option a command would ignore: the registry is in the store, the rejects in the log.
    def options(name: str) -> set[str]:
        return set(re.findall(r"\n  (--[a-z-]+)", helps[name].split("\noptions:\n", 1)[1]))

    for name in ("parties add", "parties list", "parties remove"):
        assert "--store" in options(name) and not {"--log", "--policy"} & options(name), name
    assert "--log" in options("rejects") and not {"--store", "--policy"} & options("rejects")
    assert not {"--store", "--policy"} & options("kafka follow-alerts")
    assert "--policy" not in options("verify") | options("kafka publish-alerts")
    assert "--policy" in options("alerts") and "--policy" in options("kafka project")


def _columns(help_text: str) -> dict[str, str]:
    """The help's columns: section, each column's text joined onto one line."""
    section = help_text.split("\ncolumns:\n", 1)[1].split("\n\n", 1)[0]
    columns: dict[str, str] = {}
    for entry in re.split(r"\n(?=  \S)", section):
        name, text = re.match(r"  (\S+(?: \(UTC\))?)\s+(.*)", entry, flags=re.DOTALL).groups()
        columns[name] = " ".join(text.split())
    return columns


def test_the_help_says_what_since_means_beside_unaccounted(ledger):
    # SINCE 2019-08-20 beside UNACCOUNTED 30 must not read as "unaccounted since August".
    whereabouts = _columns(ledger("whereabouts", "--help").stdout)
    assert whereabouts["SINCE"].startswith("the UTC date the lot's figures last changed")
    assert "not since when a quantity is unaccounted" in whereabouts["SINCE"]
    assert "UNACCOUNTED" in whereabouts
    alerts = _columns(ledger("alerts", "--help").stdout)
    assert alerts["SINCE (UTC)"].startswith("the date the alert first stood")
    # The columns named are the columns printed.
    assert set(alerts) <= {"SEVERITY", "KIND", "TRACE", "LOT", "PARTY", "QUANTITY", "SINCE (UTC)", "WHAT"}

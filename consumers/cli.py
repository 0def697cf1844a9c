"""`ledger`: the command line of the traceability ledger.

Thin by design: parse arguments, open adapters through bootstrap, call the
service functions, print.  Exit status: 0 ok; 1 error; 2 usage error;
3 some input was rejected (the rest was recorded).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import os
import sqlite3
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time as dtime, timezone
from pathlib import Path
from typing import Any

from eventsourcing.persistence import PersistenceError

from consumers import bootstrap
from consumers.ingest import IngestReport, LongLine, Reject, ingest_lines, read_lines, reject_row
from consumers.log_check import LogMismatch, verify_log
from consumers.projector import BatchCounts, catch_up, rebuild, utc_now
from consumers.render import colour_enabled, fmt_amount, severity_colour, table, terminal_width
from ledger.alerts import ALERT_KINDS
from ledger.events import event_json_schema
from ledger.parties import PartyError, by_id, parties_from_json
from consumers.bootstrap import POLICY_ENV, load_policy
from ledger.policy import PolicyError
from ledger.ports import LogUnavailable
from projections.alert_views import party_alerts, with_since
from projections.queries import NotFound, standing_alerts, whereabouts
from projections.retry import retry
from projections.store import StoreUnavailable

__all__ = ["main"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REJECTED, EXIT_DAMAGED = 0, 1, 2, 3, 4

# Modules that add subcommands: each defines register(cli) where ``cli`` is
# this module's CommandSet (command(), storage(), as_of(), Ledger, Progress).
EXTENSIONS: tuple[str, ...] = ("consumers.cli_compliance", "consumers.cli_kafka", "consumers.cli_verify",
                               "consumers.cli_parties", "consumers.http.cli")
PROGRESS_INTERVAL_S = 1.0
REJECTS_SHOWN_DEFAULT = 1000
STORE_OPEN_ATTEMPTS, STORE_OPEN_BACKOFF_S = 5, 0.2
REJECTS_SHOWN_ALL = 2**62  # `--limit 0`: SQLite's LIMIT takes a 64-bit integer
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"

DESCRIPTION = """\
Traceability ledger for export-controlled goods.

Every export, receipt, consumption, re-export, ship-back, stock declaration
and loss is an immutable report; the ledger keeps the account of every lot
and raises alerts for quantities nobody accounts for.

  ledger demo                                   the 2019 story, end to end
  ledger ingest reports.jsonl                   record reports (JSON Lines)
  ledger whereabouts TR-HF-2019-0001            where every unit of a trace is
  ledger whereabouts HF-0001 --as-of 2019-09-01 where it was on a date
  ledger alerts --party KR-SEMI                 what needs an answer
  ledger rejects                                input that was refused, and why
  ledger trace TR-PR-2019-0003                  the lineage of a trace, with quantities
  ledger flows --period 2019 --gaps-only        shipped vs received across borders
  ledger audit --trace TR-PR-2019-0003          CSV, XLSX and HTML for an auditor
  ledger parties add --file examples/parties.json  who may report (the registry)
  ledger kafka project --log kafka://HOST:9092/ledger   the consumer-group projector
  ledger serve                                  the HTTP API and live alert feed (docs/API.md)
  ledger credentials issue KR-SEMI              a party's bearer token for the HTTP API
  ledger replay                                 rebuild and compare projections
  ledger verify                                 the log's digests, the store's integrity, and that they match
  ledger schema > ledger-event.schema.json      the contract for integrators

`ledger COMMAND --help` shows a command's options, examples and exit status.
"""

EPILOG = """\
storage:
  LEDGER_HOME (default ./.ledger) holds log.db, the event log, and
  projections.db, the read models.  LEDGER_LOG and LEDGER_STORE (or --log
  and --store) name other ones by URL: sqlite:///path/log.db,
  kafka://host:9092/prefix, postgresql://user@host:5432/db.
  Deadlines come from LEDGER_POLICY or --policy FILE (TOML); built in:
  90 days to account for a receipt, 30 days in transit, 30 days to confirm
  a ship-back.

exit status:
  0 ok;  1 error (one line on stderr says what and where);  2 usage error;
  3 some input was rejected (the rest was recorded);
  4 damage found (`ledger verify`, `ledger replay`: the log or the store).
"""


INGEST_EPILOG = """\
Each line is one report, UTF-8: a JSON object as `ledger schema` describes.
Quantities are exact, {"amount": "30.5", "unit": "kg"} (a string or an
integer; a JSON float such as 30.5 is refused).  Times carry a zone,
2019-07-15T14:00:00+09:00.  Blank lines are skipped.

A bad line is refused with its line number, field and value on stderr, kept
(see `ledger rejects`), and the rest of the file is still recorded.  Once
parties are registered (`ledger parties`), a line naming a party the
registry does not hold, or in another country, is refused too.
examples/bad-reports.jsonl has one line of each kind that is refused.

Re-running a file is safe: a report already recorded (same reporter and
event_id, same content) is a no-op; the same reporter and event_id with
other content is recorded as a conflicting report and raises an alert.  An interrupted ingest (Ctrl-C, a
crash, a power cut) keeps every batch already written: run it again.

examples:
  ledger ingest reports.jsonl
  ledger ingest --progress partner-2019.jsonl      progress lines on stderr
  partner-export | ledger ingest -                 read standard input
  ledger ingest --no-project day.jsonl && ledger project
  ledger ingest --json reports.jsonl               the summary as JSON

Times are ISO 8601 text in the years 1900 to 2199 (UTC); free text has no
control characters; a key is said once per object; a line is at most
1,000,000 bytes (docs/EVENTS.md).

exit status:
  0 every line recorded (or already recorded);
  3 some lines rejected: each named on stderr, every other line recorded;
  1 the ledger failed: the file, log or store could not be opened or
    written (what was committed is kept: re-run to resume);
  2 usage error.
"""

PROJECT_EPILOG = """\
Reads the log from where the projection store stopped and applies it batch
by batch; each batch is committed with its log position, so a crash or
Ctrl-C never counts a report twice: run it again to resume.  `ledger
ingest` projects by default; use this after `ingest --no-project`, or to
bring a store up to date with a shared log.

examples:
  ledger project
  ledger project --progress --store postgresql://ledger@db:5432/ledger

exit status:
  0 up to date;  1 the log or store could not be opened;  2 usage error.
"""

WHEREABOUTS_EPILOG = """\
One row per lot: who holds it (HOLDER, with country), where it came from
(FROM: the shipper, or the parent lot of a re-export or ship-back), and its
account, in the lot's unit:
  SHIPPED  = RECEIVED + IN TRANSIT
  RECEIVED = CONSUMED + RE-EXPORTED + RETURNED + LOST + ON HAND
UNACCOUNTED is what the holder has not explained (consumed, re-exported,
returned, lost or declared on hand) by the end-use reporting deadline.

examples:
  ledger whereabouts                               every lot, now
  ledger whereabouts TR-PR-2019-0003               one trace: the lot and its children
  ledger whereabouts HF-0001 --as-of 2019-09-01    as it stood at the end of that day (UTC)
  ledger whereabouts HF-0001 --as-of 2019-12-31 --known-at 2019-11-01
                                                   what the ledger had been told by 1 November
  ledger whereabouts --json > whereabouts.json     for scripts; same bytes for the same state

exit status:
  0 ok;  1 no such lot or trace, or the store could not be opened;
  2 usage error (e.g. a date that cannot be read).
"""

ALERTS_EPILOG = textwrap.fill(
    "An alert stands from its deadline until later reports account for the quantity; then it "
    "resolves itself.  Kinds: " + ", ".join(ALERT_KINDS) + ".", width=76,
) + """


examples:
  ledger alerts                                    every alert standing now
  ledger alerts --party KR-SEMI                    what KR-SEMI has to answer
  ledger alerts --party JP-FLUORO                  and, for an exporter of origin, the alerts
                                                   about its material addressed to others,
                                                   marked "(your material)" (--json:
                                                   about_your_material)
  ledger alerts --trace TR-HF-2019-0002 --as-of 2019-06-01
  ledger alerts --journal                          raised/updated/resolved, in order
  ledger alerts --severity high --kind unaccounted --limit 10
                                                   the ten oldest high unaccounted alerts
  ledger alerts --json                             for scripts and dashboards
  ledger alerts -o csv > alerts.csv                every field, for a spreadsheet

SINCE is the UTC date the alert first stood (--json: since; due_at is its
latest step, e.g. when an unaccounted quantity last changed).

On a terminal the table fits its width: the message wraps under its column,
or, where even that does not fit, each alert is printed as a block of
"HEADER value" pairs; severity is coloured.  Piped, lines are whole and
plain.  NO_COLOR=1 turns colour off.

exit status:
  0 ok (standing alerts are an answer, not an error);  1 the store could not
  be opened;  2 usage error.
"""

COMPLETION_EPILOG = """\
examples:
  ledger completion bash > ~/.local/share/bash-completion/completions/ledger
  ledger completion zsh > "${fpath[1]}/_ledger"
  eval "$(ledger completion bash)"                 in the current shell only
"""

REJECTS_EPILOG = """\
Every refused input line is kept with its source (file path, or <stdin>),
line number, the line exactly as sent, and the reasons, each naming the
field and the value.  Re-ingesting a file adds no copies.

examples:
  ledger rejects
  ledger rejects --limit 0                         every one of them
  ledger rejects --json | jq -r '.[] | "\\(.line): \\(.problems)"'

exit status:
  0 ok;  1 the log could not be opened or keeps no rejects (a Kafka log
  sends them to its dead-letter topic).
"""

REPLAY_EPILOG = """\
Rebuilds every read model from the whole log into a scratch store beside
the live one, and compares a digest of each (reports, lots, alert steps,
licenses).  The alert journal is history, not state, and is not compared.
The scratch store is removed afterwards.

Before it rebuilds, every report in the log is checked against the digest
stored with it when it was recorded: a log with a report changed since is
not replayed (and nothing is replaced); `ledger verify` names each one.
The live store's own integrity check (SQLite PRAGMA integrity_check) is
part of the comparison: a damaged index reads differently through the
index than a full scan does, so a damaged store is never "identical".

examples:
  ledger replay
  ledger replay --replace          adopt the rebuilt projections if they differ

exit status:
  0 identical;  1 different, or storage could not be opened;  2 usage error;
  4 the log is damaged: refused, nothing replaced (see `ledger verify`).
"""

SCHEMA_EPILOG = """\
The JSON Schema of every report the ledger accepts, for integrators who
validate before they send.  Refused reports are described field by field
on ingest (see `ledger ingest --help`).

examples:
  ledger schema -o ledger-event.schema.json

exit status:
  0 ok;  1 the output file could not be written.
"""

DEMO_EPILOG = """\
Records examples/story-2019.jsonl into LEDGER_HOME (default ./.ledger) and
prints the whereabouts, the standing alerts and a replay check.  Running it
again is a no-op: every report is already recorded.

example:
  LEDGER_HOME=$(mktemp -d) ledger demo

exit status:
  0 ok;  1 the replay differed, or storage could not be opened.
"""


class CliError(Exception):
    pass


CSV_COMMANDS = ("whereabouts", "alerts")  # the commands that print one flat table of rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    output = getattr(args, "output", None)
    if output == "json":
        args.json = True
    elif output == "csv" and args.command not in CSV_COMMANDS:
        parser.error(f"-o csv is offered by `ledger {' | '.join(CSV_COMMANDS)}`; "
                     f"for `ledger {args.command}` write -o json")
    try:
        return args.run(args)
    except (CliError, NotFound, PolicyError, PartyError, bootstrap.ConfigError, LogUnavailable,
            StoreUnavailable, LogMismatch) as error:
        print(f"ledger {args.command}: {error}", file=sys.stderr)
        return getattr(error, "exit_status", EXIT_ERROR)
    except KeyboardInterrupt:
        print(f"ledger {args.command}: interrupted; what was committed is kept, re-run to resume",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except (OSError, sqlite3.Error, PersistenceError) as error:
        # Storage failing under a command (a full disk, an I/O error, a file
        # damaged while in use): one line saying what and what to do.
        print(f"ledger {args.command}: {_storage_failure(error)}", file=sys.stderr)
        return EXIT_ERROR


def _storage_failure(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, OSError) and error.filename is not None:
        text = f"{error.strerror or text}: {str(error.filename)!r}"
    full = (isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)) or "disk is full" in text
    if full:
        return (f"{text}: the disk is full; free some space and run the same command again (every batch "
                f"already committed is kept, and nothing is counted twice)")
    if "malformed" in text or "not a database" in text:
        return f"{text}: a file of the ledger is damaged; `ledger verify` says which"
    return text


# -- arguments ------------------------------------------------------------------


def software_version() -> str:
    """The installed package's version (what an audit report names)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("traceability-ledger")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ledger", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {software_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str, run: Any, epilog: str = "") -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(run=run)
        return p

    def storage(p: argparse.ArgumentParser) -> None:
        p.add_argument("--log", metavar="URL", help="event log URL (default: sqlite:///$LEDGER_HOME/log.db)")
        p.add_argument("--store", metavar="URL",
                       help="projection store URL (default: sqlite:///$LEDGER_HOME/projections.db)")
        p.add_argument("--policy", metavar="FILE",
                       help="deadlines, TOML (default: $LEDGER_POLICY, else built in: 90 days to "
                            "account for a receipt, 30 in transit, 30 to confirm a ship-back)")

    def as_of(p: argparse.ArgumentParser) -> None:
        p.add_argument("--as-of", metavar="T", type=_when,
                       help="where things stood at T, by when things happened (default: now); "
                            "2019-09-01 means the end of that day, UTC; or 2019-09-01T12:00:00+09:00")
        p.add_argument("--known-at", metavar="K", type=_when,
                       help="only what the ledger had been told by K (default: everything recorded)")
        p.add_argument("--json", action="store_true",
                       help="stable JSON for scripts (default: a table); quantities are decimal strings")
        p.add_argument("-o", "--output", choices=("table", "json", "csv"), default=None,
                       help="table (default), json (= --json), or csv (whereabouts and alerts: one row "
                            "per lot or alert, every field, for a spreadsheet)")

    p = command("ingest", "Record reports from a JSON Lines file (or - for standard input).", _cmd_ingest,
                epilog=INGEST_EPILOG)
    p.add_argument("file", metavar="FILE", help="JSON Lines, one report per line; - for standard input")
    p.add_argument("--trust-recorded-at", action="store_true",
                   help="keep the recorded_at each line carries (migrating from a system of record); "
                        "by default the ledger stamps its own clock, since recorded_at decides which of two "
                        "conflicting reports wins and what a --known-at query sees")
    p.add_argument("--no-project", action="store_true",
                   help="only append to the log; run `ledger project` later (default: project at once)")
    p.add_argument("--progress", action="store_true",
                   help="progress lines on stderr even when it is not a terminal (default: only on a terminal)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (default: one line of text)")
    storage(p)

    p = command("project", "Bring the projections up to date with the log.", _cmd_project,
                epilog=PROJECT_EPILOG)
    p.add_argument("--progress", action="store_true",
                   help="progress lines on stderr even when it is not a terminal (default: only on a terminal)")
    p.add_argument("--trust-recorded-at", action="store_true",
                   help="keep the recorded_at each report carries (an operator migrating a system of record); "
                        "by default the ledger stamps it: on Kafka with the broker's append time")
    storage(p)

    p = command("whereabouts", "Where every unit of a lot or trace is, and since when.", _cmd_whereabouts,
                epilog=WHEREABOUTS_EPILOG)
    p.add_argument("ident", nargs="?", metavar="LOT|TRACE", help="a lot id or trace id (default: every lot)")
    as_of(p)
    storage(p)

    p = command("alerts", "Alerts standing now (or as of T).", _cmd_alerts, epilog=ALERTS_EPILOG)
    p.add_argument("--party", help="only alerts addressed to this party id, and those about material it exported "
                                   "at the origin (default: every party)")
    p.add_argument("--trace", help="only alerts of this trace id (default: every trace)")
    p.add_argument("--journal", action="store_true",
                   help="show the raised/updated/resolved journal instead, oldest first")
    p.add_argument("--follow", action="store_true",
                   help="follow the Kafka alerts topic of --log, de-duplicated by transition id "
                        "(consumers/cli_kafka.py; --max-idle S stops after S idle seconds)")
    p.add_argument("--max-idle", type=float, metavar="S", help="with --follow: stop after S idle seconds")
    p.add_argument("--severity", choices=("high", "medium", "low"), action="append",
                   help="only alerts of this severity (repeat for several; default: all)")
    p.add_argument("--kind", action="append", metavar="KIND",
                   help="only alerts of this kind, e.g. unaccounted, premise_deviation (repeat for several)")
    p.add_argument("--limit", metavar="N", type=_count, default=0,
                   help="show at most N, the oldest standing first (default 0: all)")
    as_of(p)
    storage(p)

    p = command("completion", "Print a shell completion script for ledger.", _cmd_completion,
                epilog=COMPLETION_EPILOG)
    p.add_argument("shell", choices=("bash", "zsh", "tcsh"), help="the shell to complete in")

    p = command("rejects", "Input lines that were rejected, with the reasons.", _cmd_rejects,
                epilog=REJECTS_EPILOG)
    p.add_argument("--json", action="store_true", help="JSON for scripts (default: a table)")
    p.add_argument("--limit", metavar="N", type=_count, default=REJECTS_SHOWN_DEFAULT,
                   help=f"show at most N, oldest first (default: {REJECTS_SHOWN_DEFAULT}; 0: all)")
    storage(p)

    p = command("replay", "Rebuild every projection from position 0 and compare with the live one.",
                _cmd_replay, epilog=REPLAY_EPILOG)
    p.add_argument("--replace", action="store_true",
                   help="if they differ, replace the live store with the rebuilt one (default: only compare)")
    p.add_argument("--json", action="store_true", help="stable JSON for scripts (default: text)")
    storage(p)

    p = command("schema", "Write the JSON Schema of the event contract.", _cmd_schema, epilog=SCHEMA_EPILOG)
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--alerts", action="store_true",
                   help="the schema of the alert messages on the Kafka alerts topic instead")

    p = command("demo", "Run the 2019 story (docs/STORY.md) on the embedded log and show what surfaces.",
                _cmd_demo, epilog=DEMO_EPILOG)
    storage(p)

    commands = CommandSet(command=command, storage=storage, as_of=as_of)
    for module_name in EXTENSIONS:
        # An extension that cannot load (a missing optional dependency, a
        # broken install) costs its own subcommands, not ingest and the rest.
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            print(f"ledger: the commands of {module_name} are unavailable: {error}", file=sys.stderr)
            continue
        module.register(commands)
    return parser


@dataclass(frozen=True)
class CommandSet:
    """What an extension module gets to add its subcommands with.

    ``command(name, help, run, epilog="")`` returns an argparse parser whose
    ``run(args) -> int`` is called; ``storage(p)`` adds --log/--store/--policy;
    ``as_of(p)`` adds --as-of/--known-at/--json.  Use ``Ledger(args)`` to open
    the adapters and ``Progress`` for progress on stderr.
    """

    command: Any
    storage: Any
    as_of: Any
    Ledger: type = field(default_factory=lambda: _Ledger)
    Progress: type = field(default_factory=lambda: _Progress)
    CliError: type = field(default_factory=lambda: CliError)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (0, 1, 2, ...)")
    return value


def _when(text: str) -> datetime:
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").date()
            return datetime.combine(day, dtime.max, tzinfo=timezone.utc)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (2019-10-01) or a time with zone (2019-10-01T12:00:00+09:00)"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; add one, e.g. {text}+00:00 or {text}Z")
    return value


# -- commands ---------------------------------------------------------------------


class _Ledger:
    """The adapters one command uses, opened from its arguments.

    ``must_exist``: for commands that only read.  An embedded log or SQLite
    store that is not there is an error, not an empty ledger: a mistyped
    LEDGER_HOME must not answer "no alerts standing".
    """

    def __init__(self, args: argparse.Namespace, *, must_exist: bool = False):
        self.log_url = getattr(args, "log", None) or bootstrap.default_log_url()
        self.store_url = getattr(args, "store", None) or bootstrap.default_store_url()
        self.policy = load_policy(getattr(args, "policy", None))
        self.must_exist = must_exist
        self._log = None
        self._store = None

    @property
    def log(self):  # type: ignore[no-untyped-def]
        if self._log is None:
            self._check_exists(self.log_url, "event log")
            self._check_not_empty(self.log_url, "event log",
                                  "if the log was lost, restore it from a backup; to start a new ledger, "
                                  "remove the file (its projection store will then refuse it)")
            self._log = bootstrap.open_log(self.log_url)
        return self._log

    @property
    def store(self):  # type: ignore[no-untyped-def]
        if self._store is None:
            self._check_exists(self.store_url, "projection store")
            # Two processes creating one new SQLite store at once race in the
            # library's table migration; the one that loses finds the store
            # made when it tries again.
            self._store = retry(
                lambda: bootstrap.open_store(self.store_url), attempts_max=STORE_OPEN_ATTEMPTS,
                wait_s=STORE_OPEN_BACKOFF_S,
                retryable=lambda error: isinstance(error, StoreUnavailable) and "__migration__" in str(error),
            )
        return self._store

    @staticmethod
    def _check_not_empty(url: str, what: str, advice: str) -> None:
        """A 0-byte file is not an empty ledger: SQLite would take it for a
        new database and answer "no alerts" from it, or start a new log in
        place of a lost one."""
        if not url.startswith("sqlite:///"):
            return
        path = Path(url[len("sqlite:///"):])
        if path.is_file() and path.stat().st_size == 0:
            raise CliError(f"{what} {str(path)!r} is empty (0 bytes), not a database: {advice}")

    def _check_exists(self, url: str, what: str) -> None:
        if not self.must_exist or not url.startswith("sqlite:///"):
            return
        text = url[len("sqlite:///"):]
        if not text:
            return  # bootstrap says what is wrong with the URL
        path = Path(text)
        if path.is_dir():
            raise CliError(f"{what} {str(path)!r} is a directory; name the database file in it")
        if not path.is_file():
            raise CliError(f"no {what} at {str(path)!r}: nothing has been recorded there "
                           f"(check LEDGER_HOME, or run `ledger ingest FILE` first)")
        if what == "projection store":
            self._check_not_empty(url, what, "rebuild it from the log: remove the file and run `ledger project`")

    def close(self) -> None:
        for part in (self._log, self._store):
            if part is not None:
                part.close()


class _Progress:
    def __init__(self, label: str, force: bool, total_bytes: int | None = None):
        self.label = label
        self.enabled = force or sys.stderr.isatty()
        self.started = self.last = time.monotonic()
        self.total_bytes = total_bytes
        self.bytes_read = 0

    def __call__(self, done: int, detail: str = "") -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < PROGRESS_INTERVAL_S:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        share = ""
        if self.total_bytes:
            share = f" ({100 * self.bytes_read / self.total_bytes:.0f}%)"
        print(f"  {self.label}: {done:,}{share} at {rate:,.0f}/s {detail}".rstrip(), file=sys.stderr, flush=True)

    def announce(self, step: str) -> None:
        """One line naming a step as it starts (a step with no count of its own)."""
        if self.enabled:
            print(f"  {self.label} {step}", file=sys.stderr, flush=True)

    def done(self, total: int, detail: str = "") -> None:
        """The closing line, so even a run shorter than one interval says what it did."""
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        print(f"  {self.label}: {total:,} done in {elapsed:.1f} s at {total / max(elapsed, 1e-9):,.0f}/s "
              f"{detail}".rstrip(), file=sys.stderr, flush=True)


def _cmd_ingest(args: argparse.Namespace) -> int:
    ledger = _Ledger(args)
    try:
        report = _ingest(ledger, args.file, progress_forced=args.progress,
                         trust_recorded_at=args.trust_recorded_at)
        projected = None if args.no_project else _project(ledger, args.progress,
                                                          trust_recorded_at=args.trust_recorded_at)
        detects_duplicates = ledger.log.detects_duplicates
    finally:
        ledger.close()
    if args.json:
        print(json.dumps(_ingest_json(report, projected), indent=2))
    else:
        _print_ingest(report, args.file, detects_duplicates=detects_duplicates)
    return EXIT_REJECTED if report.rejected else EXIT_OK


def _ingest(ledger: _Ledger, file: str, *, progress_forced: bool,
            trust_recorded_at: bool = False) -> IngestReport:
    log = ledger.log
    keep = getattr(log, "keep_rejects", None)

    def keep_rejects(rejects: list[Reject], at: datetime) -> None:
        if keep is not None:
            keep([reject_row(r, at) for r in rejects])

    # Reports are UTF-8, read as bytes (read_lines) so the line limit is
    # checked in bytes while reading and a huge line is never held whole.
    # A byte-order mark (spreadsheet exports write one) is not part of line 1
    # (ingest_lines drops it).  A byte that is not UTF-8 (a Shift_JIS or
    # EUC-KR file) reaches ingest_lines as a surrogate, which refuses that
    # line by number, rather than being silently replaced or crashing.
    if file == "-":
        stream = sys.stdin.buffer
        source, size = "<stdin>", None
    else:
        path = Path(file)
        if not path.is_file():
            raise CliError(f"{file!r} is not a readable file")
        try:
            stream = path.open("rb")
        except OSError as error:
            raise CliError(f"{file!r} cannot be read: {error.strerror}") from None
        source, size = str(path.resolve()), path.stat().st_size
    progress = _Progress("ingested lines", progress_forced, size)

    def counting(lines):  # type: ignore[no-untyped-def]
        for line in lines:
            if isinstance(line, LongLine):
                progress.bytes_read += line.length_bytes
            else:
                progress.bytes_read += (len(line) if line.isascii()
                                        else len(line.encode("utf-8", "surrogateescape")))
            yield line

    try:
        report = ingest_lines(
            counting(read_lines(stream)), log, source=source, clock=utc_now, keep_rejects=keep_rejects,
            progress=lambda r: progress(r.lines, f"({r.rejected} rejected)"),
            trust_recorded_at=trust_recorded_at,
            parties=by_id(ledger.store.registered_parties()),
        )
    finally:
        if file != "-":
            stream.close()
    progress.done(report.lines, f"({report.rejected} rejected)")
    return report


def _project(ledger: _Ledger, progress_forced: bool, *, trust_recorded_at: bool = False) -> BatchCounts:
    progress = _Progress("projected records", progress_forced)
    totals = catch_up(ledger.log, ledger.store, policy=ledger.policy, trust_recorded_at=trust_recorded_at,
                      progress=lambda t: progress(t.records))
    progress.done(totals.records)
    return totals


def _print_ingest(report: IngestReport, file: str, *, detects_duplicates: bool = True) -> None:
    file = "<stdin>" if file == "-" else file
    if detects_duplicates:
        print(f"{file}: {report.lines} lines: {report.accepted} recorded, "
              f"{report.duplicates} already recorded (no-op), {report.conflicts} conflicting, "
              f"{report.rejected} rejected")
    else:
        print(f"{file}: {report.lines} lines: {report.accepted} sent to the log, {report.rejected} rejected "
              f"(this log cannot tell a re-send from a new report: the projection drops re-sends)")
    for reject in report.rejects[:50]:
        print(f"  rejected line {reject.line}: " + "; ".join(str(p) for p in reject.problems), file=sys.stderr)
    if report.rejected > 50:
        print(f"  ... and {report.rejected - 50} more (see `ledger rejects`)", file=sys.stderr)


def _ingest_json(report: IngestReport, projected: BatchCounts | None) -> dict[str, Any]:
    return {
        "lines": report.lines,
        "recorded": report.accepted,
        "duplicates": report.duplicates,
        "conflicts": report.conflicts,
        "rejected_count": report.rejected,
        "rejected": [  # the first ones; `ledger rejects --json` has them all
            {"line": r.line, "problems": [p.model_dump() for p in r.problems]} for r in report.rejects
        ],
        "projected_records": projected.records if projected else None,
    }


def _cmd_project(args: argparse.Namespace) -> int:
    ledger = _Ledger(args)
    try:
        totals = _project(ledger, args.progress, trust_recorded_at=args.trust_recorded_at)
    finally:
        ledger.close()
    print(f"projected {totals.records} records in {totals.batches} batches "
          f"({totals.duplicates} duplicates, {totals.dead_letters} dead letters)")
    return EXIT_OK


def _cmd_whereabouts(args: argparse.Namespace) -> int:
    ledger = _Ledger(args, must_exist=True)
    try:
        rows = whereabouts(ledger.store, args.ident, now=utc_now(), policy=ledger.policy,
                           as_of=args.as_of, known_at=args.known_at)
    finally:
        ledger.close()
    if args.json:
        print(json.dumps({"as_of": _iso(args.as_of), "known_at": _iso(args.known_at), "lots": rows},
                         indent=2, sort_keys=True))
        return EXIT_OK
    if args.output == "csv":
        _print_csv(rows)
        return EXIT_OK
    print(_whereabouts_table(rows, args.as_of, args.known_at))
    return EXIT_OK


def _print_csv(rows: list[dict[str, Any]]) -> None:
    """Every field of every row, quantities as exact decimal text, lists joined by spaces."""
    import csv

    if not rows:
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    columns = list(rows[0])
    writer.writerow(columns)
    for row in rows:
        writer.writerow(" ".join(map(str, v)) if isinstance(v, (list, tuple)) else v for v in (row[c] for c in columns))


def _cmd_completion(args: argparse.Namespace) -> int:
    import shtab

    print(shtab.complete(_parser(), shell=args.shell))
    return EXIT_OK


def _whereabouts_table(rows: list[dict[str, Any]], as_of: datetime | None, known_at: datetime | None) -> str:
    if not rows:
        # Say which question came back empty: "not known then" is not "never recorded".
        if known_at is not None or as_of is not None:
            when = []
            if as_of is not None:
                when.append(f"occurred by {as_of.isoformat()}")
            if known_at is not None:
                when.append(f"recorded by {known_at.isoformat()}")
            return "no lot with reports " + " and ".join(when) + " (the lot or trace is known; try a later time)"
        return "no lots recorded"
    headers = ("TRACE", "LOT", "FROM", "ITEM", "HOLDER", "UNIT", "SHIPPED", "IN TRANSIT", "RECEIVED",
               "CONSUMED", "RE-EXPORTED", "RETURNED", "LOST", "ON HAND", "DECLARED", "UNACCOUNTED", "SINCE")
    body = []
    for r in rows:
        origin = r["parent_lot_id"] and f"{r['parent_lot_id']} ({r['origin'].replace('_', '-')})"
        body.append((
            r["trace_id"], r["lot_id"], origin or r["shipper"], r["item_id"],
            f"{r['holder']} ({r['holder_country']})", r["unit"],
            *(fmt_amount(r[k]) for k in ("shipped", "in_transit", "received", "consumed", "re_exported",
                                         "returned", "lost", "on_hand", "declared_on_hand", "unaccounted")),
            (r["since"] or "")[:10],
        ))
    title = "Whereabouts"
    if as_of:
        title += f" as of {as_of.isoformat()}"
    if known_at:
        title += f", as known at {known_at.isoformat()}"
    return title + "\n" + table(headers, body, right=set(range(6, 16)), width=terminal_width())


def _cmd_alerts(args: argparse.Namespace) -> int:
    if args.follow:
        return importlib.import_module("consumers.cli_kafka").follow(args)
    ledger = _Ledger(args, must_exist=True)
    try:
        if args.journal:
            entries = ledger.store.journal(limit=100_000)
            if args.json:
                print(json.dumps(entries, indent=2, sort_keys=True))
            else:
                print(table(("SEQ", "AT", "TRANSITION", "KIND", "LOT", "PARTY", "QUANTITY", "MESSAGE"),
                            [(e["seq"], e["at"][:19], e["transition"], e["kind"], e["lot_id"], e["party"],
                              _qty(e["quantity"], e["unit"]), e["message"]) for e in entries],
                            right={6}, width=terminal_width()))
            return EXIT_OK
        # A mistyped trace id must not read as an all-clear.
        if args.trace is not None:
            traces = ledger.store.trace_ids_for(lot_or_trace=args.trace)
            if traces and args.trace not in traces:
                raise NotFound(f"{args.trace!r} is a lot, not a trace; its trace is {', '.join(traces)}")
            # A trace known only by a record the projection could not read
            # has no reports, only its quarantine alert: that is an answer.
            if not traces and not ledger.store.standing_alerts(utc_now(), trace_id=args.trace):
                raise NotFound(f"no trace {args.trace!r} is known (`ledger whereabouts` lists them)")
        # A mistyped party must not read as an all-clear either.
        if args.party is not None and not _party_known(ledger.store, args.party):
            raise NotFound(f"no party {args.party!r} is registered or named in any lot "
                           f"(ids are case-sensitive; `ledger parties list` shows the registry)")
        now = utc_now()
        if args.party is not None:
            # The exporter of origin sees the alerts about its material too (projections/alert_views.py).
            alerts = party_alerts(ledger.store, args.party, now=now, policy=ledger.policy, as_of=args.as_of,
                                  known_at=args.known_at, trace_id=args.trace)
        else:
            alerts = standing_alerts(ledger.store, now=now, policy=ledger.policy, as_of=args.as_of,
                                     known_at=args.known_at, trace_id=args.trace)
        alerts = with_since(ledger.store, alerts, now=now, as_of=args.as_of, known_at=args.known_at)
    finally:
        ledger.close()
    alerts = [a for a in alerts if (not args.severity or a["severity"] in args.severity)
              and (not args.kind or a["kind"] in args.kind)]
    if args.limit:
        alerts = sorted(alerts, key=lambda a: (a["due_at"], a["alert_id"]))[: args.limit]
    if args.output == "csv":
        _print_csv(alerts)
        return EXIT_OK
    if args.json:
        print(json.dumps({"as_of": _iso(args.as_of), "known_at": _iso(args.known_at), "alerts": alerts},
                         indent=2, sort_keys=True))
        return EXIT_OK
    print(_alerts_table(alerts, party=args.party))
    return EXIT_OK


def _party_known(store: Any, party: str) -> bool:
    """Registered, or named by a lot as its shipper, holder or end user."""
    if any(p.party_id == party for p in store.registered_parties()):
        return True
    return any(party in (r["shipper"], r["holder"], r["end_user"]) for r in store.lots())


def _alerts_table(alerts: list[dict[str, Any]], *, party: str | None = None) -> str:
    """SINCE is the UTC date the alert first stood (``since``, else its step's
    ``due_at``); with ``party``, PARTY says "(your material)" beside another
    party an alert about material ``party`` exported is addressed to."""
    if not alerts:
        return "no alerts standing" + (f" for {party} or about material it exported" if party else "")
    rows = []
    for a in alerts:
        addressed = a["party"] + (" (your material)" if a.get("about_your_material") else "")
        rows.append((a["severity"], a["kind"], a["trace_id"], a["lot_id"], addressed,
                     _qty(a["quantity"], a["unit"]), (a.get("since") or a["due_at"])[:10], a["message"]))
    title = f"Alerts ({len(alerts)})"
    if party is not None and any(a.get("about_your_material") for a in alerts):
        title += (f": addressed to {party}, and about material {party} exported, addressed to the "
                  f"party marked (your material)")
    return title + "\n" + table(
        ("SEVERITY", "KIND", "TRACE", "LOT", "PARTY", "QUANTITY", "SINCE (UTC)", "WHAT"), rows,
        right={5}, width=terminal_width(), paint={0: severity_colour} if colour_enabled() else None,
    )


def _qty(amount: str | None, unit: str | None) -> str:
    return f"{fmt_amount(amount)} {unit}" if amount is not None else ""


def _cmd_rejects(args: argparse.Namespace) -> int:
    ledger = _Ledger(args, must_exist=True)
    try:
        reader = getattr(ledger.log, "rejects", None)
        if reader is None:
            raise CliError("this log keeps no rejects table (Kafka sends them to the dead-letter topic)")
        rows = [r.shown() for r in reader(limit=args.limit or REJECTS_SHOWN_ALL)]
    finally:
        ledger.close()
    if args.json:
        print(json.dumps([r._asdict() for r in rows], indent=2))
    elif not rows:
        print("no rejected input")
    else:
        print(table(("SOURCE", "LINE", "PROBLEMS"), [(r.source, r.line, r.problems) for r in rows], right={1},
                    width=terminal_width()))
    return EXIT_OK


def _cmd_replay(args: argparse.Namespace) -> int:
    from projections.sqlite_store import SQLiteProjectionStore

    ledger = _Ledger(args)
    try:
        damaged = verify_log(ledger.log)
        if damaged.problem_count:
            for problem in damaged.problems:
                print(f"  {problem}", file=sys.stderr)
            raise _Refused(
                f"the log has {damaged.problem_count} damaged record(s) (listed above; first: "
                f"{damaged.problems[0]}); nothing was replayed or replaced: restore the log from a backup, "
                f"or see docs/OPERATIONS.md, 'ledger verify'")
        live = ledger.store
        live_fp = live.fingerprint()
        # The store's own check is part of the comparison: a full scan reads
        # every row even when an index has lost some, so the digests above
        # can agree while a query through the index answers otherwise.
        _method, integrity = live.integrity_problems()
        live_fp["integrity"] = "ok" if not integrity else "damaged: " + "; ".join(integrity)
        rebuilt_path = _rebuild_path(ledger.store_url)
        for suffix in ("", "-wal", "-shm"):
            Path(str(rebuilt_path) + suffix).unlink(missing_ok=True)
        rebuilt = SQLiteProjectionStore(rebuilt_path)
        try:
            # The replay refuses what the live projection refused: the same registry.
            rebuilt.register_parties(live.registered_parties())
            progress = _Progress("replayed records", False)
            totals = rebuild(ledger.log, rebuilt, policy=ledger.policy, progress=lambda t: progress(t.records))
            rebuilt_fp = rebuilt.fingerprint()
            _method, integrity = rebuilt.integrity_problems()
            rebuilt_fp["integrity"] = "ok" if not integrity else "damaged: " + "; ".join(integrity)
        except BaseException:
            rebuilt.close()  # a failed rebuild (a full disk) leaves no scratch store behind
            for suffix in ("", "-wal", "-shm", ".lock"):
                Path(str(rebuilt_path) + suffix).unlink(missing_ok=True)
            raise
        rebuilt.close()
    finally:
        ledger.close()
    same = rebuilt_fp == live_fp
    differing = sorted(k for k in live_fp if live_fp[k] != rebuilt_fp.get(k))
    if args.replace and not same:
        live_path = Path(ledger.store_url[len("sqlite:///"):])
        os.replace(rebuilt_path, live_path)
        for suffix in ("-wal", "-shm"):
            Path(str(live_path) + suffix).unlink(missing_ok=True)
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(str(rebuilt_path) + suffix).unlink(missing_ok=True)
    if args.json:
        print(json.dumps({"identical": same, "records": totals.records, "differing": differing,
                          "fingerprint": rebuilt_fp}, indent=2, sort_keys=True))
    else:
        print(f"replayed {totals.records} records from position 0")
        for name in sorted(live_fp):
            verdict = "identical" if live_fp[name] == rebuilt_fp.get(name) else "DIFFERENT"
            shown = live_fp[name] if name == "integrity" else rebuilt_fp.get(name, "")[:16]
            print(f"  {name:<12} {verdict}  {shown}")
        print("replay: identical" if same else
              "replay: DIFFERENT" + (" (live store replaced by the rebuilt one)" if args.replace else
                                     " (run `ledger replay --replace` to adopt the rebuilt projections)"))
    return EXIT_OK if same else EXIT_ERROR


class _Refused(CliError):
    exit_status = EXIT_DAMAGED


def _rebuild_path(store_url: str) -> Path:
    if not store_url.startswith("sqlite:///"):
        raise CliError("replay compares against a SQLite store here; for PostgreSQL see docs/OPERATIONS.md")
    return Path(store_url[len("sqlite:///"):] + ".replay")


def _cmd_schema(args: argparse.Namespace) -> int:
    if args.alerts:
        from consumers.kafka.alert_publisher import alert_json_schema

        schema = alert_json_schema()
    else:
        schema = event_json_schema()
    text = json.dumps(schema, indent=2, sort_keys=True)
    if args.output:
        try:
            Path(args.output).write_text(text + "\n")
        except OSError as error:
            raise CliError(f"cannot write {args.output!r}: {error.strerror}") from None
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text)
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    story = EXAMPLES_DIR / "story-2019.jsonl"
    # The story carries its party registry and its licensing authorities
    # (docs/COMPLIANCE.md, "Who may say what"), unless a policy is given.
    if not args.policy and not os.environ.get(POLICY_ENV):
        args.policy = str(EXAMPLES_DIR / "policy.toml")
    ledger = _Ledger(args)
    print("The 2019 story (examples/story-2019.jsonl), recorded on the embedded log")
    print(f"  log:   {ledger.log_url}\n  store: {ledger.store_url}\n")
    try:
        parties = parties_from_json((EXAMPLES_DIR / "parties.json").read_text(encoding="utf-8"),
                                    source="examples/parties.json")
        ledger.store.register_parties(parties)
        # The story says when each report reached the ledger (recorded_at), so
        # --known-at shows what was known when: KR-SEMI reported its 70 units
        # consumed on 2019-10-20, after the 90 days ran out (docs/STORY.md).
        report = _ingest(ledger, str(story), progress_forced=False, trust_recorded_at=True)
        _project(ledger, False, trust_recorded_at=True)
        _print_ingest(report, "examples/story-2019.jsonl")
        now = utc_now()
        rows = whereabouts(ledger.store, None, now=now, policy=ledger.policy)
        alerts = standing_alerts(ledger.store, now=now, policy=ledger.policy)
    finally:
        ledger.close()
    print()
    print(_whereabouts_table(rows, None, None))
    print()
    print(_alerts_table(alerts))
    print()
    replay_args = argparse.Namespace(log=ledger.log_url, store=ledger.store_url, policy=args.policy,
                                     replace=False, json=False)
    return _cmd_replay(replay_args)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


if __name__ == "__main__":
    sys.exit(main())

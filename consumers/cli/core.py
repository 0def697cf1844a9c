"""`ledger`: the command line of the traceability ledger.

Thin by design: parse arguments, open adapters through bootstrap, call the
service functions, print.  Exit status: 0 ok; 1 error; 2 usage error;
3 some input was rejected (the rest was recorded).

This module holds ``main``, the parser and the help of the core commands;
what they do is in record.py (ingest, project, replay, demo) and views.py
(whereabouts, alerts, rejects).  Each module of EXTENSIONS adds a command
group of its own; common.py is what they all share.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import sqlite3
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from eventsourcing.persistence import PersistenceError

from consumers import bootstrap
from consumers.cli.common import (EXIT_ERROR, EXIT_OK, EXIT_USAGE, CliError, Terminated, UsageError, argument, as_of,
                                  count, output, software_version, storage, subcommands)
from consumers.cli.record import run_demo, run_ingest, run_project, run_replay
from consumers.cli.views import REJECTS_SHOWN_DEFAULT, run_alerts, run_rejects, run_whereabouts
from consumers.log_check import LogMismatch
from consumers.parallel_rebuild import PARALLEL_RECORDS_MIN, WORKERS_MAX, WorkerLost
from ledger.alerts import ALERT_KINDS
from ledger.events import event_json_schema
from ledger.parties import PartyError
from ledger.policy import PolicyError
from ledger.ports import LogUnavailable
from projections.queries import NotFound
from projections.store import StoreUnavailable

__all__ = ["main"]

# Modules that add command groups: each defines ``register(command)``, where
# ``command(name, help, run, epilog="")`` adds a subcommand (common.Command).
EXTENSIONS: tuple[str, ...] = ("consumers.cli.compliance", "consumers.cli.kafka", "consumers.cli.verify",
                               "consumers.cli.parties", "consumers.cli.http")

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

output:
  Every command that prints for a program takes --json and -o json|csv
  (-o json is --json); -o csv prints the answer's rows (a summary: one row),
  with text a spreadsheet would evaluate neutralised ('=HYPERLINK(...)).

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
  0 every line recorded (or already recorded).  A conflict is exit 0 too:
    a line with the same reporter and event_id as a recorded report but
    other content is recorded, the first recorded version is used, and the
    conflict is a conflicting_report alert and, in --json, "conflicts";
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

columns:
  FROM         the shipper, or the parent lot (re-export, ship-back)
  HOLDER       who holds the lot now, with its country
  DECLARED     what the holder's last stock declaration still explains
               (declared on hand, less what left the lot after it)
  UNACCOUNTED  not explained by the deadline; how long: `ledger alerts`
               (its SINCE is when the alert first stood)
  SINCE        the UTC date the lot's figures last changed (its latest
               movement, else its shipment): not since when a quantity is
               unaccounted (--json: since; the audit's columns sheet says
               the same)

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

columns:
  SEVERITY     high, medium or low (--severity)
  KIND         what is wrong (--kind; the kinds are listed above)
  PARTY        who is to answer; "(your material)" with --party, see above
  QUANTITY     the quantity at issue, in the lot's unit
  SINCE (UTC)  the date the alert first stood, its first deadline passing
               (--json: since; due_at is its latest step, e.g. when an
               unaccounted quantity last changed)
  WHAT         the alert in words, naming lot, party and deadline

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

exit status:
  0 ok;  2 usage error (a shell it does not complete).
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

With more than one core, the rebuild runs in several processes (--workers):
each rebuilds a share of the traces, and what crosses traces (license
ceilings, an event id reported in two traces) is counted again over the
whole store at the end.  The answer is the same with any number of workers.
Stopped by Ctrl-C or SIGTERM, it replaces nothing: its workers stop and
its scratch store and their shares are removed.  Killed outright (kill -9),
it replaces nothing either: its workers stop and remove their shares, and
the next replay removes the scratch store it left.  One replay of a store
at a time: a second is refused while one runs.

examples:
  ledger replay
  ledger replay --workers 1        in this process only
  ledger replay --replace          adopt the rebuilt projections if they differ
  ledger replay --policy p.toml    with other deadlines; a difference prints the
                                   --replace command that adopts it, with the same
                                   --policy, --log, --store (and LEDGER_HOME)

exit status:
  0 identical;  1 different, or storage could not be opened;  2 usage error;
  4 the log is damaged: refused, nothing replaced (see `ledger verify`);
  130 stopped by Ctrl-C;  143 stopped by SIGTERM.
"""

SCHEMA_EPILOG = """\
The JSON Schema of every report the ledger accepts, for integrators who
validate before they send.  Refused reports are described field by field
on ingest (see `ledger ingest --help`).  It is JSON: -o json prints it as
without -o; -o csv and -o table are usage errors.

examples:
  ledger schema --out ledger-event.schema.json
  ledger schema > ledger-event.schema.json
  ledger schema --alerts -o json | jq .properties

exit status:
  0 ok;  1 the output file could not be written;  2 usage error.
"""

DEMO_EPILOG = """\
Records examples/story-2019.jsonl into LEDGER_HOME (default ./.ledger) and
prints the whereabouts, the standing alerts and a replay check.  Running it
again is a no-op: every report is already recorded.  A home whose ledger
began with other reports is refused: the demo would add a fictitious story
and its party registry to someone's records.

examples:
  LEDGER_HOME=$(mktemp -d) ledger demo
  ledger demo && ledger trace TR-PR-2019-0003      then look around

exit status:
  0 ok;  1 the replay differed, storage could not be opened, or the home holds other reports;  2 usage error.
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extras = parser.parse_known_args(argv)
    if not getattr(args, "command", None):
        if extras:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        parser.print_help()
        return EXIT_USAGE
    # A usage error is said by the command it is about (its usage line, not
    # the top level's): the innermost subcommand's parser.
    usage = getattr(args, "command_parser", parser)
    if extras:
        usage.error(f"unrecognized arguments: {' '.join(extras)}")
    output = getattr(args, "output", None)
    if output in ("table", "csv") and getattr(args, "json", False):
        usage.error(f"--json and -o {output} ask for two outputs: give one")
    if output == "json":
        args.json = True
    try:
        return args.run(args)
    except UsageError as error:
        usage.error(str(error))
    except (CliError, NotFound, PolicyError, PartyError, bootstrap.ConfigError, LogUnavailable,
            StoreUnavailable, LogMismatch, WorkerLost) as error:
        print(f"ledger {args.command}: {_broker_not_answering(error, args) or error}", file=sys.stderr)
        return getattr(error, "exit_status", EXIT_ERROR)
    except KeyboardInterrupt as stop:
        how = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
        print(f"ledger {args.command}: {how}; {INTERRUPTED.get(args.command, INTERRUPTED_DEFAULT)}",
              file=sys.stderr)
        return EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except (OSError, sqlite3.Error, PersistenceError) as error:
        # Storage failing under a command (a full disk, an I/O error, a file
        # damaged while in use): one line saying what and what to do.
        print(f"ledger {args.command}: {_storage_failure(error)}", file=sys.stderr)
        return EXIT_ERROR


def _broker_not_answering(error: BaseException, args: argparse.Namespace) -> str | None:
    """A Kafka log whose broker never answered, said as that (not as
    kafka-python's "KafkaTimeoutError: Unable to bootstrap from [...]")."""
    if not isinstance(error, LogUnavailable):
        return None
    try:
        from kafka.errors import KafkaTimeoutError
    except ImportError:  # no Kafka client installed: no Kafka log either
        return None
    cause = error.__cause__
    if not (isinstance(cause, KafkaTimeoutError) and "unable to bootstrap" in str(cause).lower()):
        return None
    url = getattr(args, "log", None) or bootstrap.default_log_url()
    where = url.split("://", 1)[-1].split("/", 1)[0]
    return (f"the Kafka broker at {where} did not answer: start one there, or name another in --log; "
            f"to try the ledger on Kafka, `PORT={where.rsplit(':', 1)[-1]} make kafka` starts one (docs/KAFKA.md)")


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ledger", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {software_version()}")
    command = subcommands(parser, "command", "COMMAND")

    p = command("ingest", "Record reports from a JSON Lines file (or - for standard input).", run_ingest,
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
    output(p, "the summary as one row (the first rejected lines as JSON text)", json_is="the summary as JSON")
    storage(p)

    p = command("project", "Bring the projections up to date with the log.", run_project,
                epilog=PROJECT_EPILOG)
    p.add_argument("--progress", action="store_true",
                   help="progress lines on stderr even when it is not a terminal (default: only on a terminal)")
    p.add_argument("--trust-recorded-at", action="store_true",
                   help="keep the recorded_at each report carries (an operator migrating a system of record); "
                        "by default the ledger stamps it: on Kafka with the broker's append time")
    storage(p)

    p = command("whereabouts", "Where every unit of a lot or trace is, and since when.", run_whereabouts,
                epilog=WHEREABOUTS_EPILOG)
    p.add_argument("ident", nargs="?", metavar="LOT|TRACE", help="a lot id or trace id (default: every lot)")
    as_of(p, "one row per lot, every field, for a spreadsheet")
    storage(p)

    p = command("alerts", "Alerts standing now (or as of T).", run_alerts, epilog=ALERTS_EPILOG)
    p.add_argument("--party", help="only alerts addressed to this party id, and those about material it exported "
                                   "at the origin (default: every party)")
    p.add_argument("--trace", help="only alerts of this trace id (default: every trace)")
    p.add_argument("--journal", action="store_true",
                   help="show the raised/updated/resolved journal instead, oldest first")
    p.add_argument("--follow", action="store_true",
                   help="follow the Kafka alerts topic of --log, de-duplicated by transition id "
                        "(--until-end stops once caught up, --max-idle S after S idle seconds)")
    p.add_argument("--max-idle", type=float, metavar="S", help="with --follow: stop after S idle seconds")
    p.add_argument("--until-end", action="store_true",
                   help="with --follow: stop once every transition committed when it started is printed")
    p.add_argument("--severity", choices=("high", "medium", "low"), action="append",
                   help="only alerts of this severity (repeat for several; default: all)")
    p.add_argument("--kind", action="append", metavar="KIND", type=argument(_alert_kind),
                   help="only alerts of this kind, e.g. unaccounted, premise_deviation (repeat for several; "
                        "the kinds are listed below)")
    p.add_argument("--limit", metavar="N", type=count, default=0,
                   help="show at most N, the oldest standing first (default 0: all)")
    as_of(p, "one row per alert (with --journal: per transition), every field, for a spreadsheet")
    storage(p)

    p = command("completion", "Print a shell completion script for ledger.", _cmd_completion,
                epilog=COMPLETION_EPILOG)
    p.add_argument("shell", choices=("bash", "zsh", "tcsh"), help="the shell to complete in")

    p = command("rejects", "Input lines that were rejected, with the reasons.", run_rejects,
                epilog=REJECTS_EPILOG)
    output(p, "one row per rejected line: source, line, problems, the text as sent", json_is="JSON for scripts")
    p.add_argument("--limit", metavar="N", type=count, default=REJECTS_SHOWN_DEFAULT,
                   help=f"show at most N, oldest first (default: {REJECTS_SHOWN_DEFAULT}; 0: all)")
    storage(p, store=False, policy=False)  # the rejects are kept in the log

    p = command("replay", "Rebuild every projection from position 0 and compare with the live one.",
                run_replay, epilog=REPLAY_EPILOG)
    p.add_argument("--replace", action="store_true",
                   help="if they differ, replace the live store with the rebuilt one (default: only compare)")
    p.add_argument("--workers", metavar="N|auto", type=argument(_workers), default=None,
                   help="rebuild with N processes, each a share of the traces (default: auto: one per core, "
                        f"at most {WORKERS_MAX}, for a log of {PARALLEL_RECORDS_MIN:,} records or more; else 1)")
    output(p, "one row: identical, records, the read models that differ and each one's digest")
    storage(p)

    p = command("schema", "Write the JSON Schema of the event contract.", _cmd_schema, epilog=SCHEMA_EPILOG)
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("-o", "--output", metavar="json", type=argument(_schema_output),
                   help="json (the default: the schema is JSON only); a file name here is read as --out FILE, "
                        "as before (deprecated)")
    p.add_argument("--alerts", action="store_true",
                   help="the schema of the alert messages on the Kafka alerts topic instead")

    p = command("demo", "Run the 2019 story (docs/STORY.md) on the embedded log and show what surfaces.",
                run_demo, epilog=DEMO_EPILOG)
    storage(p)

    for module_name in EXTENSIONS:
        # An extension that cannot load (a missing optional dependency, a
        # broken install) costs its own subcommands, not ingest and the rest.
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            print(f"ledger: the commands of {module_name} are unavailable: {error}", file=sys.stderr)
            continue
        module.register(command)
    return parser


def _alert_kind(text: str) -> str:
    """A kind the ledger raises: a typo (Unaccounted, nope) is a usage error,
    never a filter that matches nothing and reads as "no alerts standing"."""
    if text not in ALERT_KINDS:
        raise ValueError(f"{text!r} is not an alert kind; the kinds: {', '.join(ALERT_KINDS)}")
    return text


def _cmd_completion(args: argparse.Namespace) -> int:
    import shtab

    print(shtab.complete(_parser(), shell=args.shell))
    return EXIT_OK


# What Ctrl-C leaves behind, said on stderr (exit 130).
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM, as shells report them
INTERRUPTED_DEFAULT = "what was committed is kept, re-run to resume"
INTERRUPTED = {"replay": "nothing was replaced, the live store is as it was; its scratch store is removed"}


def _workers(text: str) -> int | None:
    """`replay --workers`: auto, or 1 to WORKERS_MAX processes."""
    if text == "auto":
        return None
    if not text.isdigit() or not 1 <= int(text) <= WORKERS_MAX:
        raise ValueError(f"{text!r} is not a number of processes: auto, or 1 to {WORKERS_MAX} (1: in this process)")
    return int(text)


def _schema_output(text: str) -> str:
    """`schema -o`: json, or (deprecated) the file name -o used to take."""
    if text in ("csv", "table"):
        raise ValueError(f"the schema is JSON only: -o json, or no -o ({text!r} is not one)")
    return text


def _cmd_schema(args: argparse.Namespace) -> int:
    if args.output not in (None, "json"):
        # `schema -o FILE` wrote FILE before -o meant json|csv on every command.
        if args.out:
            raise UsageError(f"-o {args.output!r} and --out {args.out!r}: give --out FILE only")
        print(f"ledger schema: warning: -o FILE is deprecated, write --out {args.output}", file=sys.stderr)
        args.out = args.output
    if args.alerts:
        from consumers.kafka.alert_publisher import alert_json_schema

        schema = alert_json_schema()
    else:
        schema = event_json_schema()
    text = json.dumps(schema, indent=2, sort_keys=True)
    if args.out:
        try:
            Path(args.out).write_text(text + "\n")
        except OSError as error:
            raise CliError(f"cannot write {args.out!r}: {error.strerror}") from None
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return EXIT_OK

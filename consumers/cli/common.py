"""What every command group of `ledger` shares: exit statuses, the one error
a command raises, the adapters a command opens (``Ledger``), progress on
stderr, and the argument types and option groups that read the same way in
every command."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from consumers import bootstrap
from consumers.bootstrap import load_policy
from ledger.times import end_of
from projections.retry import retry
from projections.store import StoreUnavailable

__all__ = [
    "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_REJECTED", "EXIT_DAMAGED", "CliError", "UsageError", "Refused", "Ledger",
    "Progress", "Command", "subcommands", "storage", "as_of", "argument", "when", "count", "software_version",
    "iso", "output", "print_csv", "flat", "OUTPUTS",
]

T = TypeVar("T")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REJECTED, EXIT_DAMAGED = 0, 1, 2, 3, 4
PROGRESS_INTERVAL_S = 1.0
STORE_OPEN_ATTEMPTS, STORE_OPEN_BACKOFF_S = 5, 0.2


class CliError(Exception):
    """What a command says went wrong: one line on stderr, exit 1 (or ``exit_status``)."""


class UsageError(CliError):
    """The command was asked for something it cannot be asked (a missing or
    contradictory option): said under the command's usage line, exit 2, as
    argparse says its own."""

    exit_status = EXIT_USAGE


class Refused(CliError):
    """Damage found: the command refused to go on (exit 4)."""

    exit_status = EXIT_DAMAGED


# -- adding commands ----------------------------------------------------------------


class Command(Protocol):
    """``command(name, help, run, epilog="")``: a parser whose ``run(args) -> int`` is called."""

    def __call__(self, name: str, help_text: str, run: Callable[[argparse.Namespace], int],
                 epilog: str = "") -> argparse.ArgumentParser: ...


def subcommands(parser: argparse.ArgumentParser, dest: str, metavar: str) -> Command:
    """Give ``parser`` subcommands; returns what adds one (its help is its description too)."""
    sub = parser.add_subparsers(dest=dest, metavar=metavar)

    def command(name: str, help_text: str, run: Callable[[argparse.Namespace], int],
                epilog: str = "") -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        # The innermost command's parser wins (a subcommand's defaults are set
        # after its parent's): core.main says a usage error under its usage line.
        p.set_defaults(run=run, command_parser=p)
        return p

    return command


def storage(p: argparse.ArgumentParser, *, log: bool = True, store: bool = True, policy: bool = True) -> None:
    """--log, --store and --policy: only those the command uses (an option
    it would ignore is not offered: `parties add --policy` would read as if
    deadlines mattered to the registry)."""
    if log:
        p.add_argument("--log", metavar="URL", help="event log URL (default: sqlite:///$LEDGER_HOME/log.db)")
    if store:
        p.add_argument("--store", metavar="URL",
                       help="projection store URL (default: sqlite:///$LEDGER_HOME/projections.db)")
    if policy:
        p.add_argument("--policy", metavar="FILE",
                       help="deadlines, TOML (default: $LEDGER_POLICY, else built in: 90 days to "
                            "account for a receipt, 30 in transit, 30 to confirm a ship-back)")


def as_of(p: argparse.ArgumentParser, csv_is: str) -> None:
    """--as-of, --known-at, and the outputs (``output``): ``csv_is`` says what a CSV row is."""
    p.add_argument("--as-of", metavar="T", type=when,
                   help="where things stood at T, by when things happened (default: now); "
                        "2019-09-01 means the end of that day, UTC; or 2019-09-01T12:00:00+09:00")
    p.add_argument("--known-at", metavar="K", type=when,
                   help="only what the ledger had been told by K (default: everything recorded)")
    output(p, csv_is)


OUTPUTS = ("table", "json", "csv")


def output(p: argparse.ArgumentParser, csv_is: str, *, json_is: str = "stable JSON for scripts") -> None:
    """``--json`` and ``-o table|json|csv``, the same in every command that
    prints for a program: ``-o json`` is ``--json``; ``csv_is`` says what the
    CSV's rows are.  core.main maps ``-o json`` to ``args.json``."""
    p.add_argument("--json", action="store_true", help=f"{json_is} (default: text); quantities are decimal strings")
    p.add_argument("-o", "--output", choices=OUTPUTS, default=None,
                   help=f"table (default), json (= --json), or csv: {csv_is}")


def print_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, *,
              header: bool = True) -> None:
    """Rows as CSV on stdout: a header of ``columns`` (default: the first
    row's keys), quantities as exact decimal text, lists of plain values
    joined by spaces, anything nested as JSON text, true and false as JSON
    writes them (not Python's True and False).  Text a spreadsheet
    would evaluate is neutralised by the audit export's one rule
    (``projections.audit.csv_cell``: ``=HYPERLINK(...)`` -> ``'=HYPERLINK(...)``,
    while -30 in a quantity column stays a number).  ``header=False``: rows
    only, for a stream that printed its header once."""
    import csv
    import json

    from projections.audit import csv_cell

    if columns is None:
        if not rows:
            return
        columns = list(rows[0])
    writer = csv.writer(sys.stdout, lineterminator="\n")
    if header:
        writer.writerow(columns)
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, (list, tuple)) and all(not isinstance(v, (dict, list, tuple)) for v in value):
                value = " ".join(map(str, value))
            elif isinstance(value, (dict, list, tuple)):
                value = json.dumps(value, sort_keys=True, default=str)
            cells.append(csv_cell(column, value))
        writer.writerow(cells)
    sys.stdout.flush()


def flat(summary: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested summary as one CSV row: {"log": {"records": 3}} -> {"log.records": 3}."""
    row: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, Mapping) and value:
            row.update(flat(value, f"{prefix}{key}."))
        else:
            row[f"{prefix}{key}"] = value
    return row


# -- argument types -----------------------------------------------------------------


def argument(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse ``type`` from a parser that raises ValueError naming the
    value: its message becomes the usage error (exit 2), said as
    ``ledger COMMAND: error: argument --OPTION: MESSAGE``."""

    def read(text: str) -> T:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    read.__name__ = parse.__name__
    return read


when = argument(end_of)


def count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (0, 1, 2, ...)")
    return value


def software_version() -> str:
    """The installed package's version (what an audit report names)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("traceability-ledger")
    except PackageNotFoundError:
        return "unknown (not installed)"


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# -- what a command opens -----------------------------------------------------------


class Ledger:
    """The adapters one command uses, opened from its arguments.

    ``must_exist``: for commands that only read.  An embedded log or SQLite
    store that is not there is an error, not an empty ledger: a mistyped
    LEDGER_HOME must not answer "no alerts standing".
    """

    def __init__(self, args: argparse.Namespace, *, must_exist: bool = False):
        self.log_url = getattr(args, "log", None) or bootstrap.default_log_url()
        self.store_url = getattr(args, "store", None) or bootstrap.default_store_url()
        self._policy_file = getattr(args, "policy", None)
        # A command that takes --policy reads it at once (a bad file is the
        # first thing said); one that takes none, only if it ever asks.
        self._policy = load_policy(self._policy_file) if hasattr(args, "policy") else None
        self.must_exist = must_exist
        self._log = None
        self._store = None

    @property
    def policy(self):  # type: ignore[no-untyped-def]
        """Read when a command needs the deadlines: a command that takes no
        --policy does not fail on a broken $LEDGER_POLICY it never uses."""
        if self._policy is None:
            self._policy = load_policy(self._policy_file)
        return self._policy

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


class Progress:
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


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, systemd, ``docker stop``), raised where the command
    is, so that it cleans up as it does for Ctrl-C; ``ledger`` then exits
    with 143 (128 + 15, as a shell reports a process SIGTERM ended)."""


@contextlib.contextmanager
def sigterm_cleans_up() -> Iterator[None]:
    """Inside the block, SIGTERM raises ``Terminated`` (only the main thread may set a handler)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(_signum: int, _frame: object) -> None:
        raise Terminated()

    before = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


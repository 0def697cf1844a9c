"""`ledger ingest`, `project`, `replay` and `demo`: what writes the ledger and
checks what it wrote.  The parser and the help of each is in core.py."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from collections.abc import Iterator
from typing import Any

from consumers.bootstrap import POLICY_ENV
from consumers.cli.common import (EXIT_ERROR, EXIT_OK, EXIT_REJECTED, CliError, Ledger, Progress, Refused, flat,
                                  print_csv, sigterm_cleans_up)
from consumers.cli.views import alerts_table, whereabouts_table
from consumers.render import plural
from consumers.ingest import IngestReport, LongLine, Reject, ingest_lines, read_lines, reject_row
from consumers.log_check import verify_log
from consumers.log.embedded import EmbeddedLog
from consumers.parallel_rebuild import ParallelRebuild, workers_for
from consumers.projector import BatchCounts, catch_up, rebuild, utc_now
from ledger.parties import by_id, parties_from_json
from projections.queries import standing_alerts, whereabouts

__all__ = ["run_ingest", "run_project", "run_replay", "run_demo"]

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
BLANK = " \t\ufeff"  # around a line: white space, and the byte-order mark a spreadsheet export writes


def run_ingest(args: argparse.Namespace) -> int:
    ledger = Ledger(args)
    try:
        ingested = _ingest(ledger, args.file, progress_forced=args.progress,
                           trust_recorded_at=args.trust_recorded_at)
        report = ingested.report
        projected = None if args.no_project else _project(ledger, args.progress, whole_traces=True,
                                                          trust_recorded_at=args.trust_recorded_at)
        detects_duplicates = ledger.log.detects_duplicates
    finally:
        ledger.close()
    if args.output == "csv":
        print_csv([_ingest_json(report, projected)])
    elif args.json:
        print(json.dumps(_ingest_json(report, projected), indent=2))
    else:
        _print_ingest(report, args.file, detects_duplicates=detects_duplicates)
    for advice in _input_advice(ingested, args.file):
        print(f"ledger ingest: {advice}", file=sys.stderr)
    return EXIT_REJECTED if report.rejected else EXIT_OK


@dataclass(frozen=True)
class _Ingested:
    report: IngestReport
    # The first line with anything on it, without the blanks around it ("": none):
    # what the input looks like, to tell someone who sent the wrong format.
    opening: str


def _ingest(ledger: Ledger, file: str, *, progress_forced: bool,
            trust_recorded_at: bool = False) -> _Ingested:
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
    progress = Progress("ingested lines", progress_forced, size)
    opening = ""

    def counting(lines):  # type: ignore[no-untyped-def]
        nonlocal opening
        for line in lines:
            if isinstance(line, LongLine):
                progress.bytes_read += line.length_bytes
            else:
                progress.bytes_read += (len(line) if line.isascii()
                                        else len(line.encode("utf-8", "surrogateescape")))
            if not opening:
                opening = (line.head if isinstance(line, LongLine) else line).strip(BLANK)
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
    return _Ingested(report, opening)


def _input_advice(ingested: _Ingested, file: str) -> list[str]:
    """Warnings about input that was not what ingest reads: nothing at all,
    or one JSON array (an export from a tool that writes JSON, not JSON Lines)."""
    name = "<stdin>" if file == "-" else repr(file)
    if not ingested.opening:
        return [f"warning: nothing was read from {name}: "
                + ("it is empty" if not ingested.report.lines else "it holds only blank lines")]
    if ingested.opening.startswith("["):
        return [f"hint: {name} starts with '[', as a JSON array does; the ledger reads JSON Lines, one report "
                f"(one JSON object) per line: `jq -c '.[]' FILE` turns an array into that"]
    return []


def _project(ledger: Ledger, progress_forced: bool, *, trust_recorded_at: bool = False,
             whole_traces: bool = False) -> BatchCounts:
    """Apply the log to the store, batch by batch from its tracked offsets
    (``catch_up``): each batch commits with its offsets, so a killed
    `ledger project` resumes after its last batch and two at once share the
    work.

    ``whole_traces`` (`ledger ingest`): a store that has projected nothing
    from this log yet (the first ingest into a home, an import) is built as
    replay builds one, the embedded log read trace by trace and each trace
    folded once (``rebuild``), not again in every 10,000-record batch that
    brings one of its reports: 0.61x the CPU at 100k (BENCHMARKS.md,
    "Session 9").  Its offsets are recorded at its end; killed before that,
    the next ingest or project applies the log again from 0, and what is
    held comes back as duplicates.  A store that tracks the log, or a Kafka
    log, is caught up as above."""
    progress = Progress("projected records", progress_forced)
    project = rebuild if whole_traces else catch_up
    totals = project(ledger.log, ledger.store, policy=ledger.policy, trust_recorded_at=trust_recorded_at,
                     progress=lambda t: progress(t.records))
    progress.done(totals.records)
    return totals


def _print_ingest(report: IngestReport, file: str, *, detects_duplicates: bool = True) -> None:
    file = "<stdin>" if file == "-" else file
    if detects_duplicates:
        print(f"{file}: {report.lines} {plural(report.lines, 'line')}: {report.accepted} recorded, "
              f"{report.duplicates} already recorded (no-op), {report.conflicts} conflicting, "
              f"{report.rejected} rejected")
    else:
        print(f"{file}: {report.lines} {plural(report.lines, 'line')}: {report.accepted} sent to the log, "
              f"{report.rejected} rejected "
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


def run_project(args: argparse.Namespace) -> int:
    ledger = Ledger(args)
    try:
        totals = _project(ledger, args.progress, trust_recorded_at=args.trust_recorded_at)
    finally:
        ledger.close()
    print(f"projected {totals.records} {plural(totals.records, 'record')} in {totals.batches} "
          f"{plural(totals.batches, 'batch', 'batches')} ({totals.duplicates} {plural(totals.duplicates, 'duplicate')}, "
          f"{totals.dead_letters} dead {plural(totals.dead_letters, 'letter')})")
    return EXIT_OK


def run_replay(args: argparse.Namespace) -> int:
    # SIGTERM as Ctrl-C: the workers stop, the scratch store and the shares
    # are removed, the live store is left as it was.
    with sigterm_cleans_up():
        return _replay(args)


def _replay(args: argparse.Namespace) -> int:
    ledger = Ledger(args)
    with contextlib.ExitStack() as alone:
        try:
            rebuilt_path = _rebuild_path(ledger.store_url)
            alone.enter_context(_only_replay(rebuilt_path))
        except BaseException:
            ledger.close()
            raise
        return _replay_alone(args, ledger, rebuilt_path)


@contextlib.contextmanager
def _only_replay(rebuilt_path: Path) -> Iterator[None]:
    """One replay of a store at a time: a second would remove the first's
    scratch store and shares as a killed replay's, and the first would then
    compare (and, with --replace, adopt) a partial rebuild.  An flock on
    ``<scratch store>.running``, removed while held at the end (a replay that
    took the lock on a file removed meanwhile takes it again on the new one)."""
    path = Path(f"{rebuilt_path}.running")
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CliError(f"another `ledger replay` of this store is running (it holds {path}); nothing was "
                           f"replayed: wait for it to end, or stop it (Ctrl-C, kill PID)") from None
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _replay_alone(args: argparse.Namespace, ledger: Ledger, rebuilt_path: Path) -> int:
    from projections.sqlite_store import SQLiteProjectionStore, remove_store_files

    # The check and the rebuild read one snapshot of the log, so the rebuild
    # applies the very bytes checked against their digests and can trust them.
    # Workers in processes of their own (--workers) read in snapshots of their
    # own: they read what was checked if nobody commits to the log from before
    # the check on, and they start at once, while this process checks the log
    # and reads the live store (consumers/parallel_rebuild.py).
    snapshot = contextlib.ExitStack()
    try:
        log_changed = (snapshot.enter_context(ledger.log.commits_watched())
                       if isinstance(ledger.log, EmbeddedLog) else None)
        snapshot.enter_context(ledger.log.snapshot())
        live = ledger.store
        remove_store_files(rebuilt_path)  # a killed replay's
        rebuilt = None
        try:
            rebuilt = SQLiteProjectionStore(rebuilt_path)
            # The replay refuses what the live projection refused: the same registry.
            rebuilt.register_parties(live.registered_parties())
            records = sum(ledger.log.end_offsets().values())
            workers = workers_for(args.workers, records) if isinstance(ledger.log, EmbeddedLog) else 1
            parallel = (snapshot.enter_context(
                ParallelRebuild(ledger.log, rebuilt, workers=workers, policy=ledger.policy, digests_checked=True,
                                log_changed=log_changed)) if workers > 1 else None)
            damaged = verify_log(ledger.log, contract=False)
            if damaged.problem_count:
                for problem in damaged.problems:
                    print(f"  {problem}", file=sys.stderr)
                raise Refused(
                    f"the log has {damaged.problem_count} damaged {plural(damaged.problem_count, 'record')} "
                    f"(listed above; first: "
                    f"{damaged.problems[0]}); nothing was replayed or replaced: restore the log from a backup, "
                    f"or see docs/OPERATIONS.md, 'ledger verify'")
            live_fp = live.fingerprint()
            # The store's own check is part of the comparison: a full scan reads
            # every row even when an index has lost some, so the digests above
            # can agree while a query through the index answers otherwise.
            _method, integrity = live.integrity_problems()
            live_fp["integrity"] = "ok" if not integrity else "damaged: " + "; ".join(integrity)
            progress = Progress("replayed records", False)
            processes = 1
            if parallel is not None:
                totals = parallel.finish(progress=lambda t: progress(t.records))
                processes = parallel.processes
            else:
                totals = rebuild(ledger.log, rebuilt, policy=ledger.policy, progress=lambda t: progress(t.records),
                                 digests_checked=True)
            rebuilt_fp = rebuilt.fingerprint()
            _method, integrity = rebuilt.integrity_problems()
            rebuilt_fp["integrity"] = "ok" if not integrity else "damaged: " + "; ".join(integrity)
        except BaseException:  # a full disk, damage found, ^C (even while the scratch store is made)
            snapshot.close()  # the workers stop, their shares are removed
            if rebuilt is not None:
                rebuilt.close()  # a failed rebuild leaves no scratch store behind
            remove_store_files(rebuilt_path)
            raise
        rebuilt.close()
    finally:
        snapshot.close()
        ledger.close()
    same = rebuilt_fp == live_fp
    differing = sorted(k for k in live_fp if live_fp[k] != rebuilt_fp.get(k))
    if args.replace and not same:
        live_path = Path(ledger.store_url[len("sqlite:///"):])
        os.replace(rebuilt_path, live_path)
        for suffix in ("-wal", "-shm"):
            Path(str(live_path) + suffix).unlink(missing_ok=True)
        Path(f"{rebuilt_path}.lock").unlink(missing_ok=True)  # the scratch store's batch lock (projections/batch_lock.py)
    else:
        remove_store_files(rebuilt_path)
    replayed = {"identical": same, "records": totals.records, "processes": processes, "differing": differing,
                "fingerprint": rebuilt_fp}
    if args.output == "csv":
        print_csv([flat(replayed)])
    elif args.json:
        print(json.dumps(replayed, indent=2, sort_keys=True))
    else:
        print(f"replayed {totals.records} {plural(totals.records, 'record')} from position 0"
              + (f", in {processes} processes" if processes > 1 else ""))
        for name in sorted(live_fp):
            verdict = "identical" if live_fp[name] == rebuilt_fp.get(name) else "DIFFERENT"
            shown = live_fp[name] if name == "integrity" else rebuilt_fp.get(name, "")[:16]
            print(f"  {name:<12} {verdict}  {shown}")
        print("replay: identical" if same else
              "replay: DIFFERENT" + (" (live store replaced by the rebuilt one)" if args.replace else
                                     f" (run `{replace_command(args)}` to adopt the rebuilt projections)"))
    return EXIT_OK if same else EXIT_ERROR


# What decides a replay's answer besides its options: LEDGER_HOME picks the
# log and store when --log and --store are not given (bootstrap).
REPLAY_ENV = ("LEDGER_HOME", "LEDGER_LOG", "LEDGER_STORE", POLICY_ENV)


def replace_command(args: argparse.Namespace) -> str:
    """The `ledger replay --replace` that adopts the rebuild just compared:
    the same --log, --store and --policy, and the environment variables that
    chose them, so that running it as printed rebuilds the same projections
    (a --policy dropped would rebuild with other deadlines)."""
    import shlex

    log, store = getattr(args, "log", None), getattr(args, "store", None)
    overridden = {"LEDGER_LOG": bool(log), "LEDGER_STORE": bool(store), POLICY_ENV: bool(args.policy),
                  "LEDGER_HOME": bool(log or os.environ.get("LEDGER_LOG"))
                  and bool(store or os.environ.get("LEDGER_STORE"))}
    words = [f"{name}={shlex.quote(os.environ[name])}" for name in REPLAY_ENV
             if os.environ.get(name) and not overridden[name]]
    words.append("ledger replay --replace")
    for option in ("log", "store", "policy"):
        value = getattr(args, option, None)
        if value:
            words.append(f"--{option} {shlex.quote(str(value))}")
    return " ".join(words)


def _rebuild_path(store_url: str) -> Path:
    if not store_url.startswith("sqlite:///"):
        raise CliError("replay compares against a SQLite store here; for PostgreSQL see docs/OPERATIONS.md")
    return Path(store_url[len("sqlite:///"):] + ".replay")


def _only_the_story_in(ledger: Ledger, story: Path) -> None:
    """Refuse a home whose log holds reports other than the story's, unless the
    story came first there (the demo made that home, and reports were added
    after it): the demo would add a fictitious story and register its parties
    in someone's ledger (closing an open registry).  Running it again on its
    own home is a no-op, as before."""
    story_ids = {json.loads(line)["event_id"] for line in story.read_text(encoding="utf-8").splitlines()
                 if line.strip()}
    log = ledger.log
    first = {_event_id(r.value) for partition in log.partitions()
             for r in log.read(partition, 0, len(story_ids) + 1)}
    if first - story_ids and not story_ids <= first:
        raise CliError(f"{ledger.log_url} already holds reports that are not the demo's story: the demo would add "
                       f"a fictitious story and its party registry to them. Run it in a home of its own: "
                       f"LEDGER_HOME=$(mktemp -d) ledger demo, or LEDGER_HOME=$(mktemp -d) make demo")


def _event_id(value: bytes) -> str | None:
    try:
        body = json.loads(value)
        return body.get("event_id") if isinstance(body, dict) else None
    except ValueError:
        return None


def run_demo(args: argparse.Namespace) -> int:
    story = EXAMPLES_DIR / "story-2019.jsonl"
    # The story carries its party registry and its licensing authorities
    # (docs/COMPLIANCE.md, "Who may say what"), unless a policy is given.
    if not args.policy and not os.environ.get(POLICY_ENV):
        args.policy = str(EXAMPLES_DIR / "policy.toml")
    ledger = Ledger(args)
    try:
        _only_the_story_in(ledger, story)
    except CliError:
        ledger.close()
        raise
    print("The 2019 story (examples/story-2019.jsonl), recorded on the embedded log")
    print(f"  log:   {ledger.log_url}\n  store: {ledger.store_url}\n")
    try:
        parties = parties_from_json((EXAMPLES_DIR / "parties.json").read_text(encoding="utf-8"),
                                    source="examples/parties.json")
        ledger.store.register_parties(parties)
        # The story says when each report reached the ledger (recorded_at), so
        # --known-at shows what was known when: KR-SEMI reported its 70 units
        # consumed on 2019-10-20, after the 90 days ran out (docs/STORY.md).
        report = _ingest(ledger, str(story), progress_forced=False, trust_recorded_at=True).report
        _project(ledger, False, trust_recorded_at=True)
        _print_ingest(report, "examples/story-2019.jsonl")
        now = utc_now()
        rows = whereabouts(ledger.store, None, now=now, policy=ledger.policy)
        alerts = standing_alerts(ledger.store, now=now, policy=ledger.policy)
    finally:
        ledger.close()
    print()
    print(whereabouts_table(rows, None, None))
    print()
    print(alerts_table(alerts))
    print()
    replay_args = argparse.Namespace(log=ledger.log_url, store=ledger.store_url, policy=args.policy,
                                     replace=False, json=False, output=None, workers=None)
    return run_replay(replay_args)

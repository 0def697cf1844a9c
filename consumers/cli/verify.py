"""`ledger verify`: is the log whole, is the store whole, and do they belong together?

Registered through consumers.cli.core.EXTENSIONS.  Reads only: nothing is
repaired or recorded (docs/OPERATIONS.md says what to do with each finding).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from consumers.cli.common import EXIT_DAMAGED, EXIT_OK, CliError, Command, Ledger, Progress, flat, output, print_csv, storage
from consumers.log_check import store_belongs_problem, verify_log
from consumers.render import plural
from projections.store import StoreUnavailable

__all__ = ["register", "EXIT_WHOLE", "EXIT_DAMAGED"]

EXIT_WHOLE = EXIT_OK  # 4 (EXIT_DAMAGED) when damage is found; 1 stays "could not be opened", as for every command

VERIFY_EPILOG = """\
Three checks, each reading everything:
  log     every report against the digest stored with it when it was
          recorded (a report changed afterwards, even one digit, no longer
          matches), and each partition's offsets contiguous (no record removed);
  store   the projection store's own check: SQLite PRAGMA integrity_check
          (every page, every index against its table); PostgreSQL amcheck's
          bt_index_check on every index where the extension is installed,
          else counts through each index against a table scan;
  belongs the store was projected from this log: the log's identity (a
          random id written when the log was made) is recorded in the store
          at its first projection, and the store has not read further than
          the log holds.  A store that fails this is refused by `ledger
          ingest`, `project` and `kafka project` too.

examples:
  ledger verify
  ledger verify --log sqlite:///backup/log.db --store sqlite:///backup/projections.db
  ledger verify --store postgresql://ledger@db:5432/ledger --json
  ledger verify --progress || echo "see docs/OPERATIONS.md, 'ledger verify'"

exit status:
  0 all three checks passed;  4 damage found (each problem on stdout, with
  its offset or table; a store that is missing, empty or not a database is
  one);  1 the log could not be opened (one line on stderr);  2 usage error.
"""


def register(command: Command) -> None:
    p = command("verify", "Check the log's digests and offsets, the store's integrity, and that they belong "
                          "together.", _cmd_verify, epilog=VERIFY_EPILOG)
    output(p, "one row: whole, then each finding (log.*, store.*, belongs.*)", json_is="the findings as JSON")
    p.add_argument("--progress", action="store_true",
                   help="progress lines on stderr even when it is not a terminal (default: only on a terminal)")
    storage(p, policy=False)  # it checks what is stored, not what the deadlines make of it



def _cmd_verify(args: argparse.Namespace) -> int:
    ledger = Ledger(args, must_exist=True)
    try:
        log = ledger.log
        progress = Progress("verified records", args.progress)
        log_check = verify_log(log, progress=progress)
        progress.done(log_check.records)
        store: dict[str, Any] = {"url": ledger.store_url, "method": None, "problems": []}
        belongs: dict[str, Any] = {"log_identity": log.identity(), "store_log_identity": None, "problem": None}
        try:
            opened = ledger.store
        except (StoreUnavailable, CliError) as error:
            # A store that cannot even be opened (missing, empty, not a
            # database, a damaged header) is a finding of this command, not
            # a reason to stop.
            store["problems"] = [str(error)]
            opened = None
        if opened is not None:
            store["method"], store["problems"] = opened.integrity_problems()
            belongs["store_log_identity"] = opened.log_identity(log.name)
            belongs["problem"] = store_belongs_problem(log, opened)
            belongs["tracked_offsets"] = {str(p): o for p, o in sorted(opened.tracked_offsets(log.name).items())}
    finally:
        ledger.close()
    whole = not log_check.problem_count and not store["problems"] and belongs["problem"] is None
    findings = {
        "whole": whole,
        "log": {"url": ledger.log_url, "records": log_check.records, "not_reports": log_check.not_reports,
                "partitions": {str(p): {"first": f, "last": l} for p, (f, l) in log_check.partitions.items()},
                "problem_count": log_check.problem_count, "problems": log_check.problems},
        "store": store,
        "belongs": belongs,
    }
    if args.output == "csv":
        print_csv([flat(findings)])
        return EXIT_WHOLE if whole else EXIT_DAMAGED
    if args.json:
        print(json.dumps(findings, indent=2, sort_keys=True))
        return EXIT_WHOLE if whole else EXIT_DAMAGED
    spans = ", ".join(f"partition {p} offsets {f}..{l}" for p, (f, l) in sorted(log_check.partitions.items()))
    print(f"log      {ledger.log_url}: {log_check.records:,} {plural(log_check.records, 'record')}"
          + (f" ({spans})" if spans else "") + ": "
          + ("whole" if not log_check.problem_count
             else f"{log_check.problem_count:,} {plural(log_check.problem_count, 'PROBLEM')}"))
    if log_check.not_reports:
        print(f"           {log_check.not_reports:,} "
              + ("record is not a report" if log_check.not_reports == 1 else "records are not reports")
              + " (the projector dead-letters them)")
    for problem in log_check.problems:
        print(f"           {problem}")
    if log_check.problem_count > len(log_check.problems):
        print(f"           ... and {log_check.problem_count - len(log_check.problems):,} more")
    print(f"store    {ledger.store_url}: " + (f"{store['method']}: " if store["method"] else "")
          + ("whole" if not store["problems"]
             else f"{len(store['problems'])} {plural(len(store['problems']), 'PROBLEM')}"))
    for problem in store["problems"]:
        print(f"           {problem}")
    if opened is not None:
        if belongs["problem"] is None:
            print(f"belongs  the store was projected from this log (identity {belongs['log_identity']})"
                  if belongs["store_log_identity"] else
                  "belongs  nothing contradicts it (the store has recorded no log identity yet: "
                  "its next projection records it)")
        else:
            print(f"belongs  NO: {belongs['problem']}")
    if whole:
        print("verify: whole")
    else:
        print("verify: DAMAGED (docs/OPERATIONS.md, 'ledger verify', says what to do with each finding)")
    return EXIT_WHOLE if whole else EXIT_DAMAGED

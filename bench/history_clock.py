"""``ledger kafka project`` judging "now" by the history's clock, for
``python -m bench.run latency --rate N --clock history``.

The latency benchmark streams a generated history (2018-2021) at N reports
per second.  With the wall clock as "now" (``--clock wall``, the default),
every report is judged years after it happened: a shipment is overdue the
moment it is exported, then resolved when its receipt follows a few seconds
later.  That is a backfill -- 1.27 alert transitions per report, each
journaled and published -- not a live stream, where a deadline passes
long after the reports that open it.  With ``--clock history`` the sender
writes the latest ``occurred_at`` it has sent to a file, and this projector
reads "now" from that file for every batch and every deadline sweep: the
history as it happened, with time compressed (months in seconds), so
deadlines pass and alerts rise and fall as they would have live.

Everything else is ``ledger kafka project``: the same GroupProjector, store,
policy and alert publisher.

    python -m bench.history_clock --log kafka://HOST:PORT/PREFIX --store sqlite:///PATH \\
        --group G --clock-file FILE
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from datetime import datetime
from pathlib import Path


def file_clock(path: Path):
    """A clock reading an ISO instant from ``path`` (written whole by the sender, then renamed)."""
    last: list[datetime] = []

    def now() -> datetime:
        try:
            last[:] = [datetime.fromisoformat(path.read_text().strip())]
        except (OSError, ValueError):
            if not last:
                raise
        return last[0]

    return now


def latest_occurred(reports: list[str | bytes]) -> datetime:
    """The latest ``occurred_at`` of these reports (JSON texts): the history's
    "now" once they are sent."""
    return max(datetime.fromisoformat(json.loads(report)["occurred_at"]) for report in reports)


def write_clock(path: Path, at: datetime) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(at.isoformat())
    partial.replace(path)


PROBE_PREFIX = "PROBE-"


def stamp_probes(projector) -> dict[str, dict[str, float]]:
    """Stamp, for each probe trace, when the projector took its record from a
    poll and when the batch holding it was applied (committed, and its alert
    transitions handed to the producer): the machine's monotonic clock, as
    the sender and the subscriber stamp theirs.  Wraps this one projector's
    ``_apply``; the records reach it straight from the poll."""
    stamps: dict[str, dict[str, float]] = {}
    apply = projector._apply

    def stamped_apply(records):
        taken = time.perf_counter()
        probes = [r.key for r in records if r.key.startswith(PROBE_PREFIX)]
        for key in probes:
            stamps.setdefault(key, {})["taken"] = taken
        try:
            return apply(records)
        finally:
            applied = time.perf_counter()
            for key in probes:
                stamps[key]["applied"] = applied

    projector._apply = stamped_apply
    return stamps


def main(argv: list[str] | None = None) -> int:
    from consumers.kafka.group_projector import GroupProjector
    from consumers.log.kafka import KafkaLog
    from consumers.bootstrap import load_policy
    from projections.sqlite_store import SQLiteProjectionStore

    parser = argparse.ArgumentParser(prog="python -m bench.history_clock", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", required=True, help="kafka://HOST:PORT/PREFIX")
    parser.add_argument("--store", required=True, help="sqlite:///PATH")
    parser.add_argument("--group", required=True)
    parser.add_argument("--clock-file", required=True, type=Path)
    parser.add_argument("--stamps", type=Path,
                        help="on exit, write when each probe's record was taken from a poll and its batch applied "
                             "(the machine's monotonic clock), for the latency breakdown")
    parser.add_argument("--batch-max", type=int, default=None,
                        help="records per poll and per store transaction (default: the projector's POLL_RECORDS_MAX)")
    parser.add_argument("--fetch-max-wait-ms", type=int, default=None,
                        help="the group consumer's fetch_max_wait_ms (default: GROUP_CONSUMER_SETTINGS')")
    args = parser.parse_args(argv)
    log = KafkaLog.from_url(args.log)
    store = SQLiteProjectionStore(args.store.removeprefix("sqlite:///"))
    projector = GroupProjector(log, store, group=args.group, policy=load_policy(None),
                               clock=file_clock(args.clock_file),
                               **({"batch_max": args.batch_max} if args.batch_max else {}),
                               consumer_settings=({"fetch_max_wait_ms": args.fetch_max_wait_ms}
                                                  if args.fetch_max_wait_ms is not None else None),
                               say=lambda message: print(f"history-clock projector: {message}", file=sys.stderr))
    stamps = stamp_probes(projector) if args.stamps else None
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    try:
        totals = projector.run(stop=lambda: bool(stopping))
    finally:
        store.close()
        log.close()
        if stamps is not None:
            args.stamps.write_text(json.dumps(stamps))
    print(json.dumps(totals.as_dict(), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

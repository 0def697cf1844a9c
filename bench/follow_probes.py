"""The latency benchmark's subscriber: a process of its own, as a dashboard is.

Follows ``{prefix}.alerts`` from the beginning (``follow_alerts``, one
message per transition id) and prints, for each probe trace's ``raised``
transition, one line ``TRACE MONOTONIC_SECONDS`` the moment it is read.
``time.perf_counter`` is the system's monotonic clock, the same in every
process of the machine, so the sender subtracts its own send time from it.

In a thread of the sending process instead, the follower waited for the
interpreter lock behind the sender's validation and kafka-python's network
thread, and that wait was counted as the ledger's latency.

    python -m bench.follow_probes --bootstrap HOST:PORT --prefix PREFIX --partitions 4

Stops on SIGTERM or when its standard output is closed.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any


def main(argv: list[str] | None = None) -> int:
    from consumers.kafka.alert_publisher import follow_alerts
    from consumers.log.kafka import KafkaLog

    parser = argparse.ArgumentParser(prog="python -m bench.follow_probes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    args = parser.parse_args(argv)
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))

    def seen(message: dict[str, Any]) -> None:
        at = time.perf_counter()
        trace = message.get("trace_id") or ""
        if trace.startswith("PROBE-") and message.get("transition") == "raised":
            try:
                print(f"{trace} {at:.6f}", flush=True)
            except BrokenPipeError:
                stopping.append(0)

    log = KafkaLog(args.bootstrap, args.prefix, partitions=args.partitions)
    try:
        follow_alerts(log, seen, stop=lambda: bool(stopping))
    finally:
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

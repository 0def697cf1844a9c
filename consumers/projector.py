"""The projector loop for logs read by position (the embedded log, or Kafka
read partition by partition for replay): poll a batch, apply it with
tracking, repeat until caught up.  The Kafka consumer-group loop lives in
consumers/kafka/ and calls the same ``project_batch``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from ledger.policy import Policy
from ledger.ports import EventLog
from projections.store import ProjectionStore
from projections.trace_projection import project_batch

__all__ = ["catch_up", "CatchUp", "POLL_RECORDS_MAX", "utc_now"]

POLL_RECORDS_MAX = 500


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(slots=True)
class CatchUp:
    records: int = 0
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    dead_letters: int = 0
    batches: int = 0
    # Only the closing deadline sweep's transitions: ProjectionStore.commit_batch
    # journals each batch's own transitions but does not say how many.
    alert_transitions: int = 0


def catch_up(
    log: EventLog,
    store: ProjectionStore,
    *,
    policy: Policy,
    clock: Callable[[], datetime] = utc_now,
    batch_max: int = POLL_RECORDS_MAX,
    progress: Callable[[CatchUp], None] | None = None,
) -> CatchUp:
    """Apply everything in ``log`` beyond the store's tracked offsets.

    Safe to interrupt anywhere: each batch and its offsets commit together,
    so a restart resumes after the last committed batch.
    """
    totals = CatchUp()
    tracked = store.tracked_offsets(log.name)
    for partition in log.partitions():
        start = tracked.get(partition, -1) + 1
        while True:
            records = log.read(partition, start, batch_max)
            if not records:
                break
            outcome = project_batch(store, log.name, records, policy=policy, clock=clock())
            totals.records += outcome.records
            totals.accepted += outcome.accepted
            totals.duplicates += outcome.duplicates
            totals.conflicts += outcome.conflicts
            totals.dead_letters += outcome.dead_letters
            totals.batches += 1
            start = records[-1].offset + 1
            if progress is not None:
                progress(totals)
    totals.alert_transitions = store.sweep(clock())
    return totals

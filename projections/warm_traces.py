"""Traces a projector keeps in memory between its batches.

A batch recomputes every trace it brings a report for, from every version
the store holds of it.  Reading and re-validating those versions is a
fifth of a small batch's work when the same traces come back poll after
poll, as they do on a live stream (BENCHMARKS.md).  So a projector keeps the
traces it last folded, as they stood after its own commit, and takes them
from memory next time -- but only while the store is still as it left it.

That is checked, not assumed: every commit writes a writer mark into the
store (``ProjectedBatch.writer_mark``, a fresh one when the writer keeps no
traces), and a batch reads the mark under the store's batch lock.  If it is
not the mark this projector wrote last, another writer has committed since
(another member of a Kafka group, a ``ledger ingest`` beside a ``ledger
project``), and everything kept is dropped.  A batch that fails also drops
what it had taken, since the traces it recorded into were never committed.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Iterable

from ledger.trace import Trace

__all__ = ["WarmTraces", "WARM_TRACES_MAX"]

# Traces kept at most (least recently used dropped first): near the working
# set of the benchmark history, since keeping more hit no more often
# (BENCHMARKS.md, "Figures behind comments") and each kept trace is some
# hundreds of objects the garbage collector walks in a full pass.
WARM_TRACES_MAX = 5_000


class WarmTraces:
    def __init__(self, capacity: int = WARM_TRACES_MAX):
        self.capacity = capacity
        self._traces: OrderedDict[str, Trace] = OrderedDict()
        self._writer = uuid.uuid4().hex
        self._commits = 0
        self._mark: str | None = None  # the mark of our last commit
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._traces)

    def check(self, store_mark: str | None) -> None:
        """Forget everything unless the store's mark is the one we wrote last."""
        if store_mark is None or store_mark != self._mark:
            self._traces.clear()
            self._mark = None

    def take(self, trace_ids: Iterable[str]) -> dict[str, Trace]:
        """The kept traces among ``trace_ids``, removed: the batch will record
        into them, and puts them back only once it has committed."""
        out = {}
        for trace_id in trace_ids:
            trace = self._traces.pop(trace_id, None)
            if trace is None:
                self.misses += 1
            else:
                self.hits += 1
                out[trace_id] = trace
        return out

    def next_mark(self) -> str:
        self._commits += 1
        return f"{self._writer}:{self._commits}"

    def committed(self, mark: str, traces: dict[str, Trace]) -> None:
        """The batch marked ``mark`` committed; these traces are the store's now."""
        self._mark = mark
        for trace_id, trace in traces.items():
            self._traces[trace_id] = trace
            self._traces.move_to_end(trace_id)
        while len(self._traces) > self.capacity:
            self._traces.popitem(last=False)

    def forget(self) -> None:
        self._traces.clear()
        self._mark = None

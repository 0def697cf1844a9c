"""The producer SDK for parties' systems: ``LedgerClient``.

    from consumers.client import LedgerClient

    with LedgerClient("kafka://broker:9092/ledger") as ledger:
        receipts = ledger.send([report, report, ...])   # dicts, JSON text or events
        receipts[0].partition, receipts[0].offset

Every report is validated with the pydantic contract (ledger.events) before
anything is sent; a report the contract refuses raises ``EventRejected``
naming the report's position, the field and the value, and nothing of that
call is sent.  ``recorded_at`` is never the sender's to choose: the SDK
stamps it (now, UTC) over whatever the report says, and on Kafka the
projector stamps it again with the broker's append time, since any producer
can write there.  A report dated beyond the clock skew after that stamp is
refused (``EventRejected``; on Kafka the projector dead-letters it).  Reports are sent in batches of at most ``batch_max`` (on Kafka a few
in flight at once); ``send`` returns once each is durable (acks=all on
Kafka), with the partition and offset of each.  An unreachable broker
raises ``ledger.ports.LogUnavailable`` after the producer's bounded
retries (consumers/log/kafka.py): nothing is dropped silently, and
re-sending after an error is safe, because the projection is idempotent on
(event id, content).

Given the party registry (``LedgerClient(url, parties=store)``, any
``ledger.ports.PartyRegistry``), a report naming a party it does not hold
is refused before anything is sent; without it the projector refuses it
(a dead letter): docs/COMPLIANCE.md, "Who may say what".

Any log URL works (``sqlite:///path`` too), so an integrator can test
against the embedded log on a laptop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from ledger.events import event_key
from consumers.projector import utc_now
from ledger.events import FieldProblem, describe_validation_error, digest_and_json, duplicate_keys, parse_event
from ledger.parties import by_id, party_problems
from ledger.ports import AppendInFlight, AppendReceipt, EventLog, PartyRegistry

__all__ = ["LedgerClient", "EventRejected", "SEND_BATCH_MAX"]

SEND_BATCH_MAX = 500  # reports per append; each batch durable before the next


class EventRejected(ValueError):
    """A report the contract refuses; ``problems`` name each field and value."""

    def __init__(self, index: int, event_id: str | None, problems: list[FieldProblem]):
        self.index = index
        self.event_id = event_id
        self.problems = problems
        which = f"report #{index}" + (f" (event_id {event_id!r})" if event_id else "")
        super().__init__(f"{which} refused, nothing sent: " + "; ".join(str(p) for p in problems))


class LedgerClient:
    """Validate, stamp and send reports to an event log given by URL or adapter."""

    def __init__(self, log: str | EventLog, *, clock: Callable[[], datetime] = utc_now,
                 batch_max: int = SEND_BATCH_MAX, parties: PartyRegistry | None = None):
        if isinstance(log, str):
            from consumers.bootstrap import open_log

            self.log = open_log(log)
            self._owns_log = True
        else:
            self.log = log
            self._owns_log = False
        if batch_max < 1:
            raise ValueError(f"batch_max={batch_max} must be at least 1")
        self.clock = clock
        self.batch_max = batch_max
        # The party registry, to refuse a report naming an unknown party
        # before it is sent; without one the projector refuses it (dead letter).
        self.parties = parties
        self._registry: dict[str, Any] = {}

    def validate(self, report: Any, index: int = 0) -> Any:
        """The report as a contract event, stamped; raises EventRejected."""
        if hasattr(report, "model_dump_json"):
            report = report.model_dump_json(exclude_none=True)  # re-validated like any other
        try:
            event = parse_event(report)
        except ValidationError as error:
            event_id = report.get("event_id") if isinstance(report, dict) else None
            raise EventRejected(index, event_id if isinstance(event_id, str) else None,
                                describe_validation_error(error, report if isinstance(report, str) else None)) from None
        if isinstance(report, (str, bytes)):
            duplicates = duplicate_keys(report)  # the projector would dead-letter it
            if duplicates:
                raise EventRejected(index, event.event_id, duplicates)
        event = event.stamped(self.clock(), overwrite=True)
        future = event.future_problem()
        if future is not None:
            raise EventRejected(index, event.event_id, [future])
        unknown = party_problems(event, self._registry)
        if unknown:
            raise EventRejected(index, event.event_id, unknown)
        return event

    def send(self, reports: Iterable[Any]) -> list[AppendReceipt]:
        """Validate every report, then send them in batches; one receipt per report, in order."""
        records = []
        self._registry = by_id(self.parties.registered_parties()) if self.parties is not None else {}
        for index, report in enumerate(reports):
            event = self.validate(report, index)
            digest, value = digest_and_json(event)
            records.append((event.event_id, digest, event_key(event), value))
        batches = [records[start : start + self.batch_max] for start in range(0, len(records), self.batch_max)]
        receipts: list[AppendReceipt] = []
        # A log that takes a batch before the last is acknowledged (Kafka)
        # has several in flight; still, send returns only once every one is
        # acknowledged, and raises if any is not.
        in_flight: deque[AppendInFlight] = deque()
        for batch in batches:
            in_flight.append(self.log.begin_append(batch))
            if len(in_flight) >= self.log.appends_in_flight_max:
                receipts.extend(in_flight.popleft().receipts())
        while in_flight:
            receipts.extend(in_flight.popleft().receipts())
        return receipts

    def send_one(self, report: Any) -> AppendReceipt:
        return self.send([report])[0]

    def close(self) -> None:
        if self._owns_log:
            self.log.close()

    def __enter__(self) -> "LedgerClient":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

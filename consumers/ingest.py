"""Ingest JSON Lines reports into an event log.

Every line is validated against the contract before it is appended.  A bad
line is rejected with its line number, field and value, kept in the rejects
table, and counted; the rest of the file is still ingested.  Lines are
appended in batches, each batch durable before the next is read, so a crash
loses at most the batch in flight, and a re-run re-sends it harmlessly
(the log is idempotent on event id).

A log that can take a batch before the previous one is acknowledged (Kafka:
``appends_in_flight_max`` > 1) gets that many batches in flight, so the next
batch is parsed while the broker acknowledges the last; a report is still
counted as appended only once it is acknowledged, ingest returns only when
every batch is, and a crash loses at most the batches in flight.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

from pydantic import ValidationError

from ledger.events import (
    FieldProblem,
    describe_validation_error,
    duplicate_keys,
    digest_and_json,
    event_key,
    line_shape_problems,
    parse_event,
)
from ledger.parties import RegisteredParty, party_problems
from ledger.ports import AppendInFlight, AppendReceipt, EventLog, RejectRow

__all__ = ["ingest_lines", "read_lines", "LongLine", "IngestReport", "Reject", "Prepared", "prepare_line",
           "reject_row", "INGEST_BATCH_MAX", "LINE_LENGTH_MAX"]

INGEST_BATCH_MAX = 500
LINE_LENGTH_MAX = 1_000_000  # bytes; a report is a few hundred
REJECTS_IN_REPORT_MAX = 1000
BOM = "\ufeff"
# Input is read in pieces of this many bytes; a line longer than
# LINE_LENGTH_MAX is read past, never held whole: a 200 MB line costs at
# most LINE_LENGTH_MAX plus one piece of memory.
READ_CHUNK_BYTES = 1 << 16
LONG_LINE_HEAD_BYTES = 200  # what a reject keeps of a too-long line


@dataclass(frozen=True, slots=True)
class LongLine:
    """A line longer than LINE_LENGTH_MAX bytes, as ``read_lines`` passes it
    on: its length and its first bytes, not the line."""

    length_bytes: int
    head: str


def read_lines(stream: BinaryIO) -> Iterator[str | LongLine]:
    """The lines of a binary stream as UTF-8 text (bytes that are not UTF-8
    kept as surrogates, for ingest to refuse by line number), checking the
    length in bytes while reading: a line longer than LINE_LENGTH_MAX is
    passed on as a LongLine and read past, never held whole.  Lines end at
    "\n", "\r\n" or a lone "\r", as Python's text files read them."""
    buffer = b""
    long_head: str | None = None  # a too-long line being read past
    long_length = 0
    while True:
        chunk = stream.read(READ_CHUNK_BYTES)
        at_end = not chunk
        # bytes.splitlines ends lines at "\n", "\r\n" and "\r" only.
        parts = (buffer + chunk).splitlines(keepends=True)
        buffer = b""
        if parts and not at_end and not parts[-1].endswith(b"\n"):
            buffer = parts.pop()  # no line end yet, or a "\r" perhaps followed by "\n"
        for part in parts:
            line = part.rstrip(b"\r\n")
            if long_head is not None:
                yield LongLine(long_length + len(line), long_head)
                long_head = None
            elif len(line) > LINE_LENGTH_MAX:
                yield LongLine(len(line), line[:LONG_LINE_HEAD_BYTES].decode("utf-8", "replace"))
            else:
                yield line.decode("utf-8", "surrogateescape")
        if at_end:
            if long_head is not None:  # the file ends inside a too-long line
                yield LongLine(long_length, long_head)
            return
        # No line end in sight: past the limit, keep only the count.
        keep = 1 if buffer.endswith(b"\r") else 0
        if long_head is not None:
            long_length += len(buffer) - keep
            buffer = buffer[len(buffer) - keep :]
        elif len(buffer) - keep > LINE_LENGTH_MAX:
            long_head = buffer[:LONG_LINE_HEAD_BYTES].decode("utf-8", "replace")
            long_length = len(buffer) - keep
            buffer = buffer[len(buffer) - keep :]


@dataclass(frozen=True, slots=True)
class Reject:
    source: str
    line: int
    raw: str
    problems: list[FieldProblem]

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: " + "; ".join(str(p) for p in self.problems)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A report that passed the contract, stamped, ready to append."""

    line: int
    event: Any
    digest: str
    key: str
    value: bytes

    @property
    def record(self) -> tuple[str, str, str, bytes]:
        """(event_id, digest, key, value), as ``EventLog.append`` takes it."""
        return (self.event.event_id, self.digest, self.key, self.value)


def reject_row(reject: Reject, at: datetime) -> RejectRow:
    """The row a log's ``keep_rejects`` keeps."""
    return RejectRow(reject.source, reject.line, reject.raw, RejectRow.keeping(reject.problems), at.isoformat())


def prepare_line(
    text: str,
    number: int,
    *,
    source: str,
    clock: Callable[[], datetime],
    trust_recorded_at: bool = False,
    parties: Mapping[str, Any] | None = None,
) -> Prepared | Reject:
    """One report line checked against the contract and stamped with the
    ledger's ``recorded_at`` (unless ``trust_recorded_at``), and its parties
    against the registry (``parties``: id -> registered party; empty: the
    ledger runs open), or refused with its problems.  ``ingest_lines`` and
    the HTTP API both decide here."""
    event, problems = _parse_line(text)
    if event is not None:
        event = event.stamped(clock(), overwrite=not trust_recorded_at)
        future = event.future_problem()
        if future is not None:
            event, problems = None, [future]
        elif parties:
            problems = party_problems(event, parties)
            if problems:
                event = None
    if event is None:
        return Reject(source, number, _storable(text[:10_000]), problems)
    digest, value = digest_and_json(event)  # one dump for both
    return Prepared(number, event, digest, event_key(event), value)


@dataclass(slots=True)
class IngestReport:
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0
    # The first REJECTS_IN_REPORT_MAX rejects, to show; all of them go to
    # keep_rejects, so a file of a million bad lines does not fill memory.
    rejects: list[Reject] = field(default_factory=list)


def ingest_lines(
    lines: Iterable[str | LongLine],
    log: EventLog,
    *,
    source: str,
    clock: Callable[[], datetime],
    keep_rejects: Callable[[list[Reject], datetime], None] | None = None,
    progress: Callable[[IngestReport], None] | None = None,
    batch_max: int = INGEST_BATCH_MAX,
    trust_recorded_at: bool = False,
    parties: Mapping[str, RegisteredParty] | None = None,
) -> IngestReport:
    """Validate, stamp and append every line; refuse bad ones with reasons.

    ``parties`` (the registry, by id): a line naming a party it does not
    hold, or in another country, is refused (ledger/parties.py).

    The ledger stamps ``recorded_at`` with its own clock, replacing whatever
    the sender wrote, unless ``trust_recorded_at`` (a migration from a
    system of record whose recording times are themselves evidence).
    """
    report = IngestReport()
    pending: list[tuple[str, str, str, bytes]] = []
    new_rejects: list[Reject] = []
    in_flight: deque[AppendInFlight] = deque()

    def count(receipts: list[AppendReceipt]) -> None:
        for receipt in receipts:
            if receipt.outcome == "duplicate":
                report.duplicates += 1
            elif receipt.outcome == "conflict":
                report.conflicts += 1
            else:
                report.accepted += 1

    def flush(last: bool = False) -> None:
        if pending:
            in_flight.append(log.begin_append(list(pending)))
            pending.clear()
        while in_flight and (last or len(in_flight) >= log.appends_in_flight_max):
            count(in_flight.popleft().receipts())
        if new_rejects:
            if keep_rejects is not None:
                keep_rejects(list(new_rejects), clock())
            new_rejects.clear()
        if progress is not None:
            progress(report)

    for number, line in enumerate(lines, start=1):
        report.lines = number
        if isinstance(line, LongLine):
            prepared: Prepared | Reject = Reject(source, number, _storable(line.head[:10_000]),
                                                 [_too_long(line.length_bytes)])
        else:
            text = line.strip()
            if number == 1:
                text = text.removeprefix(BOM)  # spreadsheet exports often start with one
            if not text:
                continue
            prepared = prepare_line(text, number, source=source, clock=clock, trust_recorded_at=trust_recorded_at,
                                    parties=parties)
        if isinstance(prepared, Reject):
            reject = prepared
            report.rejected += 1
            if len(report.rejects) < REJECTS_IN_REPORT_MAX:
                report.rejects.append(reject)
            new_rejects.append(reject)
            if len(new_rejects) >= batch_max:
                flush()
            continue
        pending.append(prepared.record)
        if len(pending) >= batch_max:
            flush()
    flush(last=True)
    return report


def _parse_line(text: str) -> tuple[object | None, list[FieldProblem]]:
    """(event, []) for a valid report, else (None, problems naming field and value).

    A good line is parsed once, by pydantic's JSON parser.  Only a refused
    line is looked at again, with the json module, to say precisely why when
    it is not JSON or not an object (pydantic says only "invalid JSON").
    """
    # A character is at most 4 bytes of UTF-8: only a long text needs encoding to count.
    if len(text) > LINE_LENGTH_MAX // 4:
        length_bytes = len(text.encode("utf-8", "surrogateescape"))
        if length_bytes > LINE_LENGTH_MAX:
            return None, [_too_long(length_bytes)]
    if not text.isascii():
        undecodable = _UNDECODABLE.search(text)
        if undecodable:
            return None, [FieldProblem(
                field="(line)",
                value=f"(byte 0x{ord(undecodable.group()) - 0xDC00:02X} at character {undecodable.start() + 1})",
                message="not UTF-8; reports are UTF-8 (save the file as UTF-8)",
            )]
    try:
        event = parse_event(text)
    except ValidationError as error:
        if any(d["type"] in _NOT_AN_OBJECT and not d["loc"] for d in error.errors(include_url=False)):
            problems = line_shape_problems(text)
            if problems:
                return None, problems
        return None, duplicate_keys(text) + describe_validation_error(error, text)
    duplicates = duplicate_keys(text)
    if duplicates:
        return None, duplicates
    return event, []


def _too_long(length_bytes: int) -> FieldProblem:
    return FieldProblem(field="(line)", value=f"({length_bytes} bytes)",
                        message=f"longer than {LINE_LENGTH_MAX} bytes")


# A byte that was not UTF-8, as the surrogateescape error handler passes it on.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


def _storable(text: str) -> str:
    """``text`` with undecodable bytes shown as \\xNN, so it can be kept as text."""
    if text.isascii() or not _UNDECODABLE.search(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


# pydantic error types that mean the line as a whole is not a JSON object.
_NOT_AN_OBJECT = frozenset({"json_invalid", "dict_type", "model_type", "model_attributes_type"})

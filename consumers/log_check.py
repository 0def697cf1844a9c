"""Is the log whole, and does the store belong to it?

Two questions a projector and `ledger verify` ask:

- ``check_store_belongs(log, store)``: before projecting.  A store records
  the identity of the log it was first projected from
  (``EventLog.identity``); a store kept while its log was lost or replaced
  would otherwise wait, silently, for offsets the new log reaches only much
  later (a store at offset 2,000, a new log starting at 1: "1 recorded", and
  the report is never projected).  Refused with one line saying what to do.
- ``verify_log(log)``: every report against the digest stored beside it,
  and the offsets of each partition contiguous.  A report whose bytes were
  changed after it was recorded (one digit, 70 -> 7) no longer has the
  content its digest names; `ledger replay` refuses to adopt a rebuild from
  such a log.
"""

from __future__ import annotations

import json

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pydantic_core
from pydantic import ValidationError

from ledger.events import (content_digest, describe_validation_error, line_shape_problems, parse_event,
                           stored_body_digest)
from ledger.ports import HEADER_DIGEST, EventLog, LogRecord
from projections.store import ProjectionPositions, ProjectionWriter

__all__ = ["LogMismatch", "LogCheck", "check_store_belongs", "store_belongs_problem", "verify_log",
           "VERIFY_READ_RECORDS", "PROBLEMS_KEPT_MAX"]

VERIFY_READ_RECORDS = 5_000  # records per read while verifying
PROBLEMS_KEPT_MAX = 100  # problems described in full; the rest are counted


class LogMismatch(RuntimeError):
    """The projection store was built from another log than this one."""


def check_store_belongs(log: EventLog, store: ProjectionWriter) -> None:
    """Raise LogMismatch unless ``store`` was projected from ``log`` (or from
    nothing yet); on the first projection, record the log's identity."""
    problem = store_belongs_problem(log, store)
    if problem is not None:
        raise LogMismatch(f"{problem}; refusing to project: {MISMATCH_ADVICE}")
    identity = log.identity()
    if identity is not None and store.log_identity(log.name) is None:
        store.record_log_identity(log.name, identity)


MISMATCH_ADVICE = ("point --store at this log's store, or build a new store from this log "
                   "(`ledger replay --replace`, or move the store aside and run `ledger project`)")


def store_belongs_problem(log: EventLog, store: ProjectionPositions) -> str | None:
    """Why ``store`` was not projected from ``log``, or None.  Reads only."""
    identity = log.identity()
    recorded = store.log_identity(log.name)
    where = _store_where(store)
    if identity is not None and recorded is not None and recorded != identity:
        return (f"projection store {where} was built from another log than {log.name} "
                f"(store: log identity {recorded}, this log: {identity})")
    tracked = store.tracked_offsets(log.name)
    if tracked:
        ends = log.end_offsets()
        for partition, offset in sorted(tracked.items()):
            end = ends.get(partition, 0)
            if offset >= end:
                return (f"projection store {where} has read {log.name} partition {partition} up to offset "
                        f"{offset}, but this log ends before offset {end}: the store was built from "
                        f"another (or a lost) log")
    return None


def _store_where(store: ProjectionPositions) -> str:
    return repr(str(store.where)) if store.where else type(store).__name__


@dataclass(slots=True)
class LogCheck:
    """What ``verify_log`` found."""

    records: int = 0
    # Records that are not reports, on a log any producer can write (Kafka),
    # and reports recorded intact that the current, stricter contract
    # refuses: the projector dead-letters and quarantines them; they are
    # counted, not damage.
    not_reports: int = 0
    partitions: dict[int, tuple[int, int]] = field(default_factory=dict)  # partition -> (first, last) offset
    problem_count: int = 0
    problems: list[str] = field(default_factory=list)  # the first PROBLEMS_KEPT_MAX, each naming its offset
    damaged_offsets: list[tuple[int, int]] = field(default_factory=list)  # (partition, offset), bounded too

    def add(self, partition: int, offset: int | None, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < PROBLEMS_KEPT_MAX:
            where = f"partition {partition}" + (f" offset {offset}" if offset is not None else "")
            self.problems.append(f"{where}: {text}")
            if offset is not None:
                self.damaged_offsets.append((partition, offset))


def record_problem(record: LogRecord, *, contract: bool = True) -> tuple[str, str] | None:
    """(kind, why) if the record's bytes do not match the digest stored with
    it, else None.  Kinds: "changed" (a report whose content is not the
    one its digest names), "refused" (intact, as its digest says, but a
    report the current contract refuses: recorded before the contract grew
    stricter; the projector quarantines it), "unreadable" (not a report at
    all), "undigested" (no digest stored with it).

    ``contract=False``: a record whose JSON body hashes to its stored digest
    is None at once, without reading it into the contract, so "refused" is
    not told apart from whole (the projector quarantines those anyway).
    Checked on the JSON as the contract's own parser reads it (pydantic's,
    which keeps the last of two equal keys as the contract does); a record
    that fails this quick check is checked in full, as with ``contract``.
    """
    stored = dict(record.headers).get(HEADER_DIGEST)
    if not contract and stored is not None and _intact(record.value, stored, loads=pydantic_core.from_json):
        return None
    try:
        event = parse_event(record.value)
    except (ValidationError, UnicodeDecodeError, ValueError) as error:
        if stored is not None and _intact(record.value, stored):
            return "refused", f"intact, but refused by the current contract ({_first_line(error)})"
        return "unreadable", f"not a report ({_unreadable_because(record.value, error)})"
    if stored is None:
        return "undigested", f"report {event.event_id!r} has no stored digest to check it against"
    digest = content_digest(event)
    if digest != stored.decode(errors="replace"):
        return "changed", (f"report {event.event_id!r} does not match its stored digest "
                           f"(stored {stored.decode(errors='replace')[:16]}..., its content {digest[:16]}...): "
                           f"changed after it was recorded")
    return None


def _intact(value: bytes, stored: bytes, *, loads: Callable[[bytes], Any] = json.loads) -> bool:
    """The stored JSON body still hashes to the digest stored beside it."""
    try:
        body = loads(value)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(body, dict) and stored_body_digest(body) == stored.decode(errors="replace")


def verify_log(log: EventLog, *, progress: Callable[[int], None] | None = None,
               read_records: int = VERIFY_READ_RECORDS, contract: bool = True) -> LogCheck:
    """Read every record of ``log`` up to its end offsets (taken at the
    start) and check each against its stored digest, and that each
    partition's offsets follow one another with no gap.

    ``contract=False`` (``ledger replay``, which asks only whether the log is
    damaged): the records intact by their digest are not read into the
    contract (``record_problem``), so ``not_reports`` leaves out those the
    current contract refuses; the problems found are the same.

    The embedded log gives offsets from 1 and never reuses or skips one, so
    a gap there is a removed row.  A Kafka partition is checked from the
    first offset it still holds (retention may have removed earlier ones).
    """
    check = LogCheck()
    # The embedded log holds only what ingest validated and stamped with its
    # digest, so anything else there is damage.  Kafka holds whatever a
    # producer sent: there only a report that no longer matches the digest
    # stored with it is.
    validated = log.validated_on_append
    ends = log.end_offsets()
    for partition in log.partitions():
        end = ends.get(partition, 0)
        start = 0
        # A log that promises where its offsets begin (the embedded log: 1)
        # has its first records checked for a gap too.
        expected: int | None = getattr(log, "first_offset", None)
        first = last = None
        while start < end:
            records = [r for r in log.read(partition, start, min(read_records, end - start)) if r.offset < end]
            if not records:
                break
            for record in records:
                if expected is not None and record.offset != expected:
                    check.add(partition, None, f"offsets {expected}..{record.offset - 1} are missing "
                                               f"(a gap in the log: records removed)")
                if first is None:
                    first = record.offset
                last = record.offset
                expected = record.offset + 1
                problem = record_problem(record, contract=contract)
                if problem is not None:
                    kind, why = problem
                    if kind == "refused" or (kind != "changed" and not validated):
                        check.not_reports += 1
                    else:
                        check.add(partition, record.offset, why)
                check.records += 1
            start = records[-1].offset + 1
            if progress is not None:
                progress(check.records)
        if expected is not None and expected < end:
            check.add(partition, None, f"offsets {expected}..{end - 1} are missing at the end of the log")
        if first is not None and last is not None:
            check.partitions[partition] = (first, last)
    return check


def _unreadable_because(value: bytes, error: Exception) -> str:
    """Why a record is no report, in ingest's words (ledger.events.line_shape_problems):
    not JSON, not an object, or the first field problem the contract names."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    problems = line_shape_problems(text) or (
        describe_validation_error(error, text) if isinstance(error, ValidationError) else [])
    if not problems:
        return _first_line(error)
    return problems[0].message if problems[0].field == "(line)" else str(problems[0])


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__

"""Fuzz `ledger ingest` with mutated reports (issue 14): no crash, no good
line lost, no bad line accepted.

Each line is a good report (some at the edges of the contract: the first
instant of 1900, +14:00 zones, six decimals, fifteen digits, any script) or
a good report broken one way the contract refuses (a time out of range or as
a number, ``schema_version: true``, a control character in free text, a key
said twice, nesting 1,000 deep, a 5,000-digit number, a float, "1E+2",
bytes that are not UTF-8, a line over the byte limit, a field missing or
unknown, ...).  Every line carries its own event id, so after the run the
log says exactly which lines were recorded.

    python -m bench.fuzz --records 100000 [--seed 1] [--data DIR]

runs the real `ledger ingest` (it projects, too) on one file of that many
lines and prints records tried, crashes, good lines lost and bad lines
accepted.  tests/unit/test_fuzz_ingest.py drives the same lines through
hypothesis at a size that fits in `make test`.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from consumers.log.embedded import EmbeddedLog
from ledger.events import event_key
from ledger.events import digest_and_json, parse_event

__all__ = ["FuzzLine", "FuzzResult", "GOOD_KINDS", "BAD_KINDS", "make_line", "fuzz_lines", "judge", "log_record",
           "main"]

LINE_LENGTH_MAX = 1_000_000  # consumers.ingest.LINE_LENGTH_MAX, bytes
# Over-long lines cost a megabyte each to write and read: a few per run.
LONG_LINES_PER_RUN_MAX = 5
BAD_SHARE = 0.5  # of the lines, broken one way
INGEST_TIMEOUT_S = 3600
EXIT_OK, EXIT_REJECTED = 0, 3  # `ledger ingest --help`


@dataclass(frozen=True, slots=True)
class FuzzLine:
    kind: str
    event_id: str
    good: bool
    text: bytes  # one line, without its newline


@dataclass(frozen=True, slots=True)
class FuzzResult:
    tried: int
    good: int
    bad: int
    crashes: int
    good_lost: int
    bad_accepted: int
    lost_kinds: dict[str, int]
    accepted_kinds: dict[str, int]

    def __str__(self) -> str:
        return (f"records tried {self.tried:,} ({self.good:,} good, {self.bad:,} bad); crashes {self.crashes}; "
                f"good lines lost {self.good_lost}; bad lines accepted {self.bad_accepted}")


def _report(rng: random.Random, event_id: str) -> dict[str, object]:
    """A good report of a random type, its trace named by the event id."""
    trace = f"TR-{event_id}"
    when = f"{rng.randint(1990, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00+09:00"
    body: dict[str, object] = {"event_id": event_id, "occurred_at": when, "trace_id": trace, "lot_id": "L1"}
    kind = rng.choice(("exported", "received", "consumed", "returned"))
    amount = {"amount": str(rng.randint(1, 10_000)), "unit": rng.choice(("kg", "g", "t", "L", "unit"))}
    if kind == "exported":
        body.update(type="exported", reporter="JP-EXP", exporter={"id": "JP-EXP", "country": "JP", "name": "Fluoro"},
                    consignee={"id": "KR-CNS", "country": "KR"}, item={"id": "HF", "classification": "AG 1C350.25",
                                                                        "name": "hydrogen fluoride"},
                    quantity=amount, license_id="LIC-1")
    elif kind == "received":
        body.update(type="received", reporter="KR-CNS", quantity=amount)
    elif kind == "consumed":
        body.update(type="consumed", reporter="KR-CNS", quantity=amount, end_use="wafer etching")
    else:
        body.update(type="returned", reporter="KR-CNS", quantity=amount, child_lot_id="L1-R",
                    consignee={"id": "JP-EXP", "country": "JP"}, reason="defective")
    return body


def _dumps(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def _with(body: dict[str, object], **changes: object) -> bytes:
    return _dumps({**body, **changes})


def _free_text_field(body: dict[str, object]) -> tuple[str, str]:
    """(a top-level free-text field of this report, or a party's name path) to break."""
    for field in ("end_use", "reason"):
        if field in body:
            return field, ""
    if "exporter" in body:
        return "exporter", "name"
    return "", ""


def _control(rng: random.Random, body: dict[str, object]) -> bytes:
    char = rng.choice(["\x00", "\x07", "\x1b", "\t", "\n", "\r", "\x7f", "\x85", "\x9b", "\x01"])
    field, sub = _free_text_field(body)
    if not field:  # received: no free text; a party-less report gets an end_use it may not carry
        return _with(body, type="consumed", end_use=f"etch{char}ing")
    if sub:
        return _with(body, **{field: {**body[field], sub: f"Fluoro{char}Co"}})  # type: ignore[dict-item]
    return _with(body, **{field: f"text{char}here"})


def _duplicate(rng: random.Random, body: dict[str, object]) -> bytes:
    # The first copy is what a reviewer reads; pydantic alone would keep the
    # last, good one, so only the duplicate check refuses these lines.
    text = _dumps(body)
    if rng.random() < 0.5:
        return b'{"type": "teleported", ' + text[1:]
    return text.replace(b'{"amount": ', b'{"amount": "-5", "amount": ', 1)


def _bad_time(rng: random.Random) -> object:
    return rng.choice([
        f"{rng.randint(1, 1899):04d}-07-10T10:00:00+09:00",
        f"{rng.randint(2200, 9999):04d}-07-10T10:00:00+09:00",
        "0001-01-01T00:00:00+14:00",
        "0999-07-10T10:00:00+09:00",
        "1900-01-01T00:30:00+01:00",
        rng.randint(0, 2_000_000_000),
        str(rng.randint(0, 2_000_000_000)),
        rng.randint(0, 2_000_000_000) + 0.5,
        True,
        "2019-07-10",
        "2019-07-10T10:00:00",
    ])


def _good_edge(rng: random.Random, body: dict[str, object]) -> bytes:
    """A good report at an edge of the contract."""
    edge = rng.randrange(6)
    if edge == 0:
        return _with(body, occurred_at="1900-01-01T00:00:00Z")
    if edge == 1:
        return _with(body, occurred_at="1900-01-01T14:00:00+14:00", schema_version=1)
    if edge == 2:
        return _with(body, quantity={"amount": "0.000001", "unit": "kg"})
    if edge == 3:
        return _with(body, quantity={"amount": "999999999999999.999999", "unit": "kg"})
    if edge == 4:
        return _with(body, quantity={"amount": rng.randint(1, 10**15 - 1), "unit": "kg"})
    name = "".join(rng.choice("フッ化水素Ströme ☢—\"\\é\u00a0한국") for _ in range(rng.randint(1, 40)))
    if "exporter" in body:
        return _with(body, exporter={**body["exporter"], "name": name})  # type: ignore[dict-item]
    return _with(body, **({"end_use": name} if "end_use" in body else {"reason": name} if "reason" in body else {}))


GOOD_KINDS: dict[str, Callable[[random.Random, dict[str, object]], bytes]] = {
    "good": lambda rng, body: _dumps(body),
    "good_edge": _good_edge,
    "good_padded": lambda rng, body: b"  " + _dumps(body) + b" \r",
}
BAD_KINDS: dict[str, Callable[[random.Random, dict[str, object]], bytes]] = {
    "time_out_of_range_or_not_text": lambda rng, body: _with(body, occurred_at=_bad_time(rng)),
    "schema_version_not_integer": lambda rng, body: _with(body, schema_version=rng.choice([True, "1", 1.0, 2])),
    "control_character": _control,
    "duplicate_key": _duplicate,
    "nested_deep": lambda rng, body: _dumps(body)[:-1] + b', "x": ' + b'{"a": ' * rng.randint(300, 3000)
    + b"1" + b"}" * 3001,
    "huge_number": lambda rng, body: _with(body, quantity={"amount": 0, "unit": "kg"}).replace(
        b'"amount": 0', b'"amount": ' + b"9" * rng.randint(4301, 20_000)),
    "float_amount": lambda rng, body: _with(body, quantity={"amount": 30.5, "unit": "kg"}),
    "exponent_amount": lambda rng, body: _with(body, quantity={"amount": rng.choice(["1E+2", "1e3", "5E0"]),
                                                               "unit": "kg"}),
    "negative_amount": lambda rng, body: _with(body, quantity={"amount": f"-{rng.randint(1, 99)}", "unit": "kg"}),
    "unknown_field": lambda rng, body: _with(body, note="by fax"),
    "missing_field": lambda rng, body: _dumps({k: v for k, v in body.items() if k != "lot_id"}),
    "truncated": lambda rng, body: _dumps(body)[: rng.randint(1, 60)],
    "not_utf8": lambda rng, body: _dumps(body).replace(b'"L1"', b'"L\x82\xa0"', 1),
    "bad_country": lambda rng, body: _with(body, type="exported", consignee={"id": "X", "country": "QQ"}),
    "too_long": lambda rng, body: _dumps({**body, "end_use": "a" * (LINE_LENGTH_MAX + rng.randint(0, 50))}),
}


def make_line(kind: str, rng: random.Random, number: int) -> FuzzLine:
    """Line ``number`` of a run: a report of ``kind`` (GOOD_KINDS or BAD_KINDS)."""
    good = kind in GOOD_KINDS
    event_id = f"{'g' if good else 'b'}-{number}"
    body = _report(rng, event_id)
    text = (GOOD_KINDS if good else BAD_KINDS)[kind](rng, body)
    return FuzzLine(kind, event_id, good, text)


def fuzz_lines(seed: int, count: int) -> Iterator[FuzzLine]:
    rng = random.Random(seed)
    bad = [k for k in BAD_KINDS if k != "too_long"]
    long_every = max(1, count // LONG_LINES_PER_RUN_MAX)
    for number in range(1, count + 1):
        if number % long_every == 0 and count >= 2:
            kind = "too_long"
        elif rng.random() < BAD_SHARE:
            kind = rng.choice(bad)
        else:
            kind = rng.choice(list(GOOD_KINDS))
        yield make_line(kind, rng, number)


def judge(lines: Iterable[FuzzLine], recorded: set[str], crashes: int) -> FuzzResult:
    """What the run did with ``lines``, given the event ids the log recorded."""
    tried = good = 0
    lost: Counter[str] = Counter()
    accepted: Counter[str] = Counter()
    for item in lines:
        tried += 1
        good += item.good
        if item.good and item.event_id not in recorded:
            lost[item.kind] += 1
        if not item.good and item.event_id in recorded:
            accepted[item.kind] += 1
    return FuzzResult(tried, good, tried - good, crashes, sum(lost.values()), sum(accepted.values()),
                      dict(lost), dict(accepted))


def log_record(item: FuzzLine, recorded_at: datetime) -> tuple[str, str, str, bytes]:
    """``item`` as a producer that bypasses ingest writes it to the log (Kafka
    does not validate): a good report stamped as ingest would, a bad one as
    it is with a ``recorded_at`` added, so only what is wrong with it can
    refuse it.  Keyed by the trace it names."""
    if item.good:
        event = parse_event(item.text.strip()).stamped(recorded_at)
        digest, value = digest_and_json(event)
        return item.event_id, digest, event_key(event), value
    text = item.text.strip()
    if text.startswith(b"{"):
        text = b'{"recorded_at": "' + recorded_at.isoformat().encode() + b'", ' + text[1:]
    return item.event_id, "0" * 64, f"TR-{item.event_id}", text


def recorded_event_ids(log_db: Path) -> set[str]:
    with sqlite3.connect(log_db) as db:
        return {row[0] for row in db.execute("SELECT event_id FROM events")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="lines to try (default 100,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, default=None, help="directory for the file and LEDGER_HOME "
                                                                "(default: a temporary one)")
    args = parser.parse_args(argv)
    data = args.data or Path(tempfile.mkdtemp(prefix="ledger-fuzz-"))
    data.mkdir(parents=True, exist_ok=True)
    path = data / "fuzz.jsonl"
    kinds: Counter[str] = Counter()
    with path.open("wb") as out:
        for item in fuzz_lines(args.seed, args.records):
            kinds[item.kind] += 1
            out.write(item.text + b"\n")
    home = data / "home"
    ledger = Path(sys.executable).parent / "ledger"
    done = subprocess.run([str(ledger), "ingest", str(path)], capture_output=True, text=True,
                          env={**os.environ, "LEDGER_HOME": str(home)}, timeout=INGEST_TIMEOUT_S)
    crashed = done.returncode not in (EXIT_OK, EXIT_REJECTED) or "Traceback" in done.stderr
    result = judge(fuzz_lines(args.seed, args.records), recorded_event_ids(home / "log.db"), int(crashed))
    print(f"ledger ingest exit status {done.returncode}: {done.stdout.strip()}")
    if crashed:
        print(done.stderr[-2000:], file=sys.stderr)
    print("lines by kind: " + ", ".join(f"{k} {n:,}" for k, n in sorted(kinds.items())))
    print(f"ledger ingest: {result}")
    if result.lost_kinds or result.accepted_kinds:
        print(f"lost by kind {result.lost_kinds}; accepted by kind {result.accepted_kinds}")
    projector = _fuzz_projector(args.seed, args.records, data / "home-projector", ledger)
    print(f"ledger project: {projector}")
    if projector.lost_kinds or projector.accepted_kinds:
        print(f"lost by kind {projector.lost_kinds}; accepted by kind {projector.accepted_kinds}")
    failures = (result.crashes, result.good_lost, result.bad_accepted,
                projector.crashes, projector.good_lost, projector.bad_accepted)
    return 0 if failures == (0,) * 6 else 1


APPEND_BATCH_RECORDS = 1000


def _fuzz_projector(seed: int, count: int, home: Path, ledger: Path) -> FuzzResult:
    """The same lines written straight to a log (log_record), then `ledger
    project`: a good report lost is one the store does not hold; a bad one
    accepted is one it holds (every bad one must be a dead letter)."""
    home.mkdir(parents=True, exist_ok=True)
    log = EmbeddedLog(home / "log.db")
    stamp = datetime.now(timezone.utc)
    batch: list[tuple[str, str, str, bytes]] = []
    for item in fuzz_lines(seed, count):
        batch.append(log_record(item, stamp))
        if len(batch) >= APPEND_BATCH_RECORDS:
            log.append(batch)
            batch = []
    log.append(batch)
    log.close()
    done = subprocess.run([str(ledger), "project"], capture_output=True, text=True,
                          env={**os.environ, "LEDGER_HOME": str(home)}, timeout=INGEST_TIMEOUT_S)
    crashed = done.returncode != EXIT_OK or "Traceback" in done.stderr
    if crashed:
        print(done.stderr[-2000:], file=sys.stderr)
    with sqlite3.connect(home / "projections.db") as db:
        held = {row[0] for row in db.execute("SELECT event_id FROM reports")}
        dead = {row[0] for row in db.execute("SELECT key FROM dead_letters")}
    # A bad record is accepted if the store holds it, or it escaped the dead letters.
    bad_missing = {f"TR-{item.event_id}" for item in fuzz_lines(seed, count) if not item.good} - dead
    result = judge(fuzz_lines(seed, count), held | {key[3:] for key in bad_missing}, int(crashed))
    return result


if __name__ == "__main__":
    raise SystemExit(main())

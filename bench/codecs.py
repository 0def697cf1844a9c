"""What each compiled JSON library would buy on the ledger's hot paths, per
report (issue 18: "say what each buys in a paired measurement").

    python -m bench.codecs bench/data/history-100k-seed1.jsonl [--lines 50000] [--rounds 3]

Every step is timed over the same reports in one process, CPU time, the
least of ``--rounds`` rounds, in microseconds per report:

- reading a report into the contract (pydantic-core's ``validate_json``,
  what ingest and the projection do) against building the same pydantic
  models from parsed JSON without validating (``model_construct``, field by
  field: the "trusted" read a log written by the ledger could allow).  Each
  trusted read is checked equal to the validated one;
- parsing JSON alone: the json module, pydantic-core's ``from_json`` (what
  the replay's digest check uses), orjson, msgspec;
- writing the digest's text (sorted keys, ASCII) and the stored text
  (compact UTF-8): the json module's C encoder against orjson;
- the duplicate-key check (the json module with a pairs hook), a model
  dump in JSON mode, a SHA-256.

orjson is a dependency of the ledger (ledger/events.py); msgspec is not:
install it (``pip install msgspec``) to see its row.  Prints a JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import types
import typing
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pydantic_core
from pydantic import BaseModel

from ledger import events

ROUNDS_DEFAULT = 3


def per_report_us(step: Callable[[Any], Any], inputs: Sequence[Any], rounds: int) -> float:
    least = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for value in inputs:
            step(value)
        least = min(least, time.process_time() - started)
    return round(least / len(inputs) * 1e6, 2)


def _conversions(model: type[BaseModel]) -> dict[str, tuple[str, Any]]:
    """Field -> how its JSON value becomes the model's: a nested model, a time, a decimal."""
    plan = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            plan[name] = ("model", annotation)
        elif isinstance(annotation, type) and (issubclass(annotation, datetime)
                                               or annotation.__name__ == "AwareDatetime"):
            plan[name] = ("time", None)
        elif annotation is Decimal:
            plan[name] = ("decimal", None)
    return plan


_PLANS: dict[type[BaseModel], dict[str, tuple[str, Any]]] = {}
_BY_TYPE = {model.model_fields["type"].default: model
            for model in typing.get_args(typing.get_args(events.LedgerEvent)[0])}


def _constructed(model: type[BaseModel], body: dict[str, Any]) -> BaseModel:
    plan = _PLANS.get(model) or _PLANS.setdefault(model, _conversions(model))
    for name, (kind, inner) in plan.items():
        value = body.get(name)
        if value is None:
            continue
        if kind == "model":
            body[name] = _constructed(inner, value)
        elif kind == "time":
            body[name] = datetime.fromisoformat(value)
        else:
            body[name] = Decimal(value)
    return model.model_construct(**body)


def trusted_read(value: bytes) -> BaseModel:
    """The report without the contract's checks: parsed, then constructed."""
    body = pydantic_core.from_json(value)
    return _constructed(_BY_TYPE[body["type"]], body)


def measure(lines: list[bytes], rounds: int) -> dict[str, Any]:
    reports = [events.parse_event(line) for line in lines]
    for line, report in zip(lines, reports):
        assert trusted_read(line) == report, f"the trusted read differs on {line[:80]!r}"
    dumps = [r.model_dump(mode="json", exclude_none=True) for r in reports]
    bodies = [{k: v for k, v in d.items() if k != "recorded_at"} for d in dumps]
    try:
        import msgspec  # not a dependency: only this measurement uses it
        msgspec_parse: tuple[Callable[[Any], Any], Sequence[Any]] | None = (msgspec.json.Decoder().decode, lines)
    except ImportError:
        msgspec_parse = None
    steps: dict[str, tuple[Callable[[Any], Any], Sequence[Any]] | None] = {
        "read into the contract (pydantic-core validate_json)": (events.parse_event, lines),
        "read without the contract (from_json + model_construct)": (trusted_read, lines),
        "parse: json module": (json.loads, lines),
        "parse: pydantic-core from_json": (pydantic_core.from_json, lines),
        "parse: orjson": (orjson.loads, lines),
        "parse: msgspec": msgspec_parse,
        "digest text: json module (sorted, ASCII)": (events._canonical_json, bodies),
        "digest text: orjson (sorted)": (lambda b: orjson.dumps(b, option=orjson.OPT_SORT_KEYS), bodies),
        "stored text: json module (compact, UTF-8)": (events._compact_json, dumps),
        "stored text: orjson": (orjson.dumps, dumps),
        "duplicate-key check (json module, pairs hook)": (events.duplicate_keys, lines),
        "model dump, JSON mode": (lambda r: r.model_dump(mode="json", exclude_none=True), reports),
        "SHA-256 of the stored text": (lambda v: hashlib.sha256(v).hexdigest(), lines),
        "content_digest (as the ledger computes it: dump, orjson, SHA-256)": (events.content_digest, reports),
    }
    us = {name: per_report_us(*step, rounds) if step is not None else "not installed (pip install msgspec)"
          for name, step in steps.items()}
    return {"reports": len(lines), "rounds": rounds,
            "figures": "CPU microseconds per report, the least of the rounds, in this process",
            "us_per_report": us,
            # Reports whose text orjson writes byte for byte as the json module does (of "reports").
            "reports_orjson_writes_alike": {
                "digest_text": sum(orjson.dumps(b, option=orjson.OPT_SORT_KEYS) == events._canonical_json(b).encode()
                                   for b in bodies),
                "stored_text": sum(orjson.dumps(d) == events._compact_json(d).encode() for d in dumps)}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.codecs", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="example: python -m bench.codecs bench/data/history-100k-seed1.jsonl")
    parser.add_argument("jsonl", type=Path, help="a history written by bench.generate")
    parser.add_argument("--lines", type=int, default=50_000, help="reports to time (default 50,000)")
    parser.add_argument("--rounds", type=int, default=ROUNDS_DEFAULT, help="rounds; the least is kept")
    args = parser.parse_args(argv)
    lines = []
    with args.jsonl.open("rb") as stream:
        for line in stream:
            if len(lines) >= args.lines:
                break
            lines.append(line.rstrip(b"\n"))
    print(json.dumps(measure(lines, args.rounds), indent=2))


if __name__ == "__main__":
    main()

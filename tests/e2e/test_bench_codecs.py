"""bench/codecs.py at a small size: every step it times runs on real
reports, and its "trusted" read (the pydantic models built without the
contract) is the contract's read, report for report, or the figure it puts
beside validate_json would compare two different things.  No timing is
asserted: the figures are for BENCHMARKS.md, not for CI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is a folder of scripts, not an installed package
    sys.path.insert(0, str(ROOT))

from bench.codecs import measure, trusted_read  # noqa: E402
from ledger.events import parse_event  # noqa: E402
from tests.unit.test_content_digest_pinned import EXPORTED, GRANTED, RECEIVED  # noqa: E402


def test_the_trusted_read_is_the_contracts_read():
    for body in (EXPORTED, RECEIVED, GRANTED):
        line = json.dumps(body).encode()
        assert trusted_read(line) == parse_event(line)
        assert trusted_read(line).model_dump_json() == parse_event(line).model_dump_json()


def test_every_step_is_timed_on_a_generated_history(tmp_path):
    subprocess.run([sys.executable, "-m", "bench.generate", "--events", "300", "--seed", "3",
                    "--out", str(tmp_path)], cwd=ROOT, check=True, capture_output=True, timeout=120)
    (history,) = tmp_path.glob("*.jsonl")
    lines = history.read_bytes().splitlines()
    result = measure(lines, rounds=1)
    assert result["reports"] == len(lines) >= 300
    assert result["reports_orjson_writes_alike"] == {"digest_text": len(lines), "stored_text": len(lines)}
    timed = result["us_per_report"]
    assert all(isinstance(us, float) and us > 0 for name, us in timed.items() if name != "parse: msgspec")
    assert "read without the contract (from_json + model_construct)" in timed

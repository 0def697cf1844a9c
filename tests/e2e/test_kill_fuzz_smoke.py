"""Random SIGKILLs of `ledger ingest` and `ledger project` (bench/kill_fuzz.py),
at a size that fits in `make test`: every path, killed at random instants and
re-run, ends where one clean run ends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 300


def test_ingest_and_project_killed_at_random_instants_end_where_a_clean_run_ends() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.kill_fuzz", "--events", "600", "--kills", "6", "--seed", "3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    for path in ("ingest", "project"):
        assert result[path]["kills"] >= 3, result  # the kills landed...
        assert result[path]["identical_to_clean_run"] is True, result  # ...and changed nothing
        assert result[path]["runs"] >= result[path]["kills"] + result[path]["rounds"], result

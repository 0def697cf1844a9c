"""Shared fixtures.  Real parts, not mocks: fixtures that start a Kafka-protocol
broker and connect to PostgreSQL live in their own plugin modules below."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

# Plugin modules with fixtures for real components (added as they land).
pytest_plugins: list[str] = ["fixtures_postgres", "fixtures_kafka"]


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one test process per core, plus one.  The suite waits a
    good part of its time (brokers starting and failing over, servers,
    browsers, deadlines): with one process per core, 2 cores were 1.7 busy
    on average (user + system time over wall time of a whole run).
    ``--maxprocesses`` (pyproject.toml) caps it."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores + 1


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Which broker and which PostgreSQL the run uses (decided now, started when first needed)."""
    from services.kafka_broker import BrokerStartError, broker_plan
    from services.postgres_cluster import postgres_plan

    try:
        kafka = broker_plan().description
    except BrokerStartError as error:
        kafka = f"none ({error})"
    return [f"kafka broker: {kafka}", f"postgresql: {postgres_plan()}"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from fixtures_kafka import kafka_used
    from fixtures_postgres import postgres_used

    for line in kafka_used():
        terminalreporter.write_line(f"kafka broker used: {line}")
    for line in postgres_used():
        terminalreporter.write_line(f"postgresql used: {line}")


@pytest.fixture
def ledger_home(tmp_path, monkeypatch):
    """A fresh LEDGER_HOME for a test: its own embedded log and projection store."""
    home = tmp_path / "ledger-home"
    monkeypatch.setenv("LEDGER_HOME", str(home))
    monkeypatch.delenv("LEDGER_LOG", raising=False)
    monkeypatch.delenv("LEDGER_STORE", raising=False)
    monkeypatch.delenv("LEDGER_POLICY", raising=False)
    return home

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


@pytest.fixture
def ledger_home(tmp_path, monkeypatch):
    """A fresh LEDGER_HOME for a test: its own embedded log and projection store."""
    home = tmp_path / "ledger-home"
    monkeypatch.setenv("LEDGER_HOME", str(home))
    monkeypatch.delenv("LEDGER_LOG", raising=False)
    monkeypatch.delenv("LEDGER_STORE", raising=False)
    monkeypatch.delenv("LEDGER_POLICY", raising=False)
    return home

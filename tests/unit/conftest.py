"""tests/unit/ holds only tests without I/O, and this file checks it.

A unit test here exercises the domain and the projection's rules in the
process: no file written, no database file, no subprocess, no socket.  What
needs any of those lives in tests/contract/ (one suite per port),
tests/integration/ (real stores, logs and brokers) or tests/e2e/ (the CLI
and the server as processes).  A projection store held in memory
(``SQLiteProjectionStore(":memory:")``, ``builders.projected``) is the one
store a unit test may use: it is the real SQL, and it leaves nothing behind.

Reading the repository's own files (examples/, docs/) is allowed: that is the
test's input, not state it leaves behind.  Hypothesis keeps no example
database for these tests, for the same reason.
"""

from __future__ import annotations

import builtins
import io
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest
from hypothesis import settings

# Fixtures that only exist to give a test a place on disk, a server or a broker.
IO_FIXTURES = frozenset({
    "tmp_path", "tmp_path_factory", "tmpdir", "tmpdir_factory", "ledger_home",
    "postgres_url", "postgres_server", "kafka_url", "kafka_broker",
})
# SQLite names that open a database in memory, never a file.
IN_MEMORY = (":memory:", "")

settings.register_profile("unit-no-io", database=None)
settings.load_profile("unit-no-io")

HERE = Path(__file__).resolve().parent


class UnitTestIO(AssertionError):
    """A unit test reached for I/O; the message says what and where the test belongs."""


def _refuse(what: str) -> UnitTestIO:
    return UnitTestIO(f"a unit test does no I/O, and this one {what}: "
                      "move it to tests/integration/ (or tests/e2e/ for a process), "
                      "or use an in-memory store (builders.projected)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if HERE not in Path(str(item.fspath)).resolve().parents:
        return
    asked = sorted(IO_FIXTURES.intersection(getattr(item, "fixturenames", ())))
    if asked:
        raise _refuse(f"asks for the fixture {', '.join(asked)}")


@pytest.fixture(autouse=True)
def no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect, real_open = sqlite3.connect, builtins.open

    def connect(database, *args, **kwargs):
        name = str(database)
        if name in IN_MEMORY or (name.startswith("file:") and "mode=memory" in name):
            return real_connect(database, *args, **kwargs)
        raise _refuse(f"opens the SQLite database {name!r}")

    def open_(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wax+"):
            raise _refuse(f"opens {str(file)!r} to write (mode {mode!r})")
        return real_open(file, mode, *args, **kwargs)

    class NoProcess:
        def __init__(self, args, *rest, **kwargs):
            raise _refuse(f"starts the process {args!r}")

    def connect_socket(self, address):
        raise _refuse(f"connects a socket to {address!r}")

    monkeypatch.setattr(sqlite3, "connect", connect)
    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)  # pathlib writes through io.open
    monkeypatch.setattr(subprocess, "Popen", NoProcess)
    monkeypatch.setattr(socket.socket, "connect", connect_socket)

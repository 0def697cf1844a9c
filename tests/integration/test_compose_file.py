"""docker/compose.yaml, checked without a Docker engine.

There is no Docker engine on the development and CI machines, so the
deployment is checked for what can go wrong in it without one: the shape
(services, images, KRaft, health checks, start order), that every URL the
ledger services use names the right service, port, user, password and
database, that every ledger command parses with the real CLI, and that the
ledger health check -- real code -- passes against a real PostgreSQL and
fails against none.  docker/README.md says what has not been run.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from consumers.cli.core import _parser

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
LEDGER_SERVICES = ("projector", "alert-publisher")  # long-running, built from docker/Dockerfile


def interpolate(text: str) -> str:
    """What compose does to a value: ${NAME:-default} from the environment, $$ -> $."""
    text = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m.group(1)) or m.group(2), text)
    return text.replace("$$", "$")


def env(service: str) -> dict[str, str]:
    return {k: interpolate(str(v)) for k, v in SERVICES[service].get("environment", {}).items()}


def ledger_argv(service: str) -> list[str]:
    """The `ledger ...` argument list a service runs (also inside `sh -c`)."""
    command = [interpolate(part) for part in SERVICES[service]["command"]]
    if command[:2] == ["sh", "-c"]:
        lexer = shlex.shlex(command[2], posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
        start = words.index("ledger")
        end = words.index(";", start) if ";" in words[start:] else len(words)
        command = words[start:end]
    assert command[0] == "ledger", command
    return command


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_the_deployment_has_kafka_postgresql_projectors_and_an_alert_publisher() -> None:
    assert {"kafka", "postgres", "projector", "alert-publisher"} <= set(SERVICES)
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert SERVICES["postgres"]["image"] == "postgres:16"
    for name in (*LEDGER_SERVICES, "cli"):
        build = SERVICES[name]["build"]
        assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert 'pip install ".[postgres]"' in dockerfile
    # The one-off tools service does not start with `up`.
    assert SERVICES["cli"]["profiles"] == ["tools"]


def test_kafka_runs_in_kraft_mode_on_one_node() -> None:
    kafka = env("kafka")
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{kafka['KAFKA_NODE_ID']}@kafka:9093"
    assert "CONTROLLER://:9093" in kafka["KAFKA_LISTENERS"].split(",")
    assert kafka["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert kafka["CLUSTER_ID"]
    assert not any("ZOOKEEPER" in key for key in kafka)
    # One broker: internal topics with more replicas than that never form.
    assert kafka["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert kafka["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    # The log of record survives a restart: its data directory is a volume.
    assert f"kafka-data:{kafka['KAFKA_LOG_DIRS']}" in SERVICES["kafka"]["volumes"]
    assert "kafka-data" in COMPOSE["volumes"] and "postgres-data" in COMPOSE["volumes"]


@pytest.mark.parametrize("service", ["kafka", "postgres", *LEDGER_SERVICES])
def test_every_long_running_service_has_a_health_check(service: str) -> None:
    check = SERVICES[service]["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1
    assert {"interval", "timeout", "retries"} <= set(check)


def test_the_kafka_health_check_asks_a_listener_kafka_has() -> None:
    port = re.search(r"--bootstrap-server localhost:(\d+)", SERVICES["kafka"]["healthcheck"]["test"][1]).group(1)
    assert f"PLAINTEXT://:{port}" in env("kafka")["KAFKA_LISTENERS"].split(",")


@pytest.mark.parametrize("service", [*LEDGER_SERVICES, "cli"])
def test_ledger_services_start_after_kafka_and_postgresql_are_healthy(service: str) -> None:
    assert SERVICES[service]["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }


@pytest.mark.parametrize("service", [*LEDGER_SERVICES, "cli"])
def test_every_url_names_the_right_service_port_and_credentials(service: str) -> None:
    values = env(service)
    log, store = urlparse(values["LEDGER_LOG"]), urlparse(values["LEDGER_STORE"])
    # The log: the broker's advertised in-network listener.
    assert log.scheme == "kafka"
    assert f"PLAINTEXT://{log.netloc}" in env("kafka")["KAFKA_ADVERTISED_LISTENERS"].split(",")
    # The store: the postgres service, with the user, password and database it creates.
    postgres = env("postgres")
    assert (store.scheme, store.hostname, store.port) == ("postgresql", "postgres", 5432)
    assert (store.username, store.password, store.path) == (
        postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], f"/{postgres['POSTGRES_DB']}"
    )
    assert store.query == "schema=projections"
    # The commands name the same log and store as the environment.
    if service in LEDGER_SERVICES:
        argv = ledger_argv(service)
        assert option(argv, "--log") == values["LEDGER_LOG"]
        assert option(argv, "--store") == values["LEDGER_STORE"]


def test_the_postgresql_health_check_asks_for_the_database_the_urls_use() -> None:
    check = SERVICES["postgres"]["healthcheck"]["test"][1]
    postgres = env("postgres")
    assert f"-U {postgres['POSTGRES_USER']} -d {postgres['POSTGRES_DB']}" in check


@pytest.mark.parametrize("service", LEDGER_SERVICES)
def test_each_ledger_command_parses_with_the_real_cli(service: str) -> None:
    args = _parser().parse_args(ledger_argv(service)[1:])
    assert callable(args.run)


def test_projectors_are_replicas_of_one_consumer_group() -> None:
    projector = SERVICES["projector"]
    assert projector["deploy"]["replicas"] >= 2
    # Scaling needs services without fixed names or host ports.
    assert "container_name" not in projector and "ports" not in projector
    argv = ledger_argv("projector")
    assert argv[1:3] == ["kafka", "project"] and option(argv, "--group") == "projectors"
    # Alerts are published by the one alert-publisher, not by every replica.
    assert "--no-publish" in argv
    assert ledger_argv("alert-publisher")[1:3] == ["kafka", "publish-alerts"]
    assert SERVICES["alert-publisher"].get("deploy", {}).get("replicas", 1) == 1


def _health_check(store_url: str) -> subprocess.CompletedProcess[str]:
    test = SERVICES["projector"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    environ = {**os.environ, "LEDGER_STORE": store_url}
    return subprocess.run([sys.executable, *test[2:]], env=environ, capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def test_the_ledger_health_check_passes_when_the_store_opens(postgres_url: str) -> None:
    done = _health_check(postgres_url)
    assert done.returncode == 0, done.stderr


def test_the_ledger_health_check_fails_when_postgresql_is_not_there() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = _health_check(f"postgresql://ledger@127.0.0.1:{port}/ledger?schema=projections")
    assert done.returncode != 0
    assert f"127.0.0.1:{port}/ledger" in done.stderr

"""The events topic is created as a log of record needs it, and an existing
one whose settings would lose reports is refused with one clear line."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from fixtures_kafka import LEDGER, PROCESS_TIMEOUT_S, ledger_env
from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from consumers.log.kafka import KafkaLog, events_topic_problems
from ledger.ports import LogUnavailable

WEEK_MS = "604800000"  # what a broker gives a topic by default (log.retention.hours=168)


def topic_configs(bootstrap: str, topic: str) -> dict[str, str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
        [meta] = admin.describe_topics([topic])
    finally:
        admin.close()
    configs = {k: v["value"] for k, v in described["topic"][topic].items()}
    configs["replicas"] = str(min(len(p["replica_nodes"]) for p in meta["partitions"]))
    return configs


def test_the_events_topic_is_created_to_keep_every_report_in_append_order(kafka_bootstrap):
    prefix = f"t{uuid.uuid4().hex[:12]}"
    log = KafkaLog.from_url(f"kafka://{kafka_bootstrap}/{prefix}?partitions=2&replication=1&min_insync=1")
    events = topic_configs(kafka_bootstrap, log.events_topic)
    assert {k: events[k] for k in ("retention.ms", "retention.bytes", "cleanup.policy", "message.timestamp.type",
                                   "min.insync.replicas", "replicas")} == {
        "retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete",
        "message.timestamp.type": "LogAppendTime", "min.insync.replicas": "1", "replicas": "1"}
    for topic in (log.alerts_topic, log.dead_letters_topic):
        assert topic_configs(kafka_bootstrap, topic)["retention.ms"] == "-1"
    assert topic_configs(kafka_bootstrap, log.alerts_published_topic)["cleanup.policy"] == "compact"
    log.close()
    KafkaLog.from_url(f"kafka://{kafka_bootstrap}/{prefix}").close()  # its own topic: accepted again


def test_an_events_topic_a_third_party_created_with_a_7_day_retention_is_refused_in_one_line(kafka_bootstrap, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:12]}"
    # A party's system produces before the ledger ever ran: the broker
    # auto-creates the topic with its defaults (7 days' retention).
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","))
    producer.send(f"{prefix}.events", key=b"TR-1", value=b"{}").get(timeout=PROCESS_TIMEOUT_S)
    producer.close()
    assert topic_configs(kafka_bootstrap, f"{prefix}.events")["retention.ms"] == WEEK_MS

    url = f"kafka://{kafka_bootstrap}/{prefix}"
    with pytest.raises(LogUnavailable) as refused:
        KafkaLog.from_url(url)
    assert str(refused.value) == (
        f"Kafka at {kafka_bootstrap}: refusing to use the existing topic {prefix}.events: "
        f"retention.ms={WEEK_MS} deletes reports after 7 days (need -1). Fix it (kafka-configs.sh --alter "
        f"--entity-type topics --entity-name {prefix}.events --add-config retention.ms=-1,retention.bytes=-1,"
        f"cleanup.policy=delete,unclean.leader.election.enable=false) or use another topic prefix")

    done = subprocess.run([str(LEDGER), "kafka", "project", "--log", url, "--store", f"sqlite:///{tmp_path}/s.db",
                           "--group", "g", "--max-idle", "1"],
                          capture_output=True, text=True, env=ledger_env(), timeout=PROCESS_TIMEOUT_S)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"ledger kafka: {refused.value}"]


@pytest.mark.parametrize(("configs", "replicas", "expected"), [
    ({"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}, 1, []),
    ({"retention.ms": "86400000"}, 1, ["retention.ms=86400000 deletes reports after 1 day (need -1)"]),
    ({"retention.bytes": "1073741824"}, 1, ["retention.bytes=1073741824 deletes the oldest reports (need -1)"]),
    ({"cleanup.policy": "compact,delete"}, 1,
     ["cleanup.policy=compact,delete keeps only the last report of each trace (need delete)"]),
    ({"unclean.leader.election.enable": "true"}, 1,
     ["unclean.leader.election.enable=true lets a replica that missed acknowledged reports become leader "
      "(need false)"]),
])
def test_each_setting_that_loses_reports_is_named(configs, replicas, expected):
    assert events_topic_problems(configs, replicas=replicas, replication=None, min_insync=None) == expected


def test_fewer_replicas_or_a_smaller_insync_minimum_than_configured_is_named():
    assert events_topic_problems({"min.insync.replicas": "1"}, replicas=1, replication=3, min_insync=2) == [
        "1 replica(s) per partition, configured replication=3",
        "min.insync.replicas=1, configured min_insync=2"]
    assert events_topic_problems({"min.insync.replicas": "2"}, replicas=3, replication=3, min_insync=2) == []

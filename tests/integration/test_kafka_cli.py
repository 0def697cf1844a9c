"""The Kafka walkthrough of docs/KAFKA.md, as a user types it: the real
`ledger` console script against a real broker."""

from __future__ import annotations

import csv
import io
import json
import subprocess

from fixtures_kafka import LEDGER, PROCESS_TIMEOUT_S, ROOT, STORY, ledger_env

from consumers.log.kafka import KafkaLog
from projections.sqlite_store import SQLiteProjectionStore


def ledger(*args: str, home) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LEDGER), *args], capture_output=True, text=True,
                          env=ledger_env(LEDGER_HOME=str(home)), timeout=PROCESS_TIMEOUT_S)


def test_ingest_project_follow_and_replay_on_kafka(kafka_url, tmp_path):
    home = tmp_path / "home"
    # Ingest through the port: the story, then a file with bad lines.
    done = ledger("ingest", str(STORY), "--log", kafka_url, home=home)
    assert done.returncode == 0, done.stderr
    assert "24 lines: 24 sent to the log, 0 rejected" in done.stdout
    # Sent again: Kafka cannot look event ids up, so ingest does not claim
    # they are new; the projection drops them (checked below by replay).
    again = ledger("ingest", str(STORY), "--log", kafka_url, "--no-project", home=home)
    assert "cannot tell a re-send from a new report" in again.stdout
    done = ledger("ingest", "--json", str(ROOT / "examples" / "bad-reports.jsonl"), "--log", kafka_url, home=home)
    assert done.returncode == 3
    rejected = json.loads(done.stdout)["rejected"]
    assert {"field": "quantity.amount", "value": "30.5", "message": rejected[5]["problems"][0]["message"]} \
        == rejected[5]["problems"][0] and rejected[5]["line"] == 7

    # Refused lines are not dropped: they are on the dead-letter topic, with the reason.
    log = KafkaLog.from_url(kafka_url)
    letters = [json.loads(r.value) for p in log.topic_partitions(log.dead_letters_topic)
               for r in log.read_topic(log.dead_letters_topic, p, 0, 100)]
    assert sorted((d["line"], d["error"]) for d in letters) == sorted(
        (r["line"], "; ".join(f"field '{p['field']}' value {p['value']}: {p['message']}" for p in r["problems"]))
        for r in rejected)
    # ... and, for a program, the same problems as a list of field, value, message.
    assert sorted((d["line"], d["problems"]) for d in letters) == sorted((r["line"], r["problems"]) for r in rejected)

    # A consumer group projects the same log into its own store.
    group_store = tmp_path / "group.db"
    done = ledger("kafka", "project", "--log", kafka_url, "--store", f"sqlite:///{group_store}",
                  "--group", "walkthrough", "--until-end", "--json", home=home)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["assignments"] == [[0, 1, 2, 3]] and summary["dead_letters"] == 0
    assert summary["records"] == sum(log.end_offsets().values())
    live = SQLiteProjectionStore(home / "projections.db")
    assert SQLiteProjectionStore(group_store).fingerprint() == live.fingerprint()

    # Publishing again finds nothing new; a dashboard following the alerts
    # topic sees each journaled transition once.
    done = ledger("kafka", "publish-alerts", "--log", kafka_url, "--store", f"sqlite:///{group_store}", home=home)
    assert done.returncode == 0 and done.stdout.startswith("published 0 alert transitions"), done.stdout
    done = ledger("alerts", "--follow", "--log", kafka_url, "--until-end", "--json", home=home)
    assert done.returncode == 0, done.stderr
    followed = [json.loads(line) for line in done.stdout.splitlines()]
    journal = SQLiteProjectionStore(group_store).journal(limit=100_000)
    # (Keyed by alert id over four partitions: in order per alert, not overall.)
    assert sorted(m["transition_id"] for m in followed) == sorted(e["transition_id"] for e in journal)
    assert {m["schema"] for m in followed} == {"ledger.alert-transition"}

    # Replay from offset 0 into a fresh store gives the live projections.
    done = ledger("replay", "--log", kafka_url, home=home)
    assert done.returncode == 0 and "replay: identical" in done.stdout, done.stdout + done.stderr
    log.close()


def test_the_projector_summary_and_the_followed_alerts_as_csv(kafka_url, tmp_path):
    home = tmp_path / "home"
    assert ledger("ingest", str(STORY), "--log", kafka_url, "--no-project", home=home).returncode == 0
    # The group projector's closing summary as one CSV row; it publishes the alerts.
    done = ledger("kafka", "project", "--log", kafka_url, "--store", f"sqlite:///{tmp_path / 'group.db'}",
                  "--group", "spreadsheet", "--max-idle", "1", "-o", "csv", home=home)
    assert done.returncode == 0, done.stderr
    [summary] = list(csv.DictReader(io.StringIO(done.stdout)))
    assert (summary["records"], summary["dead_letters"]) == ("24", "0")
    assert int(summary["alerts_published"]) > 0
    # The followed transitions: one header, then a row per transition, the same as --json's lines.
    done = ledger("kafka", "follow-alerts", "--log", kafka_url, "--max-idle", "1", "-o", "csv", home=home)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    followed = ledger("alerts", "--follow", "--log", kafka_url, "--max-idle", "1", "--json", home=home)
    lines = [json.loads(line) for line in followed.stdout.splitlines()]
    assert len(rows) == int(summary["alerts_published"]) == len(lines)
    assert sorted(r["transition_id"] for r in rows) == sorted(m["transition_id"] for m in lines)
    assert {r["schema"] for r in rows} == {"ledger.alert-transition"}


def test_kafka_commands_refuse_a_log_that_is_not_kafka(tmp_path):
    done = ledger("kafka", "project", "--group", "g", "--max-idle", "1", home=tmp_path / "home")
    assert done.returncode == 1
    assert "is not a Kafka log; write kafka://host:port/prefix" in done.stderr
    done = ledger("alerts", "--follow", "--max-idle", "1", home=tmp_path / "home")
    assert done.returncode == 1 and "--follow reads the alerts topic of a Kafka log" in done.stderr


def test_the_projector_stops_cleanly_on_sigterm(kafka_url, tmp_path, projectors):
    # As `docker stop` stops it: the batch in hand is finished, the summary printed, exit 0.
    import signal

    from fixtures_kafka import assignments, wait_until

    err = tmp_path / "projector.err"
    process = projectors(kafka_url, tmp_path / "p.db", "stoppable", stderr_path=err)
    wait_until(lambda: assignments(err), "the projector to join its group", detail=err.read_text)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=PROCESS_TIMEOUT_S)
    assert process.returncode == 0, err.read_text()
    assert json.loads(out)["assignments"] == [[0, 1, 2, 3]]

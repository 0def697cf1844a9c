"""Whatever lands on the events topic, the projector neither crashes nor skips.

Kafka does not validate: a party's buggy producer can write anything.  A
record that is not JSON, breaks the contract, or is dated in the future
beyond the clock skew once the broker's append time stamps it (whatever
recorded_at the producer claimed: issue 15) goes to the dead-letter topic (original bytes, partition, offset, error) and to the
store's dead_letters table; every valid report around it is applied.
"""

from __future__ import annotations

import json

from fixtures_kafka import fixed_clock, story_lines

from consumers.client import LedgerClient
from consumers.log.embedded import EmbeddedLog
from consumers.ingest import ingest_lines
from consumers.kafka.group_projector import GroupProjector, publish_dead_letters
from consumers.log.kafka import KafkaLog
from consumers.projector import catch_up
from consumers.bootstrap import load_policy
from projections.sqlite_store import SQLiteProjectionStore

TRACE = "TR-HF-2019-0001"  # the bad records share the partition of a real trace


def test_bad_records_become_dead_letters_and_every_good_one_is_applied(kafka_url, tmp_path):
    policy = load_policy(None)
    lines = story_lines()
    log = KafkaLog.from_url(kafka_url)
    # Sent around the SDK: a consumption dated 2031, claiming to be recorded then.
    future = dict(json.loads(lines[6]), event_id="semi-use-2031", occurred_at="2031-01-01T00:00:00+00:00",
                  recorded_at="2031-01-01T00:00:00+00:00")
    bad = [
        (TRACE, b"\x00\xffnot json at all", []),
        (TRACE, json.dumps(dict(json.loads(lines[6]), quantity={"amount": 30.5, "unit": "kg"})).encode(), []),
        (TRACE, json.dumps(future).encode(), []),
        (TRACE, b"[1, 2, 3]", []),
    ]
    with LedgerClient(log, clock=fixed_clock) as client:
        client.send(lines[:10])
        bad_positions = log.send(log.events_topic, bad)  # written between good reports
        client.send(lines[10:])

    store = SQLiteProjectionStore(tmp_path / "kafka.db")
    totals = GroupProjector(log, store, group="dlq", policy=policy, clock=fixed_clock,
                            batch_max=7).run(until=log.end_offsets())
    assert totals.dead_letters == len(bad)

    # Every valid report applied: the same state as the story alone, embedded.
    sqlite_log = EmbeddedLog(tmp_path / "log.db")
    embedded = SQLiteProjectionStore(tmp_path / "embedded.db")
    ingest_lines(lines, sqlite_log, source="story", clock=fixed_clock)
    catch_up(sqlite_log, embedded, policy=policy, clock=fixed_clock)
    # (recorded_at on Kafka is the broker's: the report rows are compared
    # by what they made.  Issue 14: each bad record also flags the trace it
    # is keyed by with a `quarantined` alert, compared on its own.)
    assert store.lots() == embedded.lots()
    now = fixed_clock()
    assert [a for a in store.standing_alerts(now) if a["kind"] != "quarantined"] == embedded.standing_alerts(now)
    flagged = [a for a in store.standing_alerts(now) if a["kind"] == "quarantined"]
    assert [(a["trace_id"], a["severity"]) for a in flagged] == [(TRACE, "high")] * len(bad)

    # The store keeps each with its position and why.
    kept = {(d["partition"], d["offset"]): d for d in store.dead_letters()}
    assert sorted(kept) == sorted(bad_positions)
    for (key, value, _h), position in zip(bad, bad_positions):
        assert bytes(kept[position]["value"]) == value and kept[position]["key"] == key
    errors = [kept[p]["error"] for p in bad_positions]
    assert "quantity" in errors[1] and "30.5" in errors[1]
    assert "occurred_at" in errors[2] and "cannot describe the future" in errors[2]

    # The dead-letter topic has each once, with original bytes, partition, offset and error.
    letters = [r for p in log.topic_partitions(log.dead_letters_topic)
               for r in log.read_topic(log.dead_letters_topic, p, 0, 100)]
    assert len(letters) == len(bad)
    by_origin = {}
    for letter in letters:
        headers = dict(letter.headers)
        origin = (int(headers["original_partition"]), int(headers["original_offset"]))
        by_origin[origin] = (letter.value, headers["error"].decode(), headers["original_topic"])
    for (_key, value, _h), position in zip(bad, bad_positions):
        assert by_origin[position][0] == value
        assert by_origin[position][1] == kept[position]["error"]
        assert by_origin[position][2] == log.events_topic.encode()

    # Publishing again sends nothing twice: what was sent is recorded in the store.
    assert publish_dead_letters(store, log) == 0
    log.close()


def test_ledger_rejects_reads_the_dead_letter_topic_with_why_each_was_refused(kafka_url, tmp_path):
    import subprocess

    from fixtures_kafka import LEDGER, PROCESS_TIMEOUT_S, ROOT, ledger_env

    def ledger(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(LEDGER), *args], capture_output=True, text=True,
                              env=ledger_env(LEDGER_HOME=str(tmp_path / "home")), timeout=PROCESS_TIMEOUT_S)

    # Refused input lines (ingest) and a record the projector could not apply.
    ingested = ledger("ingest", "--json", str(ROOT / "examples" / "bad-reports.jsonl"), "--log", kafka_url,
                      "--no-project")
    assert ingested.returncode == 3, ingested.stderr
    refused = json.loads(ingested.stdout)["rejected"]
    log = KafkaLog.from_url(kafka_url)
    [(partition, offset)] = log.send(log.events_topic, [(TRACE, b"\x00\xffnot json at all", [])])
    store = SQLiteProjectionStore(tmp_path / "kafka.db")
    GroupProjector(log, store, group="rejects", policy=load_policy(None), clock=fixed_clock).run(until=log.end_offsets())

    shown = ledger("rejects", "--log", kafka_url, "--json")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    from_input = sorted((r["line"], r["problems"]) for r in rows if r["source"].endswith("bad-reports.jsonl"))
    assert from_input == sorted(
        (r["line"], "; ".join(f"field '{p['field']}' value {p['value']}: {p['message']}" for p in r["problems"]))
        for r in refused)
    [applied] = [r for r in rows if r["source"] == f"{log.events_topic}[{partition}]@{offset}"]
    assert applied["line"] == offset and applied["raw"] == b"\x00\xffnot json at all".decode(errors="replace")
    assert applied["problems"] == store.dead_letters()[0]["error"]
    assert len(rows) == len(refused) + 1

    table = ledger("rejects", "--log", kafka_url)
    assert table.returncode == 0 and f"{log.events_topic}[{partition}]@{offset}" in table.stdout
    log.close()

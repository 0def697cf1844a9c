"""docker/compose.yaml in miniature, without Docker: two `ledger kafka project`
processes in one consumer group sharing one PostgreSQL store, then
`ledger kafka publish-alerts`, run as the compose services run them.

The store they build together must equal the embedded run of the same
reports, byte for byte (fingerprint), and what is published must be what
the store journaled.
"""

from __future__ import annotations

import json
import subprocess

from fixtures_kafka import LEDGER, PROCESS_TIMEOUT_S, fixed_clock, ledger_env, story_lines

from consumers.client import LedgerClient
from consumers.log.embedded import EmbeddedLog
from consumers.ingest import ingest_lines
from consumers.projector import catch_up
from consumers.bootstrap import load_policy
from projections.postgres_store import PostgresProjectionStore
from projections.sqlite_store import SQLiteProjectionStore

# Each member stops after this long without a record once it has partitions.
# A rebalance that moves partitions between the members takes a few seconds
# (longer on a loaded machine: with a 3 s bound a member once stopped holding
# partitions it had not read yet, 13 of 24 records applied); the session
# timeout is 6 s, so a member that leaves is noticed within the bound.
IDLE_S = "10"


def test_two_projector_processes_share_one_postgresql_store(kafka_url, postgres_url, tmp_path):
    lines = story_lines()
    with LedgerClient(kafka_url, clock=fixed_clock, batch_max=5) as client:
        client.send(lines)
    projectors = [
        subprocess.Popen(
            [str(LEDGER), "kafka", "project", "--log", kafka_url, "--store", postgres_url,
             "--group", "projectors", "--no-publish", "--max-idle", IDLE_S, "--batch-max", "4", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ledger_env(),
        )
        for _ in range(2)
    ]
    summaries, said = [], []
    for process in projectors:
        out, err = process.communicate(timeout=PROCESS_TIMEOUT_S)
        assert process.returncode == 0, err
        summaries.append(json.loads(out))
        said.append(err)
    # Between them they applied every report once.
    assert sum(s["records"] for s in summaries) == len(lines), (summaries, said)

    sqlite_log = EmbeddedLog(tmp_path / "log.db")
    ingest_lines(lines, sqlite_log, source="story", clock=fixed_clock)
    embedded = SQLiteProjectionStore(tmp_path / "embedded.db")
    catch_up(sqlite_log, embedded, policy=load_policy(None), clock=fixed_clock)
    store = PostgresProjectionStore.from_url(postgres_url)
    try:
        # recorded_at on Kafka is the broker's append time (issue 15), not the
        # SDK's clock: the same reports (digests) make the same rows.
        for model in ("lots", "alert_steps"):
            assert store.fingerprint()[model] == embedded.fingerprint()[model]
        assert sorted(d for vs in store.all_versions().values() for _p, d in vs) == sorted(
            d for vs in embedded.all_versions().values() for _p, d in vs)
        assert store.lots() == embedded.lots()
        journaled = len(store.journal())
    finally:
        store.close()
        embedded.close()
        sqlite_log.close()
    assert journaled > 0

    # The alert publisher, as the compose service runs it.
    published = subprocess.run(
        [str(LEDGER), "kafka", "publish-alerts", "--log", kafka_url, "--store", postgres_url],
        capture_output=True, text=True, env=ledger_env(), timeout=PROCESS_TIMEOUT_S,
    )
    assert published.returncode == 0, published.stderr
    assert published.stdout.startswith(f"published {journaled} alert transitions")

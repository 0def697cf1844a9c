"""The backup and restore commands of docs/OPERATIONS.md, run as written.

A store restored from a backup holds the read models and the tracked
offsets of the moment of the backup; catching up from there gives the same
store as one that never stopped.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from psycopg import sql

from consumers.log.embedded import EmbeddedLog
from consumers.ingest import ingest_lines
from consumers.projector import catch_up
from fixtures_postgres import admin_connection
from ledger.policy import Policy
from projections.postgres_store import PostgresProjectionStore
from projections.sqlite_store import SQLiteProjectionStore

ROOT = Path(__file__).resolve().parents[2]
STORY = ROOT / "examples" / "story-2019.jsonl"
CLOCK = datetime(2019, 12, 1, tzinfo=timezone.utc)
TOOL_TIMEOUT_S = 60


def story_log(path: Path, *, first_lines: int | None = None) -> EmbeddedLog:
    log = EmbeddedLog(path)
    lines = STORY.read_text(encoding="utf-8").splitlines()[:first_lines]
    ingest_lines(lines, log, source=str(STORY), clock=lambda: CLOCK)
    return log


def run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr}"


def test_sqlite_store_backup_restores_and_catches_up(tmp_path: Path) -> None:
    # Half the story is projected when the backup is taken; the rest after.
    log = story_log(tmp_path / "log.db", first_lines=12)
    live_path = tmp_path / "projections.db"
    live = SQLiteProjectionStore(live_path)
    catch_up(log, live, policy=Policy(), clock=lambda: CLOCK)
    at_backup = live.tracked_offsets(log.name)
    backup = tmp_path / "projections-backup.db"
    run(shutil.which("sqlite3") or "sqlite3", str(live_path), f".backup '{backup}'")
    ingest_lines(STORY.read_text(encoding="utf-8").splitlines()[12:], log, source=str(STORY), clock=lambda: CLOCK)
    catch_up(log, live, policy=Policy(), clock=lambda: CLOCK)
    live.close()
    # Restore: the backup file in place of the store, then catch up.
    restored_path = tmp_path / "restored.db"
    shutil.copy(backup, restored_path)
    restored = SQLiteProjectionStore(restored_path)
    assert restored.tracked_offsets(log.name) == at_backup  # where it resumes
    catch_up(log, restored, policy=Policy(), clock=lambda: CLOCK)
    live = SQLiteProjectionStore(live_path)
    assert restored.fingerprint() == live.fingerprint()
    live.close()
    restored.close()
    log.close()


def test_postgresql_schema_dump_restores_and_catches_up(tmp_path: Path, postgres_url: str) -> None:
    schema = postgres_url.rsplit("schema=", 1)[1]
    server = postgres_url.split("?", 1)[0]
    log = story_log(tmp_path / "log.db", first_lines=12)
    store = PostgresProjectionStore.from_url(postgres_url)
    catch_up(log, store, policy=Policy(), clock=lambda: CLOCK)
    before, at_backup = store.fingerprint(), store.tracked_offsets(log.name)
    store.close()
    dump = tmp_path / "projections.dump"
    run("pg_dump", "--dbname", server, "--schema", schema, "--format", "custom", "--file", str(dump))
    # Disaster: the schema is gone.  Restore it whole from the dump.
    with admin_connection() as admin:
        admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    run("pg_restore", "--dbname", server, str(dump))
    restored = PostgresProjectionStore.from_url(postgres_url)
    try:
        assert restored.fingerprint() == before
        assert restored.tracked_offsets(log.name) == at_backup
        # The rest of the story arrives; the restored store catches up and
        # equals a SQLite store that saw everything in one go.
        ingest_lines(STORY.read_text(encoding="utf-8").splitlines()[12:], log, source=str(STORY),
                     clock=lambda: CLOCK)
        catch_up(log, restored, policy=Policy(), clock=lambda: CLOCK)
        reference = SQLiteProjectionStore(tmp_path / "reference.db")
        catch_up(log, reference, policy=Policy(), clock=lambda: CLOCK)
        assert restored.fingerprint() == reference.fingerprint()
        reference.close()
    finally:
        restored.close()
        log.close()

"""The embedded log's read with the casts that keep a hand-edited row readable
(consumers/log/embedded.py, _RECORD_COLUMNS) against the plain columns, paired
in one process: the read_by_key query over every record, CPU time, 5 rounds.

    python -m bench.read_cast LEDGER_HOME/log.db
"""

from __future__ import annotations

import sqlite3
import sys
import time

ORDER = "FROM events WHERE offset < ? ORDER BY substr(key, 1, 8) != 'license:', key, offset"
QUERIES = {
    "plain": f"SELECT offset, key, value, digest {ORDER}",
    "cast": f"SELECT offset, key, CAST(value AS BLOB), CAST(digest AS TEXT) {ORDER}",
}
ROUNDS = 5


def read_all(db: sqlite3.Connection, query: str) -> tuple[float, int]:
    started, count = time.process_time(), 0
    cursor = db.execute(query, (2**62,))
    while rows := cursor.fetchmany(1000):
        for _offset, _key, value, digest in rows:
            bytes(value), digest.encode()  # what the reader does with each row
            count += 1
    return time.process_time() - started, count


def main(path: str) -> None:
    db = sqlite3.connect(path)
    times: dict[str, list[float]] = {name: [] for name in QUERIES}
    records = 0
    for _ in range(ROUNDS):
        for name, query in QUERIES.items():
            spent, records = read_all(db, query)
            times[name].append(spent)
    median = {name: sorted(t)[ROUNDS // 2] for name, t in times.items()}
    for name, t in times.items():
        print(f"{name}: median {median[name]:.3f} s CPU ({', '.join(f'{x:.3f}' for x in t)})")
    print(f"{records} records; cast / plain = {median['cast'] / median['plain']:.3f}")


if __name__ == "__main__":
    main(sys.argv[1])

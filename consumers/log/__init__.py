"""The adapters of the event-log port (ledger.ports.EventLog), side by side:
embedded.py (one SQLite file, the default) and kafka.py (Apache Kafka).
consumers/bootstrap.py opens one from a URL."""

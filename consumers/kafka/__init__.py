"""Kafka-protocol adapters: the log adapter and a broker for tests and walkthroughs."""

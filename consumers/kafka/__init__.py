"""The processes of a Kafka log of record: the consumer-group projector and the
alert publisher.  The log adapter itself is consumers/log/kafka.py; the test
broker is tests/services/kafka_broker.py."""

"""How late a consumer sees a record, by ``fetch_max_wait_ms``.

A record is sent every 37 ms (round-robin over the partitions) to a topic
a consumer is polling; each record carries its send time (the machine's
monotonic clock), and the consumer takes the difference when it reads it.
Against Apache Kafka the wait hardly matters: a held fetch is answered when
a record arrives.  Tansu, the test broker, answers a held fetch only when
its wait ends, so there the wait is the delivery latency
(consumers/log/kafka.py FETCH_MAX_WAIT_MS).

    python -m bench.fetch_wait [--waits 100,10] [--partitions 1,4] [--kafka HOST:PORT]
"""

from __future__ import annotations

import argparse
import json
import threading
import time

RECORDS = 60
SEND_EVERY_S = 0.037
READ_FOR_S = 4.0
TOPIC_SETTLE_S = 0.5


def measure(bootstrap: str, topic: str, partitions: int, wait_ms: int) -> dict[str, float]:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    admin.close()
    time.sleep(TOPIC_SETTLE_S)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=wait_ms, auto_offset_reset="earliest")
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    latencies: list[float] = []

    def send() -> None:
        for n in range(RECORDS):
            time.sleep(SEND_EVERY_S)
            producer.send(topic, value=repr(time.perf_counter()).encode(), partition=n % partitions)

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + READ_FOR_S
    while time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            latencies.extend(time.perf_counter() - float(r.value) for r in records)
    sender.join()
    consumer.close()
    producer.close()
    latencies.sort()
    return {"partitions": partitions, "fetch_max_wait_ms": wait_ms, "records": len(latencies),
            "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
            "p90_ms": round(1000 * latencies[int(len(latencies) * 0.9)], 1),
            "max_ms": round(1000 * latencies[-1], 1)}


def main(argv: list[str] | None = None) -> int:
    from bench.run import kafka_broker

    parser = argparse.ArgumentParser(prog="python -m bench.fetch_wait", description=__doc__.split("\n\n")[0])
    parser.add_argument("--waits", default="100,10", help="fetch_max_wait_ms values, comma-separated")
    parser.add_argument("--partitions", default="1,4", help="partition counts, comma-separated")
    parser.add_argument("--kafka", default="auto", help="'auto' (start a broker) or HOST:PORT")
    args = parser.parse_args(argv)
    with kafka_broker(args.kafka) as broker:
        for partitions in (int(p) for p in args.partitions.split(",")):
            for wait_ms in (int(w) for w in args.waits.split(",")):
                topic = f"fetch-wait-{partitions}-{wait_ms}-{time.time_ns()}"
                result = measure(broker["bootstrap"], topic, partitions, wait_ms)
                print(json.dumps({**result, "broker": broker["kind"]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

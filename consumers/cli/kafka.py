"""`ledger kafka ...`: the Kafka log of record from the command line.

Registered through consumers.cli.core.EXTENSIONS.  Thin: parse, open adapters,
call consumers/kafka/, print.  docs/KAFKA.md walks through it.

    ledger kafka project --log kafka://H:P/ledger --store sqlite:///p.db --group projectors
    ledger kafka publish-alerts --log kafka://H:P/ledger --store sqlite:///p.db
    ledger kafka follow-alerts --log kafka://H:P/ledger      (also: ledger alerts --follow)

Ingest and replay need nothing Kafka-specific: ``ledger ingest FILE --log
kafka://...`` and ``ledger replay --log kafka://...`` go through the port.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from consumers.cli.common import (EXIT_OK, CliError, Command, Ledger, UsageError, output, print_csv, storage,
                                  subcommands)
from consumers.render import fmt_amount, plural

__all__ = ["register", "follow"]

PROJECT_EPILOG = """\
Joins consumer group GROUP on the events topic and applies every polled
batch to the store in one transaction with its offsets.  Start more
processes with the same --group and --store to split the partitions.  On
start and on every rebalance it reads on from the offsets recorded in the
STORE, not from Kafka's committed offsets, so a crash (even kill -9) never
counts a report twice: start it again.  After each batch it publishes new
dead letters and alert transitions from the store (see --no-publish).

examples:
  ledger kafka project --log kafka://127.0.0.1:9092/ledger --group projectors
  ledger kafka project --log kafka://127.0.0.1:9092/ledger --group projectors --until-end --json

exit status:
  0 stopped (--until-end, --max-idle, or Ctrl-C: 130);  1 the broker or store could not be reached;  2 usage error.
"""

KAFKA_EPILOG = """\
With a Kafka log of record (--log kafka://HOST:PORT/PREFIX), reports go to
the PREFIX.events topic.  `kafka project` applies them to a projection store
as a consumer group, `kafka publish-alerts` sends the store's alert
transitions to the alerts topic, and `kafka follow-alerts` prints them as
they arrive.  ingest, replay and the other commands take a kafka:// --log
as they take any other.  docs/KAFKA.md walks through it; to try it,
`PORT=9092 make kafka` starts a broker on 127.0.0.1:9092.

examples:
  ledger ingest reports.jsonl --log kafka://127.0.0.1:9092/ledger --no-project
  ledger kafka project --log kafka://127.0.0.1:9092/ledger --group projectors
  ledger kafka publish-alerts --log kafka://127.0.0.1:9092/ledger
  ledger kafka follow-alerts --log kafka://127.0.0.1:9092/ledger --until-end

exit status:
  each subcommand's help says its own;  2 no subcommand, or a usage error.
"""

PUBLISH_EPILOG = """\
Sends every alert transition the store journaled and has not yet published
to the alerts topic, keyed by alert id, and records what it sent in the
store.  Transition ids are deterministic: a subscriber drops copies by id.

examples:
  ledger kafka publish-alerts --log kafka://127.0.0.1:9092/ledger --store sqlite:///p.db

exit status:
  0 ok;  1 the broker or store could not be reached;  2 usage error.
"""

FOLLOW_EPILOG = """\
Reads the alerts topic from the beginning, as a dashboard would, and prints
each transition once (copies with a transition id already seen are dropped).

examples:
  ledger kafka follow-alerts --log kafka://127.0.0.1:9092/ledger
  ledger alerts --follow --log kafka://127.0.0.1:9092/ledger --until-end --json

exit status:
  0 stopped (--until-end, --max-idle, or Ctrl-C: 130);  1 the broker could not be reached.
"""


def register(command: Command) -> None:
    p = command("kafka", "Kafka log of record: group projector, alert publisher, alert follower.",
                _cmd_kafka_help, epilog=KAFKA_EPILOG)
    subcommand = subcommands(p, "kafka_command", "SUBCOMMAND")

    q = subcommand("project", "Run a consumer-group projector into a store.", _cmd_project, PROJECT_EPILOG)
    q.add_argument("--group", required=True, help="consumer group id; members share partitions and --store")
    q.add_argument("--max-idle", type=float, metavar="S",
                   help="stop after S seconds with no new record (default: run until Ctrl-C)")
    q.add_argument("--until-end", action="store_true",
                   help="stop once the store holds every record the topic held at start "
                        "(whichever group member applied it): a catch-up run for a script")
    q.add_argument("--batch-max", type=int, default=None, metavar="N",
                   help="records per batch (one store transaction) while catching up; live, a batch is what "
                        "arrived since the last (default: 20000; less memory: 5000)")
    q.add_argument("--no-publish", action="store_true",
                   help="do not publish alerts and dead letters (default: publish after each batch)")
    output(q, "the closing summary as one row", json_is="the closing summary as JSON")
    q.add_argument("--trust-recorded-at", action="store_true",
                   help="keep the recorded_at each report carries (an operator migrating a system of record); "
                        "by default the ledger stamps it: on Kafka with the broker's append time")
    storage(q)

    q = subcommand("publish-alerts", "Publish the store's unpublished alert transitions.", _cmd_publish,
                   PUBLISH_EPILOG)
    storage(q, policy=False)

    q = subcommand("follow-alerts", "Print alert transitions as they arrive, de-duplicated by id.",
                   follow, FOLLOW_EPILOG)
    add_follow_options(q)
    storage(q, store=False, policy=False)  # it reads the alerts topic only


def add_follow_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-idle", type=float, metavar="S",
                   help="stop after S seconds with no new transition (default: follow until Ctrl-C)")
    p.add_argument("--until-end", action="store_true",
                   help="stop once every transition committed when it started is printed")
    if not any("--json" in a.option_strings for a in p._actions):  # `ledger alerts` has them already
        output(p, "one row per transition, under one header", json_is="one JSON object per line")



def _cmd_kafka_help(args: argparse.Namespace) -> int:
    raise UsageError("name a subcommand: project, publish-alerts or follow-alerts (ledger kafka --help)")


def _kafka_log(ledger: Any) -> Any:
    from consumers.log.kafka import KafkaLog

    log = ledger.log
    if not isinstance(log, KafkaLog):
        raise CliError(f"--log {ledger.log_url!r} is not a Kafka log; write kafka://host:port/prefix")
    return log


def _cmd_project(args: argparse.Namespace) -> int:
    from consumers.kafka.group_projector import POLL_RECORDS_MAX, GroupProjector, print_summary
    from projections.batch_lock import path_lock

    ledger = Ledger(args)
    try:
        log = _kafka_log(ledger)
        if ledger.store_url.startswith("sqlite:///"):
            # Group members started together must not create one new store file at once.
            with path_lock(ledger.store_url[len("sqlite:///"):]):
                store = ledger.store
        else:
            store = ledger.store
        projector = GroupProjector(
            log, store, group=args.group, policy=ledger.policy,
            batch_max=args.batch_max or POLL_RECORDS_MAX, publish=not args.no_publish,
            say=lambda message: print(f"ledger kafka project: {message}", file=sys.stderr, flush=True),
            trust_recorded_at=args.trust_recorded_at,
        )
        # SIGTERM (docker stop, systemd) finishes the batch in hand, then stops.
        stopping: list[int] = []
        previous = signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
        try:
            until = log.end_offsets() if args.until_end else None
            totals = projector.run(max_idle_s=args.max_idle, until=until, stop=lambda: bool(stopping))
        except KeyboardInterrupt:
            totals = projector.totals
        finally:
            signal.signal(signal.SIGTERM, previous)
        if args.output == "csv":
            print_csv([totals.as_dict()])
        else:
            print_summary(totals, as_json=args.json)
    finally:
        ledger.close()
    return EXIT_OK


def _cmd_publish(args: argparse.Namespace) -> int:
    from consumers.kafka.alert_publisher import publish_alerts
    from consumers.kafka.group_projector import publish_dead_letters

    ledger = Ledger(args, must_exist=True)
    try:
        log = _kafka_log(ledger)
        alerts = publish_alerts(ledger.store, log)
        letters = publish_dead_letters(ledger.store, log)
    finally:
        ledger.close()
    print(f"published {alerts} alert {plural(alerts, 'transition')} to {log.alerts_topic} "
          f"and {letters} dead {plural(letters, 'letter')} to {log.dead_letters_topic}")
    return EXIT_OK


def follow(args: argparse.Namespace) -> int:
    """`ledger kafka follow-alerts` and `ledger alerts --follow`."""
    from consumers import bootstrap
    from consumers.kafka.alert_publisher import AlertMessage, follow_alerts
    from consumers.log.kafka import KafkaLog

    url = getattr(args, "log", None) or bootstrap.default_log_url()
    log = bootstrap.open_log(url)
    try:
        if not isinstance(log, KafkaLog):
            raise bootstrap.ConfigError(f"--follow reads the alerts topic of a Kafka log; --log {url!r} "
                                        f"is not one (write kafka://host:port/prefix)")
        party = getattr(args, "party", None)
        trace = getattr(args, "trace", None)
        as_csv = getattr(args, "output", None) == "csv"
        columns = [field.alias or name for name, field in AlertMessage.model_fields.items()]
        if as_csv:
            print_csv([], columns=columns)  # the header, once: then a row per transition as it comes

        def show(message: dict[str, Any]) -> None:
            if party and message.get("party") != party or trace and message.get("trace_id") != trace:
                return
            if as_csv:
                print_csv([message], columns=columns, header=False)
                return
            if args.json:
                print(json.dumps(message, sort_keys=True), flush=True)
                return
            quantity = message.get("quantity")
            amount = f"{fmt_amount(quantity)} {message.get('unit') or ''}".strip() if quantity is not None else ""
            print(f"{(message.get('at') or '')[:19]}  {message.get('transition', ''):<8}  "
                  f"{message.get('kind') or '':<22}  {message.get('lot_id') or '':<14}  "
                  f"{message.get('party') or '':<12}  {amount:>12}  {message.get('message') or ''}", flush=True)

        try:
            counts = follow_alerts(log, show, max_idle_s=args.max_idle, until_end=args.until_end)
        except KeyboardInterrupt:
            return 130
    finally:
        log.close()
    print(f"followed {log.alerts_topic}: {counts['transitions']} {plural(counts['transitions'], 'transition')} "
          f"({counts['copies']} {plural(counts['copies'], 'copy', 'copies')} dropped by transition id)",
          file=sys.stderr)
    return EXIT_OK

"""`ledger whereabouts`, `alerts` and `rejects`: what the ledger shows, as a
table, JSON or CSV.  The parser and the help of each is in core.py."""

from __future__ import annotations

import argparse
import importlib
import json
from datetime import datetime
from typing import Any

from consumers.cli.common import EXIT_OK, CliError, Ledger, iso, print_csv
from consumers.projector import utc_now
from consumers.render import colour_enabled, fmt_amount, severity_colour, table, terminal_width
from projections.alert_views import party_alerts, with_since
from ledger.ports import RejectRow
from projections.queries import NotFound, standing_alerts, whereabouts

__all__ = ["run_whereabouts", "run_alerts", "run_rejects", "whereabouts_table", "alerts_table",
           "REJECTS_SHOWN_DEFAULT"]

REJECTS_SHOWN_DEFAULT = 1000
REJECTS_SHOWN_ALL = 2**62  # `--limit 0`: SQLite's LIMIT takes a 64-bit integer


def run_whereabouts(args: argparse.Namespace) -> int:
    ledger = Ledger(args, must_exist=True)
    try:
        rows = whereabouts(ledger.store, args.ident, now=utc_now(), policy=ledger.policy,
                           as_of=args.as_of, known_at=args.known_at)
    finally:
        ledger.close()
    if args.json:
        print(json.dumps({"as_of": iso(args.as_of), "known_at": iso(args.known_at), "lots": rows},
                         indent=2, sort_keys=True))
        return EXIT_OK
    if args.output == "csv":
        print_csv(rows)
        return EXIT_OK
    print(whereabouts_table(rows, args.as_of, args.known_at))
    return EXIT_OK


def whereabouts_table(rows: list[dict[str, Any]], as_of: datetime | None, known_at: datetime | None) -> str:
    if not rows:
        # Say which question came back empty: "not known then" is not "never recorded".
        if known_at is not None or as_of is not None:
            when = []
            if as_of is not None:
                when.append(f"occurred by {as_of.isoformat()}")
            if known_at is not None:
                when.append(f"recorded by {known_at.isoformat()}")
            return "no lot with reports " + " and ".join(when) + " (the lot or trace is known; try a later time)"
        return "no lots recorded"
    headers = ("TRACE", "LOT", "FROM", "ITEM", "HOLDER", "UNIT", "SHIPPED", "IN TRANSIT", "RECEIVED",
               "CONSUMED", "RE-EXPORTED", "RETURNED", "LOST", "ON HAND", "DECLARED", "UNACCOUNTED", "SINCE")
    body = []
    for r in rows:
        origin = r["parent_lot_id"] and f"{r['parent_lot_id']} ({r['origin'].replace('_', '-')})"
        body.append((
            r["trace_id"], r["lot_id"], origin or r["shipper"], r["item_id"],
            f"{r['holder']} ({r['holder_country']})", r["unit"],
            *(fmt_amount(r[k]) for k in ("shipped", "in_transit", "received", "consumed", "re_exported",
                                         "returned", "lost", "on_hand", "declared_on_hand", "unaccounted")),
            (r["since"] or "")[:10],
        ))
    title = "Whereabouts"
    if as_of:
        title += f" as of {as_of.isoformat()}"
    if known_at:
        title += f", as known at {known_at.isoformat()}"
    return title + "\n" + table(headers, body, right=set(range(6, 16)), width=terminal_width())


def run_alerts(args: argparse.Namespace) -> int:
    if args.follow:
        return importlib.import_module("consumers.cli.kafka").follow(args)
    ledger = Ledger(args, must_exist=True)
    try:
        if args.journal:
            entries = ledger.store.journal(limit=100_000)
            if args.output == "csv":
                print_csv(entries)
            elif args.json:
                print(json.dumps(entries, indent=2, sort_keys=True))
            else:
                print(table(("SEQ", "AT", "TRANSITION", "KIND", "LOT", "PARTY", "QUANTITY", "MESSAGE"),
                            [(e["seq"], e["at"][:19], e["transition"], e["kind"], e["lot_id"], e["party"],
                              _qty(e["quantity"], e["unit"]), e["message"]) for e in entries],
                            right={6}, width=terminal_width()))
            return EXIT_OK
        # A mistyped trace id must not read as an all-clear.
        if args.trace is not None:
            traces = ledger.store.trace_ids_for(lot_or_trace=args.trace)
            if traces and args.trace not in traces:
                raise NotFound(f"{args.trace!r} is a lot, not a trace; its trace is {', '.join(traces)}")
            # A trace known only by a record the projection could not read
            # has no reports, only its quarantine alert: that is an answer.
            if not traces and not ledger.store.standing_alerts(utc_now(), trace_id=args.trace):
                raise NotFound(f"no trace {args.trace!r} is known (`ledger whereabouts` lists them)")
        # A mistyped party must not read as an all-clear either.
        if args.party is not None and not _party_known(ledger.store, args.party):
            raise NotFound(f"no party {args.party!r} is registered or named in any lot "
                           f"(ids are case-sensitive; `ledger parties list` shows the registry)")
        now = utc_now()
        if args.party is not None:
            # The exporter of origin sees the alerts about its material too (projections/alert_views.py).
            alerts = party_alerts(ledger.store, args.party, now=now, policy=ledger.policy, as_of=args.as_of,
                                  known_at=args.known_at, trace_id=args.trace)
        else:
            alerts = standing_alerts(ledger.store, now=now, policy=ledger.policy, as_of=args.as_of,
                                     known_at=args.known_at, trace_id=args.trace)
        alerts = with_since(ledger.store, alerts, now=now, as_of=args.as_of, known_at=args.known_at)
    finally:
        ledger.close()
    alerts = [a for a in alerts if (not args.severity or a["severity"] in args.severity)
              and (not args.kind or a["kind"] in args.kind)]
    if args.limit:
        alerts = sorted(alerts, key=lambda a: (a["due_at"], a["alert_id"]))[: args.limit]
    if args.output == "csv":
        print_csv(alerts)
        return EXIT_OK
    if args.json:
        print(json.dumps({"as_of": iso(args.as_of), "known_at": iso(args.known_at), "alerts": alerts},
                         indent=2, sort_keys=True))
        return EXIT_OK
    print(alerts_table(alerts, party=args.party))
    return EXIT_OK


def _party_known(store: Any, party: str) -> bool:
    """Registered, or named by a lot as its shipper, holder or end user."""
    if any(p.party_id == party for p in store.registered_parties()):
        return True
    return any(party in (r["shipper"], r["holder"], r["end_user"]) for r in store.lots())


def alerts_table(alerts: list[dict[str, Any]], *, party: str | None = None) -> str:
    """SINCE is the UTC date the alert first stood (``since``, else its step's
    ``due_at``); with ``party``, PARTY says "(your material)" beside another
    party an alert about material ``party`` exported is addressed to."""
    if not alerts:
        return "no alerts standing" + (f" for {party} or about material it exported" if party else "")
    rows = []
    for a in alerts:
        addressed = a["party"] + (" (your material)" if a.get("about_your_material") else "")
        rows.append((a["severity"], a["kind"], a["trace_id"], a["lot_id"], addressed,
                     _qty(a["quantity"], a["unit"]), (a.get("since") or a["due_at"])[:10], a["message"]))
    title = f"Alerts ({len(alerts)})"
    if party is not None and any(a.get("about_your_material") for a in alerts):
        title += (f": addressed to {party}, and about material {party} exported, addressed to the "
                  f"party marked (your material)")
    return title + "\n" + table(
        ("SEVERITY", "KIND", "TRACE", "LOT", "PARTY", "QUANTITY", "SINCE (UTC)", "WHAT"), rows,
        right={5}, width=terminal_width(), paint={0: severity_colour} if colour_enabled() else None,
    )


def _qty(amount: str | None, unit: str | None) -> str:
    return f"{fmt_amount(amount)} {unit}" if amount is not None else ""


def run_rejects(args: argparse.Namespace) -> int:
    ledger = Ledger(args, must_exist=True)
    try:
        reader = getattr(ledger.log, "rejects", None)
        if reader is None:
            raise CliError("this log keeps no rejects table (Kafka sends them to the dead-letter topic)")
        rows = [r.shown() for r in reader(limit=args.limit or REJECTS_SHOWN_ALL)]
    finally:
        ledger.close()
    if args.output == "csv":
        print_csv([r._asdict() for r in rows], columns=RejectRow._fields)  # none rejected: the header alone
    elif args.json:
        print(json.dumps([r._asdict() for r in rows], indent=2))
    elif not rows:
        print("no rejected input")
    else:
        print(table(("SOURCE", "LINE", "PROBLEMS"), [(r.source, r.line, r.problems) for r in rows], right={1},
                    width=terminal_width()))
    return EXIT_OK

"""`ledger flows`, `ledger trace`, `ledger audit`: the compliance views.

Registered through consumers.cli.core.EXTENSIONS.  Thin: parse, query the
projection store, call the pure functions in ledger/ and projections/audit.py,
print.  docs/COMPLIANCE.md explains each figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from consumers.cli.common import (EXIT_OK, CliError, Command, Ledger, Progress, UsageError, argument, as_of, flat,
                                  iso, output, print_csv, software_version, storage)
from consumers.projector import utc_now
from consumers.render import colour_enabled, fmt_amount, pack, plural, severity_colour, table, terminal_width
from ledger.events import country_code
from ledger.flows import parse_period
from ledger.lineage import build_lineage, lineage_dict, render_lineage
from ledger.times import end_of, start_of
from projections import audit
from projections.queries import flows_of, trace_view, whereabouts

__all__ = ["register"]

AUDIT_FORMATS = ("csv", "xlsx", "html")


def register(command: Command) -> None:

    p = command(
        "flows", "Cross-border reconciliation: shipped (as senders report) against received (as receivers report).",
        _cmd_flows,
        epilog="One row per origin country, destination country, item and period (and unit\n"
               "dimension).  GAP = SHIPPED - RECEIVED; LOTS lists what is counted.  A country\n"
               "is an ISO 3166-1 alpha-2 code in upper case, as reports and the party registry\n"
               "write it: --from jp is a usage error (write JP), never an empty answer.\n\n"
               "examples:\n"
               "  ledger flows --from JP --to KR --period 2019\n"
               "  ledger flows --period 2019-04 --item HF-UHP\n"
               "  ledger flows --period 2019 --gaps-only         only what does not add up\n"
               "  ledger flows -o csv > flows.csv                every lot each flow counts\n\n"
               "exit status:\n"
               "  0 ok (no shipments matching is an answer);  1 the store could not be opened;\n"
               "  2 usage error (a country or a period that is not one).",
    )
    p.add_argument("--from", dest="origin", metavar="CC", type=argument(country_code),
                   help="origin country: an ISO 3166-1 alpha-2 code in upper case, as reports and the party "
                        "registry write it (JP; jp is refused)")
    p.add_argument("--to", dest="destination", metavar="CC", type=argument(country_code),
                   help="destination country, the same way (KR)")
    p.add_argument("--item", metavar="ITEM", help="only this item id")
    p.add_argument("--period", metavar="YYYY[-MM]", type=argument(parse_period),
                   help="a year or a month (UTC shipment date); default: by year")
    p.add_argument("--gaps-only", action="store_true", help="only flows whose gap is not zero")
    as_of(p, "one row per flow, every lot it counts")
    storage(p)

    p = command(
        "trace", "The lineage of a trace: every lot from the export to each re-export and ship-back.",
        _cmd_trace,
        epilog="Each node shows the lot's account in its unit: shipped = received + in transit;\n"
               "received = consumed + re-exported + returned + lost + on hand.  The alerts\n"
               "standing on the trace follow the lineage.\n\n"
               "examples:\n"
               "  ledger trace TR-PR-2019-0003\n"
               "  ledger trace PR-0003-XA                        a lot's id shows its whole trace\n"
               "  ledger trace TR-HF-2019-0001 --as-of 2019-09-01\n"
               "  ledger trace TR-PR-2019-0003 --json            the lineage as a tree, for scripts\n\n"
               "exit status:\n"
               "  0 ok;  1 no such trace or lot, or the store could not be opened;\n"
               "  2 usage error (e.g. a date that cannot be read).",
    )
    p.add_argument("ident", metavar="TRACE|LOT", help="a trace id, or a lot id of the trace")
    as_of(p, "one row per lot of the lineage, the whereabouts columns (parent_lot_id links them)")
    storage(p)

    p = command(
        "audit", "Export every report and the balances it results in, as CSV, XLSX and an HTML report.",
        _cmd_audit,
        epilog="Select one of --trace, --lot, --party, --period, --from/--to (--item narrows any\n"
               "but --trace and --lot, or selects alone).  Writes about.csv, events.csv,\n"
               "balances.csv, totals.csv, alerts.csv, alert_history.csv, licenses.csv,\n"
               "audit.xlsx and report.html into --out.  Each names the selection, the\n"
               "as-of and known-at times, the software version and the deadlines (policy).\n\n"
               "--as-of T: the account as it stood at T (by when things happened);\n"
               "--known-at K: from the reports the ledger had recorded by K (what an auditor\n"
               "could have seen then).  The alert history lists every raised / updated /\n"
               "resolved transition of the selection's alerts, with --known-at those\n"
               "journaled by K.\n\n"
               "examples:\n"
               "  ledger audit --trace TR-PR-2019-0003 --out audit/\n"
               "  ledger audit --lot PR-0003-XA --out audit-xa/\n"
               "  ledger audit --period 2019 --item HF-UHP --out audit-hf-2019/\n"
               "  ledger audit --from 2019-07-01 --to 2019-09-30 --out audit-q3/\n"
               "  ledger audit --trace TR-HF-2019-0001 --as-of 2019-09-01 --out audit-sep/\n"
               "  ledger audit --trace TR-HF-2019-0001 --known-at 2019-08-31T00:00:00Z --out audit-k/\n"
               "  ledger audit --item EUV-PR --format xlsx --out audit-euv/\n\n"
               "exit status:\n"
               "  0 written;  1 nothing matches the selection, or the files cannot be written;\n"
               "  2 usage error (an unknown option, a date that is not one).",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--trace", metavar="TRACE|LOT", help="one trace (a lot id selects its whole trace)")
    which.add_argument("--lot", metavar="LOT", help="one lot and every lot re-exported or shipped back from it")
    which.add_argument("--party", metavar="PARTY", help="every trace in which the party ships or holds a lot")
    which.add_argument("--period", metavar="YYYY[-MM]", type=argument(parse_period),
                       help="every trace with a lot shipped in the period")
    p.add_argument("--from", dest="shipped_from", metavar="DATE", type=argument(start_of),
                   help="every trace with a lot shipped on or after DATE (2019-07-01, UTC, or a time with zone)")
    p.add_argument("--to", dest="shipped_to", metavar="DATE", type=argument(end_of),
                   help="every trace with a lot shipped on or before DATE (the whole day, UTC)")
    p.add_argument("--item", metavar="ITEM", help="only traces with a lot of this item (with --party, --period "
                                                  "or --from/--to, or alone: every such trace)")
    p.add_argument("--as-of", metavar="T", type=argument(end_of),
                   help="the account as it stood at T (default: now); 2019-09-01 means the end of that day, "
                        "UTC; or 2019-09-01T12:00:00+09:00")
    p.add_argument("--known-at", metavar="K", type=argument(end_of),
                   help="only the reports the ledger had recorded by K (default: every report)")
    p.add_argument("--out", metavar="DIR", default="audit", help="output directory (default: ./audit)")
    p.add_argument("--format", default=AUDIT_FORMATS, type=argument(_audit_formats), metavar="FORMATS",
                   help="comma-separated: csv, xlsx, html (default: all three)")
    output(p, "one row: the selection, the counts and the files written", json_is="what was written, as JSON")
    p.add_argument("--progress", action="store_true",
                   help="progress lines on stderr even when it is not a terminal (default: only on a terminal)")
    storage(p)



# -- flows -------------------------------------------------------------------------------


def _cmd_flows(args: argparse.Namespace) -> int:
    period = args.period
    ledger = Ledger(args)
    try:
        rows = whereabouts(ledger.store, None, now=utc_now(), policy=ledger.policy,
                           as_of=args.as_of, known_at=args.known_at)
    finally:
        ledger.close()
    flows = flows_of(rows, period=period, origin_country=args.origin, destination_country=args.destination,
                     item_id=args.item)
    if args.gaps_only:
        flows = [f for f in flows if f.gap != 0]
    if args.output == "csv":
        print_csv([f.as_dict() for f in flows], columns=FLOW_COLUMNS)
        return EXIT_OK
    if args.json:
        print(json.dumps({"period": period and str(period), "from": args.origin, "to": args.destination,
                          "as_of": iso(args.as_of), "known_at": iso(args.known_at),
                          "flows": [f.as_dict() for f in flows]}, indent=2, sort_keys=True))
        return EXIT_OK
    if not flows:
        print("no shipments match")
        return EXIT_OK
    body = []
    for f in flows:
        d = f.as_dict()
        share = "" if d["gap_percent"] is None else f"{d['gap_percent']} %"
        body.append((f.origin_country, f.destination_country, f.item_id, f.period, f.unit,
                     fmt_amount(d["shipped"]), fmt_amount(d["received"]), fmt_amount(d["gap"]), share,
                     _lots_cell(f.lots)))
    print("Cross-border flows: shipped as reported by senders, received as reported by receivers")
    print(table(("FROM", "TO", "ITEM", "PERIOD", "UNIT", "SHIPPED", "RECEIVED", "GAP", "GAP %", "LOTS"), body,
                right={5, 6, 7, 8}, width=terminal_width()))
    return EXIT_OK


LOTS_SHOWN_MAX = 3  # --json and -o csv list every lot
FLOW_COLUMNS = ("from", "to", "item_id", "period", "unit", "shipped", "received", "gap", "gap_percent", "lots")


def _lots_cell(lots: tuple[str, ...]) -> str:
    if len(lots) <= LOTS_SHOWN_MAX:
        return ", ".join(lots)
    return ", ".join(lots[:LOTS_SHOWN_MAX]) + f" and {len(lots) - LOTS_SHOWN_MAX:,} more (--json lists all)"


# -- trace -------------------------------------------------------------------------------


def _cmd_trace(args: argparse.Namespace) -> int:
    ledger = Ledger(args)
    try:
        view = trace_view(ledger.store, args.ident, now=utc_now(), policy=ledger.policy,
                          as_of=args.as_of, known_at=args.known_at)  # NotFound: core.main says so
    finally:
        ledger.close()
    trace_ids, rows, alerts = view.trace_ids, view.rows, view.alerts
    if args.output == "csv":
        # One row per lot of the lineage (the whereabouts columns; parent_lot_id links them);
        # its alerts: `ledger alerts --trace TRACE -o csv`.
        print_csv(rows)
        return EXIT_OK
    roots = build_lineage(rows)
    if args.json:
        print(json.dumps({"as_of": iso(args.as_of), "known_at": iso(args.known_at),
                          "lineage": [lineage_dict(r) for r in roots], "alerts": alerts},
                         indent=2, sort_keys=True, default=str))
        return EXIT_OK
    title = f"Lineage of {', '.join(trace_ids)}"
    if args.as_of:
        title += f" as of {args.as_of.isoformat()}"
    if args.known_at:
        title += f", as known at {args.known_at.isoformat()}"
    # On a terminal, every line fits its width (the same width as every table):
    # a node's head and figures go on as many lines as they need, a figure never split.
    width = terminal_width()
    print(title)
    print("\n".join(render_lineage(roots, fmt=fmt_amount, width=width, pack=pack)))
    if alerts:
        print(f"\nAlerts standing ({len(alerts)})")
        print(table(("SEVERITY", "KIND", "LOT", "QUANTITY", "WHAT"),
                    [(a["severity"], a["kind"], a["lot_id"],
                      f"{fmt_amount(a['quantity'])} {a['unit']}" if a["quantity"] is not None else "",
                      a["message"]) for a in alerts],
                    right={3}, width=width, paint={0: severity_colour} if colour_enabled() else None))
    return EXIT_OK


# -- audit -------------------------------------------------------------------------------


def _audit_formats(text: str) -> tuple[str, ...]:
    """--format csv,xlsx: each one of AUDIT_FORMATS, at least one."""
    formats = tuple(f.strip() for f in text.split(",") if f.strip())
    unknown = [f for f in formats if f not in AUDIT_FORMATS]
    if unknown or not formats:
        raise ValueError(f"{text!r}: choose from {', '.join(AUDIT_FORMATS)} (comma-separated)")
    return formats


def _cmd_audit(args: argparse.Namespace) -> int:
    formats = args.format
    period = args.period
    shipped = None
    # What the selection options say, checked before anything is opened or made.
    if not (args.trace or args.lot or args.party or args.period or args.item
            or args.shipped_from is not None or args.shipped_to is not None):
        raise UsageError("select what to audit: --trace, --lot, --party, --period, --from/--to or --item "
                         "(ledger audit --help has examples)")
    if (args.trace or args.lot) and (args.item or args.shipped_from is not None or args.shipped_to is not None):
        given = "--trace" if args.trace else "--lot"
        raise UsageError(f"--item, --from and --to narrow --party or --period; {given} already names "
                         f"what to audit: drop one")
    if args.shipped_from is not None or args.shipped_to is not None:
        if period is not None:
            raise UsageError(f"--period {args.period} and --from/--to both select shipment dates: "
                                f"give one (--from 2019-07-01 --to 2019-09-30 is a free range)")
        if args.shipped_from and args.shipped_to and args.shipped_from > args.shipped_to:
            raise UsageError(f"--from {args.shipped_from.date()} is after --to {args.shipped_to.date()}: "
                                f"swap them")
        shipped = audit.DateRange(args.shipped_from, args.shipped_to)
    made = not os.path.lexists(args.out)  # (False, not an error, for a name too long: said below)
    out = _out_directory(args.out)  # before the work: a bad --out is said at once
    started = time.monotonic()
    try:
        ledger = Ledger(args)
        try:
            selection, trace_ids = audit.select_traces(ledger.store, trace=args.trace, party=args.party,
                                                       period=period, item=args.item, shipped=shipped, lot=args.lot)
            for flag, when in (("as of", args.as_of), ("known at", args.known_at)):
                if when is not None:
                    selection += f", {flag} {when.isoformat()}"
            progress = Progress(f"audit of {selection}: reports gathered", args.progress)
            progress.announce(f"from {len(trace_ids):,} {plural(len(trace_ids), 'trace')}")
            data = audit.collect(ledger.store, selection, trace_ids, now=utc_now(), policy=ledger.policy,
                                 progress=progress, software_version=software_version(), as_of=args.as_of,
                                 known_at=args.known_at, lot=args.lot, charts="html" in formats)
            progress.done(len(data.events), f"({len(trace_ids):,} {plural(len(trace_ids), 'trace')})")
        finally:
            ledger.close()
    except BaseException:
        _leave_no_empty(out, made)  # nothing matched, or the store could not be read: no empty --out left
        raise
    written: list[Path] = []
    writing = Progress("audit: writing", args.progress)
    try:
        if "csv" in formats:
            writing.announce(f"CSV files into {out}/")
            written.extend(audit.write_csv(data, out))
        if "xlsx" in formats:
            writing.announce(f"{out / 'audit.xlsx'}")
            written.append(audit.write_xlsx(data, out / "audit.xlsx"))
        if "html" in formats:
            writing.announce(f"{out / 'report.html'}")
            written.append(audit.write_html(data, out / "report.html", fmt=fmt_amount))
        # The directory holds one audit: files an earlier audit wrote there (its
        # manifest says which) that this one did not (another selection, another
        # format) go.  A file of the same name the audit did not write is kept.
        manifest = out / audit.MANIFEST
        wrote_before = set(manifest.read_text(encoding="utf-8").split()) if manifest.is_file() else set()
        earlier = [out / name for name in audit.AUDIT_FILES
                   if name in wrote_before and (out / name) not in written and (out / name).exists()]
        for path in earlier:
            path.unlink()
        manifest.write_text("".join(f"{p.name}\n" for p in written), encoding="utf-8")
    except OSError as error:
        raise CliError(f"--out {args.out!r}: cannot write {error.filename or out}: "
                            f"{error.strerror or error}; name a directory you can write to") from None
    if earlier:
        print(f"ledger audit: removed what an earlier audit left in {out}/: "
              f"{', '.join(p.name for p in earlier)}", file=sys.stderr)
    elapsed_s = time.monotonic() - started
    summary = {"selection": selection, "traces": len(data.trace_ids), "events": len(data.events),
               "lots": len(data.balances), "alerts": len(data.alerts), "history": len(data.history),
               "as_of": iso(args.as_of), "known_at": iso(args.known_at), "files": [str(p) for p in written],
               "seconds": round(elapsed_s, 2)}
    if args.output == "csv":
        print_csv([flat(summary)])
        return EXIT_OK
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return EXIT_OK
    counts = ", ".join(f"{summary[key]} {plural(summary[key], noun)}" for key, noun in (
        ("events", "report"), ("lots", "lot"), ("alerts", "open alert"), ("history", "alert transition")))
    print(f"audit of {selection}: {counts} in {summary['traces']} {plural(summary['traces'], 'trace')}, "
          f"written in {elapsed_s:.1f} s")
    for path in written:
        print(f"  {path}")
    return EXIT_OK


def _leave_no_empty(out: Path, made: bool) -> None:
    """Remove the --out directory this run made, if nothing was written into it."""
    if made:
        try:
            out.rmdir()
        except OSError:
            pass  # not empty, or gone: leave it as it is


def _out_directory(text: str) -> Path:
    """The --out directory, made if missing; a clear error if it cannot be one."""
    out = Path(text)
    try:
        if out.exists() and not out.is_dir():
            kind = "a file" if out.is_file() else "not a directory (a device or a socket)"
            raise CliError(f"--out {text!r} is {kind}: name a directory (new or existing); the export "
                                f"writes events.csv, balances.csv, ..., audit.xlsx and report.html into it")
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CliError(f"--out {text!r}: cannot make that directory: {error.strerror or error}; "
                            f"name a directory you can write to") from None
    return out

"""`ledger parties add/list/remove`: the party registry the operator manages.

Registered through consumers.cli.core.EXTENSIONS.  The registry is kept in the
projection store (``--store``; ledger.ports.PartyRegistry), where every
projector reads it; docs/COMPLIANCE.md ("Who may say what") says why.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from consumers.cli.common import (EXIT_OK, CliError, Command, Ledger, UsageError, output, print_csv, storage,
                                  argument, subcommands)
from consumers.render import plural, table
from ledger.events import country_code
from ledger.parties import ROLES, PartyError, RegisteredParty, parties_from_json

__all__ = ["register"]

EPILOG = """\
Every party a report names (reporter, exporter, consignee, end user, a
license's exporter and end users) must be registered, in the country the
report says; otherwise ingest rejects the line, the SDK refuses it and the
projector dead-letters it.  An empty registry refuses nothing (the ledger
runs open until the first party is registered).  The registry is kept in
the projection store (--store).

examples:
  ledger parties add KR-SEMI --country KR --role consignee --role exporter
  ledger parties add --file examples/parties.json
  ledger parties list
  ledger parties remove KR-EVIL

exit status:
  0 ok;  1 the store could not be opened, or the subcommand failed;
  2 no subcommand, or a usage error.
"""

ADD_EPILOG = """\
Registers each party, or replaces its entry (id, country, roles, name).  The
country is an ISO 3166-1 alpha-2 code in upper case, as reports write it
(KR; kr is refused).  Roles: """ + ", ".join(ROLES) + """.

examples:
  ledger parties add KR-SEMI --country KR --role consignee --role exporter
  ledger parties add JP-FLUORO --country JP --role exporter --name "JP Fluoro K.K."
  ledger parties add --file examples/parties.json

exit status:
  0 registered;  1 a party the registry cannot hold (field and value named),
  a --file that cannot be read, or the store could not be opened;
  2 usage error (no ID, --country or --role, a --country not an upper-case ISO code, or --file with them).
"""

LIST_EPILOG = """\
examples:
  ledger parties list
  ledger parties list -o csv > parties.csv

exit status:
  0 ok (an empty registry is an answer);  1 the store could not be opened;
  2 usage error.
"""

REMOVE_EPILOG = """\
Later reports naming the party are refused; what was recorded stays.

examples:
  ledger parties remove KR-EVIL

exit status:
  0 removed;  1 the party is not registered, or the store could not be
  opened;  2 usage error.
"""


def register(command: Command) -> None:
    p = command("parties", "The party registry: who may report, and where each party is.",
                _cmd_help, epilog=EPILOG)
    subcommand = subcommands(p, "parties_command", "SUBCOMMAND")

    # The registry lives in the store: no subcommand reads the log or the deadlines.
    q = subcommand("add", "Register parties (or replace their entries).", _cmd_add, ADD_EPILOG)
    q.add_argument("party_id", nargs="?", metavar="ID", help="the party id reports use")
    q.add_argument("--country", metavar="CC", type=argument(country_code),
                   help="ISO 3166-1 alpha-2 country code, upper case (KR; kr is refused)")
    q.add_argument("--role", action="append", choices=ROLES, default=[],
                   help="what the party does; repeat for several")
    q.add_argument("--name", help="a name for people (optional)")
    q.add_argument("--file", metavar="FILE",
                   help='JSON list of {"id", "country", "roles", "name"} (examples/parties.json) instead of ID')
    storage(q, log=False, policy=False)

    q = subcommand("list", "The registered parties.", _cmd_list, LIST_EPILOG)
    output(q, "one row per party: id, country, roles, name", json_is="JSON for scripts")
    storage(q, log=False, policy=False)

    q = subcommand("remove", "Remove a party: later reports naming it are refused.", _cmd_remove, REMOVE_EPILOG)
    q.add_argument("party_id", metavar="ID")
    storage(q, log=False, policy=False)


PARTY_COLUMNS = ("id", "country", "roles", "name")  # -o csv: roles joined by spaces


def _cmd_help(args: argparse.Namespace) -> int:
    raise UsageError("name a subcommand: add, list or remove (ledger parties --help)")


def _cmd_add(args: argparse.Namespace) -> int:
    if args.file:
        if args.party_id or args.country or args.role or args.name:
            raise UsageError("--file registers the parties the file lists; give no ID, --country, --role "
                             "or --name with it")
        path = Path(args.file)
        if not path.is_file():
            raise CliError(f"--file {args.file!r} is not a readable file")
        try:
            parties = parties_from_json(path.read_text(encoding="utf-8"), source=args.file)
        except PartyError as error:
            raise CliError(str(error)) from None
    else:
        if not args.party_id or not args.country or not args.role:
            missing = [what for what, given in (("ID", args.party_id), ("--country CC", args.country),
                                                ("at least one --role", args.role)) if not given]
            raise UsageError(f"give ID, --country CC and at least one --role (or --file FILE); "
                             f"missing: {', '.join(missing)}")
        try:
            parties = [RegisteredParty(args.party_id, args.country, tuple(args.role), args.name)]
        except PartyError as error:
            raise CliError(str(error)) from None
    ledger = Ledger(args)
    try:
        ledger.store.register_parties(parties)
    finally:
        ledger.close()
    print(f"registered {len(parties)} {plural(len(parties), 'party', 'parties')}: "
          + ", ".join(p.party_id for p in parties))
    return EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    ledger = Ledger(args, must_exist=True)
    try:
        parties = ledger.store.registered_parties()
    finally:
        ledger.close()
    if args.output == "csv":
        print_csv([p.as_dict() for p in parties], columns=PARTY_COLUMNS)
    elif args.json:
        print(json.dumps([p.as_dict() for p in parties], indent=2))
    elif not parties:
        print("no party registered: every party name is accepted (register one to close the ledger)")
    else:
        print(table(("ID", "COUNTRY", "ROLES", "NAME"),
                    [(p.party_id, p.country, " ".join(p.roles), p.name or "") for p in parties]))
    return EXIT_OK


def _cmd_remove(args: argparse.Namespace) -> int:
    ledger = Ledger(args, must_exist=True)
    try:
        removed = ledger.store.remove_party(args.party_id)
    finally:
        ledger.close()
    if not removed:
        raise CliError(f"party {args.party_id!r} is not registered (ledger parties list)")
    print(f"removed {args.party_id}: later reports naming it are refused")
    return EXIT_OK

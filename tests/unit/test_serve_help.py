"""`ledger serve --help` tells a new user where the dashboard is and how to
get the token it asks for, with commands that work as written."""

from __future__ import annotations

import shlex

from consumers.cli.core import _parser
from consumers.http.app import DASHBOARD_DIR
from consumers.http.credentials import ROLES


def serve_help() -> str:
    parser = _parser()
    [commands] = [a for a in parser._actions if a.dest == "command"]
    return commands.choices["serve"].format_help()


def test_the_serve_help_says_where_the_dashboard_is():
    text = serve_help()
    assert "/dashboard/" in text and "http://127.0.0.1:8080/dashboard/" in text
    assert (DASHBOARD_DIR / "index.html").is_file()  # what /dashboard/ serves


def test_the_serve_help_says_how_to_get_a_token_for_it_and_each_command_parses():
    issued = [line.split("   ")[0].strip() for line in serve_help().splitlines()
              if line.strip().startswith("ledger credentials issue")]
    assert len(issued) == 3
    roles = set()
    for command in issued:
        args = _parser().parse_args(shlex.split(command)[1:])
        assert (args.command, args.action) == ("credentials", "issue")
        roles.add(args.role)
    assert roles == {"dashboard", "auditor", "reporter"} and roles <= set(ROLES)

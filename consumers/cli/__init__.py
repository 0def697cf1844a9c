"""`ledger`, the command line: core.py holds the parser and main; each other
module adds one group of commands (docs/ARCHITECTURE.md)."""

from consumers.cli.core import main

__all__ = ["main"]

"""`python -m consumers.cli`: the `ledger` command without the console script."""

import sys

from consumers.cli.core import main

# Guarded: a replay's worker processes (consumers/parallel_rebuild.py) start
# by importing the main module again, and must not run the command.
if __name__ == "__main__":
    sys.exit(main())

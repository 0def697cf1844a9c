"""`python -m consumers.cli`: the `ledger` command without the console script."""

import sys

from consumers.cli.core import main

sys.exit(main())

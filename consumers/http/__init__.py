"""The ledger as an HTTP service: `ledger serve` and `ledger credentials`.

Thin entrypoints (app.py: parse, authorize, call the service function,
render) over the same service functions the CLI calls.  docs/API.md.
"""

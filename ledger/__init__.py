"""The domain of the traceability ledger: events, lots and traces, the account,
alert rules and policy.  No I/O here: adapters live in consumers/ and
projections/."""

from ledger.events import LedgerEvent, parse_event
from ledger.policy import Policy
from ledger.quantity import Quantity
from ledger.trace import Trace

__all__ = ["LedgerEvent", "Policy", "Quantity", "Trace", "parse_event"]

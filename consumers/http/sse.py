"""``GET /v1/alerts/stream``: the alert journal as Server-Sent Events.

Each event is one journal transition (raised, updated, resolved), its SSE
``id`` the journal's ``seq``.  The journal's seqs are handed out in commit
order (projections/postgres_store.py; one writer at a time on SQLite), so a
client that reconnects with ``Last-Event-ID: N`` gets exactly the
transitions after N: nothing lost, nothing repeated.  The stream reads the
journal in the projection store, so it works the same on the embedded
default and on PostgreSQL beside a Kafka projector.

A stream never ends by itself; the server ends every open one when it shuts
down (``AlertStreams.close``, called by ``consumers.http.app.Server``), so
Ctrl-C or SIGTERM does not wait for the clients to hang up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse

from consumers.http.auth import Principal, Refused

__all__ = ["AlertStreams", "POLL_INTERVAL_S", "KEEPALIVE_S", "STREAMS_MAX"]

POLL_INTERVAL_S = 0.25  # how often an idle stream looks at the journal
KEEPALIVE_S = 15.0  # a comment line this often, so proxies keep an idle stream open
PAGE_MAX = 500  # transitions read per look
RETRY_MS = 2000  # what an EventSource waits before reconnecting
# Open streams at once.  Each idle stream reads the journal every
# POLL_INTERVAL_S on the backend's one worker thread (a few hundred
# microseconds each), so this bounds what streams can take from reports.
STREAMS_MAX = 100


class AlertStreams:
    """The alert streams one app serves: how many are open, and the signal
    that ends them all when the server shuts down."""

    def __init__(self, backend: Any):
        self.backend = backend
        self.open = 0
        self._closing = asyncio.Event()

    def close(self) -> None:
        """End every open stream at its next look at the journal (within
        POLL_INTERVAL_S), and refuse new ones.  Called on the event loop."""
        self._closing.set()

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def response(self, principal: Principal, since: int, *, party: str | None,
                 keep: Callable[[dict[str, Any]], bool]) -> StreamingResponse:
        """The stream of the journal after ``since``, read as ``party``
        (``Backend.journal``), of the entries ``keep`` keeps."""
        if self.closing:
            raise Refused(503, "unavailable", "the server is shutting down; reconnect with Last-Event-ID",
                          headers={"Retry-After": "5"})
        if self.open >= STREAMS_MAX:
            raise Refused(503, "unavailable", f"{STREAMS_MAX} alert streams are open, the most this server "
                                              f"serves; retry later, or page /v1/alerts/journal with ?since=",
                          headers={"Retry-After": "30"})

        async def events() -> AsyncIterator[str]:
            # Counted from the first chunk: a response never started (the client
            # gone first) runs no finally, and must not hold a place.
            self.open += 1
            try:
                async for chunk in self._events(principal, since, party, keep):
                    yield chunk
            finally:
                self.open -= 1

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _events(self, principal: Principal, since: int, party: str | None,
                      keep: Callable[[dict[str, Any]], bool]) -> AsyncIterator[str]:
        cursor = since
        yield f"retry: {RETRY_MS}\n: alert transitions after seq {cursor}\n\n"
        quiet_since = time.monotonic()
        while not self.closing:
            entries, next_cursor = await self.backend.call(self.backend.journal, principal, since=cursor,
                                                           limit=PAGE_MAX, party=party)
            out = []
            for entry in entries:
                if keep(entry):
                    out.append(f"id: {entry['seq']}\nevent: {entry['transition']}\n"
                               f"data: {json.dumps(entry, sort_keys=True)}\n\n")
            if out:
                yield "".join(out)
                quiet_since = time.monotonic()
            elif next_cursor != cursor and time.monotonic() - quiet_since >= KEEPALIVE_S:
                # Transitions this client does not see went by: an id with no
                # data moves an EventSource's Last-Event-ID on (the SSE spec
                # sets it before it drops an empty event), so a reconnect
                # need not read them again.
                yield f"id: {next_cursor}\n\n"
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= KEEPALIVE_S:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
            if next_cursor == cursor or len(entries) < PAGE_MAX:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), POLL_INTERVAL_S)
            cursor = next_cursor
        # Everything read was sent: a client reconnecting with its Last-Event-ID loses nothing.
        yield ": the server is shutting down; reconnect with Last-Event-ID\n\n"

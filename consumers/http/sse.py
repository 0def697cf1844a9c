"""``GET /v1/alerts/stream``: the alert journal as Server-Sent Events.

Each event is one journal transition (raised, updated, resolved), its SSE
``id`` the journal's ``seq``.  The journal's seqs are handed out in commit
order (projections/postgres_store.py; one writer at a time on SQLite), so a
client that reconnects with ``Last-Event-ID: N`` gets exactly the
transitions after N: nothing lost, nothing repeated.  The stream reads the
journal in the projection store, so it works the same on the embedded
default and on PostgreSQL beside a Kafka projector.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

from consumers.http.auth import Principal, Refused

__all__ = ["alert_stream", "POLL_INTERVAL_S", "KEEPALIVE_S", "STREAMS_MAX"]

_open_streams = 0

POLL_INTERVAL_S = 0.25  # how often an idle stream looks at the journal
KEEPALIVE_S = 15.0  # a comment line this often, so proxies keep an idle stream open
PAGE_MAX = 500  # transitions read per look
RETRY_MS = 2000  # what an EventSource waits before reconnecting
# Open streams at once.  Each idle stream reads the journal every
# POLL_INTERVAL_S on the backend's one worker thread (a few hundred
# microseconds each), so this bounds what streams can take from reports.
STREAMS_MAX = 100


def alert_stream(request: Request, backend: Any, principal: Principal, since: int,
                 *, keep: Callable[[dict[str, Any]], bool]) -> StreamingResponse:
    if _open_streams >= STREAMS_MAX:
        raise Refused(503, "unavailable", f"{STREAMS_MAX} alert streams are open, the most this server "
                                          f"serves; retry later, or page /v1/alerts/journal with ?since=",
                      headers={"Retry-After": "30"})

    async def events() -> AsyncIterator[str]:
        # Counted from the first chunk: a response never started (the client
        # gone first) runs no finally, and must not hold a place.
        global _open_streams
        _open_streams += 1
        try:
            async for chunk in _events():
                yield chunk
        finally:
            _open_streams -= 1

    async def _events() -> AsyncIterator[str]:
        cursor = since
        yield f"retry: {RETRY_MS}\n: alert transitions after seq {cursor}\n\n"
        quiet_since = time.monotonic()
        while True:
            entries, next_cursor = await backend.call(backend.journal, principal, since=cursor, limit=PAGE_MAX)
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
                await asyncio.sleep(POLL_INTERVAL_S)
            cursor = next_cursor

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

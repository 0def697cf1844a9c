"""The HTTP entrypoint: parse, authorize, call the service function, render.

Every rule about what reports mean lives in ledger/ and projections/ and is
reached through ``Backend`` (the same functions the CLI calls); every rule
about who may do what lives in auth.py.  Errors are JSON:
``{"error": code, "message": what happened and what to do, "problems": [{field, value, message}]}``.
"""

from __future__ import annotations

import re
import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from consumers.http import sse
from consumers.http.auth import READ, READ_ALERTS, READ_METRICS, WRITE, Principal, Refused, authenticate, require
from consumers.http.backend import PROJECT_INTERVAL_S, Backend, source_of
from consumers.http.openapi import openapi_document
from ledger.alerts import ALERT_KINDS, SEVERITY
from ledger.events import country_code, shown_value
from ledger.flows import PeriodError, parse_period
from ledger.ports import LogUnavailable
from ledger.times import TimeTextError, end_of
from projections.queries import NotFound
from projections.store import StoreUnavailable

__all__ = ["create_app", "Server", "BODY_BYTES_MAX", "REPORTS_PER_REQUEST_MAX"]

BODY_BYTES_MAX = 32 * 1024 * 1024  # a request of 10,000 reports of ~1 kB fits with room
REPORTS_PER_REQUEST_MAX = 10_000
LIMIT_MAX = 100_000
COUNT_MAX = 10**17  # a cursor or limit beyond this is a mistake (openapi.py says the same)
SEVERITIES = ("low", "medium", "high")
assert set(SEVERITY.values()) <= set(SEVERITIES)
JSON_TYPES = ("application/json",)

DASHBOARD_DIR = Path(__file__).with_name("dashboard")

log = logging.getLogger("ledger.http")


def create_app(backend: Backend) -> Starlette:
    streams = sse.AlertStreams(backend)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await backend.call(backend.open)
        ticker = asyncio.create_task(_project_periodically(backend)) if backend.project else None
        try:
            yield
        finally:
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            await asyncio.get_running_loop().run_in_executor(None, backend.shutdown)

    async def authed(request: Request, action: str) -> Principal:
        assert backend.credentials is not None
        principal = await backend.call(authenticate, request.headers.get("authorization"), backend.credentials)
        require(principal, action)
        return principal

    async def post_events(request: Request) -> Response:
        principal = await authed(request, WRITE)
        atomic = _flag(request, "atomic")
        texts = await _report_texts(request)
        result = await backend.call(backend.capture, principal, texts, atomic=atomic, source=source_of(principal))
        body = result.body(atomic=atomic, detects_duplicates=backend.log.detects_duplicates)  # type: ignore[union-attr]
        refused = result.refused
        if refused is not None:  # the Rejected schema of openapi.py: the outcomes, and why nothing was recorded
            return _json({**body, "error": "rejected", "message": refused}, 422)
        return _json(body)

    async def get_lots(request: Request) -> Response:
        principal = await authed(request, READ)
        as_of, known_at = _times(request)
        rows = await backend.call(backend.lots, principal, None, as_of=as_of, known_at=known_at)
        return _json({"as_of": _iso(as_of), "known_at": _iso(known_at), "lots": rows})

    async def get_lot(request: Request) -> Response:
        principal = await authed(request, READ)
        as_of, known_at = _times(request)
        rows = await backend.call(backend.lot, principal, request.path_params["lot_id"], as_of=as_of,
                                  known_at=known_at)
        return _json({"as_of": _iso(as_of), "known_at": _iso(known_at), "lots": rows})

    async def get_reports(request: Request) -> Response:
        principal = await authed(request, READ)
        lot_id = _text(request, "lot")
        if lot_id is None:
            raise _bad("lot", "(missing)", "the lot whose reports to list: ?lot=HF-0001")
        known_at = _when_param(request, "known_at")
        rows = await backend.call(backend.lot_reports, principal, lot_id, known_at=known_at)
        return _json({"lot": lot_id, "known_at": _iso(known_at), "reports": rows})

    async def get_trace(request: Request) -> Response:
        principal = await authed(request, READ)
        as_of, known_at = _times(request)
        view = await backend.call(backend.trace, principal, request.path_params["trace_id"],
                                  as_of=as_of, known_at=known_at)
        return _json({"as_of": _iso(as_of), "known_at": _iso(known_at), **view})

    async def get_alerts(request: Request) -> Response:
        principal = await authed(request, READ_ALERTS)
        as_of, known_at = _times(request)
        party, severity, kind = _alert_filters(request)
        trace = _text(request, "trace")
        rows = await backend.call(backend.alerts, principal, as_of=as_of, known_at=known_at, party=party,
                                  trace_id=trace)
        rows = [r for r in rows if (severity is None or r["severity"] == severity)
                and (kind is None or r["kind"] == kind)]
        return _json({"as_of": _iso(as_of), "known_at": _iso(known_at), "alerts": rows})

    async def get_journal(request: Request) -> Response:
        principal = await authed(request, READ_ALERTS)
        party, severity, kind = _alert_filters(request)
        since = _count(request, "since", 0)
        limit = min(_count(request, "limit", 1000), 1000)
        entries, cursor = await backend.call(backend.journal, principal, since=since, limit=limit, party=party)
        entries = [e for e in entries if _matches(e, party, severity, kind)]
        return _json({"since": since, "next": cursor, "transitions": entries})

    async def get_stream(request: Request) -> Response:
        principal = await authed(request, READ_ALERTS)
        party, severity, kind = _alert_filters(request)
        since = _resume_point(request)
        return streams.response(principal, since, party=party, keep=lambda e: _matches(e, party, severity, kind))

    async def get_flows(request: Request) -> Response:
        principal = await authed(request, READ)
        as_of, known_at = _times(request)
        period_text = request.query_params.get("period")
        try:
            period = parse_period(period_text) if period_text is not None else None
        except PeriodError as error:
            raise _bad("period", shown_value(period_text), str(error)) from None
        origin, destination, item = _country(request, "from"), _country(request, "to"), _text(request, "item")
        flows = await backend.call(backend.flows, principal, as_of=as_of, known_at=known_at, period=period,
                                   origin=origin, destination=destination, item=item)
        if _flag(request, "gaps_only"):
            flows = [f for f in flows if f.gap != 0]
        return _json({"period": period_text, "from": origin, "to": destination, "as_of": _iso(as_of),
                      "known_at": _iso(known_at), "flows": [f.as_dict() for f in flows]})

    async def get_rejects(request: Request) -> Response:
        principal = await authed(request, READ)
        limit = _count(request, "limit", 1000) or LIMIT_MAX
        rows = await backend.call(backend.rejects, principal, limit=min(limit, LIMIT_MAX))
        return _json({"rejects": rows})

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(request: Request) -> Response:
        parts = await backend.call(backend.ready)
        ready = all(v == "ok" for v in parts.values())
        return _json({"ready": ready, **parts}, 200 if ready else 503)

    async def metrics(request: Request) -> Response:
        await authed(request, READ_METRICS)
        figures = await backend.call(backend.metrics)
        return PlainTextResponse(_prometheus(figures), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(request: Request) -> Response:
        return _json(openapi_document())

    routes = [
        Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics),
        Route("/openapi.json", openapi),
        Route("/v1/events", post_events, methods=["POST"]),
        Route("/v1/lots", get_lots), Route("/v1/lots/{lot_id:path}", get_lot),
        Route("/v1/traces/{trace_id:path}", get_trace), Route("/v1/reports", get_reports),
        Route("/v1/alerts", get_alerts), Route("/v1/alerts/journal", get_journal),
        Route("/v1/alerts/stream", get_stream),
        Route("/v1/flows", get_flows), Route("/v1/rejects", get_rejects),
        # The dashboard: static pages shipped in the package, reading the API above with the user's token.
        Mount("/dashboard", StaticFiles(directory=DASHBOARD_DIR, html=True), name="dashboard"),
    ]
    handlers = {
        Refused: lambda r, e: _json(e.body(), e.status, e.status == 401, e.headers),
        NotFound: lambda r, e: _json({"error": "not_found", "message": str(e)}, 404),
        LogUnavailable: lambda r, e: _json({"error": "unavailable", "message": f"{e}; try again later"}, 503),
        StoreUnavailable: lambda r, e: _json({"error": "unavailable", "message": f"{e}; try again later"}, 503),
        404: lambda r, e: _json({"error": "not_found", "message": f"no such path {r.url.path!r}; "
                                 f"/openapi.json lists every one"}, 404),
        405: lambda r, e: _json({"error": "method_not_allowed",
                                 "message": f"{r.method} is not allowed on {r.url.path}"}, 405),
        Exception: _internal_error,
    }
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)  # type: ignore[arg-type]
    app.state.alert_streams = streams
    return app


class Server(uvicorn.Server):
    """uvicorn's server, which ends the app's alert streams before it waits
    for the open connections to finish: a stream never finishes by itself,
    so otherwise Ctrl-C or SIGTERM would wait out the graceful-shutdown
    timeout and cancel the stream with a traceback."""

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        app = self.config.app
        if isinstance(app, Starlette):
            app.state.alert_streams.close()
        await super().shutdown(sockets)


async def _project_periodically(backend: Backend) -> None:
    """Embedded log: journal deadlines that pass, and reports appended by
    other processes (`ledger ingest --no-project`), without waiting for a POST."""
    while True:
        await asyncio.sleep(PROJECT_INTERVAL_S)
        try:
            await backend.call(backend.catch_up)
        except Exception:  # noqa: BLE001 - the next tick tries again; say why meanwhile
            log.exception("periodic projection failed; retrying in %s s", PROJECT_INTERVAL_S)


def _internal_error(request: Request, error: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=error)
    return _json({"error": "internal", "message": f"the ledger failed to answer ({type(error).__name__}); "
                  "nothing partial was recorded by this request beyond what a retry would repeat harmlessly: "
                  "retry, and tell the operator if it persists"}, 500)


# -- parsing --------------------------------------------------------------------------


async def _report_texts(request: Request) -> list[tuple[int, str]]:
    """(index, text) per report: a JSON object, a JSON array of objects, or JSON Lines.

    JSON when the content type says so or the body starts with ``[``;
    otherwise JSON Lines (curl's default form type included), index = line.
    """
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > BODY_BYTES_MAX:
        raise _too_large(f"({length} bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > BODY_BYTES_MAX:
            raise _too_large(f"(more than {BODY_BYTES_MAX} bytes)")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        body = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _bad("(body)", f"(byte 0x{raw[error.start]:02X} at {error.start})",
                   "not UTF-8; reports are UTF-8") from None
    if not body.strip():
        raise _bad("(body)", "(empty)", "send one report (a JSON object), a JSON array of them, or JSON Lines")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    stripped = body.lstrip()
    if content_type in JSON_TYPES or stripped.startswith("["):
        try:
            items = _json_items(body)
        except (json.JSONDecodeError, RecursionError, ValueError) as error:
            raise _bad("(body)", shown_value(body), f"not JSON: {error}; for JSON Lines send "
                       f"Content-Type: application/x-ndjson") from None
        texts = list(enumerate(items, start=1))
    else:
        texts = [(i, line.strip()) for i, line in enumerate(body.splitlines(), start=1) if line.strip()]
    if not texts:
        raise _bad("(body)", "[]", "no reports in the request")
    if len(texts) > REPORTS_PER_REQUEST_MAX:
        raise _too_large(f"({len(texts)} reports)", f"at most {REPORTS_PER_REQUEST_MAX} reports per request")
    return texts


_DECODER = json.JSONDecoder()


def _json_items(body: str) -> list[str]:
    """The reports of a JSON body (one value, or an array of them), each as
    the text the client sent: checked by ``prepare_line`` as ingest checks a
    line, so what parsing and dumping again would hide (a key said twice, a
    value nested too deep) is refused the same way on every path."""
    text = body.strip()
    if not text.startswith("["):
        _DECODER.decode(text)  # one JSON value, or JSONDecodeError saying where
        return [text]
    items, at = [], 1
    while True:
        at = _skip_space(text, at)
        if text.startswith("]", at) and not items:
            at += 1
            break
        start = at
        _value, at = _DECODER.raw_decode(text, start)
        items.append(text[start:at])
        at = _skip_space(text, at)
        if text.startswith(",", at):
            at += 1
            continue
        if text.startswith("]", at):
            at += 1
            break
        raise json.JSONDecodeError("expected ',' or ']' between reports", text, at)
    if text[at:].strip():
        raise json.JSONDecodeError("extra data after the array", text, at)
    return items


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def _too_large(shown: str, message: str = f"at most {BODY_BYTES_MAX} bytes per request") -> Refused:
    return Refused(413, "too_large", f"{message}; split the batch into several requests",
                   problems=[{"field": "(body)", "value": shown, "message": message}])


def _bad(field: str, shown: str, message: str) -> Refused:
    """400 naming the field and the value as a FieldProblem shows it
    (``shown_value``: its JSON text), or a note in parentheses: (missing)."""
    return Refused(400, "bad_request", f"{field}: {message}",
                   problems=[{"field": field, "value": shown, "message": message}])


def _text(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value else None


def _country(request: Request, name: str) -> str | None:
    """A country parameter, read by the rule every country is read by
    (ledger.events.country_code): "jp" is a 400 naming it, not an empty answer."""
    value = _text(request, name)
    try:
        return country_code(value) if value is not None else None
    except ValueError as error:
        raise _bad(name, shown_value(value), str(error)) from None


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise _bad(name, shown_value(value), "true or false")


def _count(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or len(value) > 18 or int(value) > COUNT_MAX:
        raise _bad(name, shown_value(value), f"a whole number from 0 to {COUNT_MAX}")
    return int(value)


def _when_param(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    # An unencoded "+09:00" in a query string arrives as " 09:00" (curl sends
    # it as typed): read it as the offset the sender wrote.
    value = re.sub(r" ([0-9]{2}:?[0-9]{2})$", r"+\1", value)
    try:
        return end_of(value)
    except TimeTextError as error:
        raise _bad(name, shown_value(value), str(error)) from None


def _times(request: Request) -> tuple[datetime | None, datetime | None]:
    return _when_param(request, "as_of"), _when_param(request, "known_at")


def _alert_filters(request: Request) -> tuple[str | None, str | None, str | None]:
    severity, kind = _text(request, "severity"), _text(request, "kind")
    if severity is not None and severity not in SEVERITIES:
        raise _bad("severity", shown_value(severity), f"one of {', '.join(SEVERITIES)}")
    if kind is not None and kind not in ALERT_KINDS:
        raise _bad("kind", shown_value(kind), f"one of {', '.join(ALERT_KINDS)}")
    return _text(request, "party"), severity, kind


def _matches(entry: dict[str, Any], party: str | None, severity: str | None, kind: str | None) -> bool:
    """A journal entry read as ``party`` (backend.journal marks the ones
    about its material) passes the filters: addressed to it or about its
    material, as GET /v1/alerts?party= answers."""
    return ((party is None or entry.get("party") == party or entry.get("about_your_material") is True)
            and (severity is None or entry.get("severity") == severity)
            and (kind is None or entry.get("kind") == kind))


def _resume_point(request: Request) -> int:
    """Last-Event-ID (an EventSource reconnecting) wins over ?since=; default 0, the whole journal."""
    header = request.headers.get("last-event-id")
    if header is not None and header.strip():
        if not (header.strip().isascii() and header.strip().isdigit()) or len(header.strip()) > 18:
            raise _bad("Last-Event-ID", shown_value(header), "the id of the last event received (a journal seq)")
        return int(header.strip())
    return _count(request, "since", 0)


# -- rendering ------------------------------------------------------------------------


def _json(body: Any, status: int = 200, challenge: bool = False, headers: dict[str, str] | None = None) -> Response:
    headers = dict(headers or {})
    if challenge:
        headers["WWW-Authenticate"] = 'Bearer realm="ledger"'
    return Response(json.dumps(body, sort_keys=True, default=str, indent=1) + "\n", status_code=status,
                    media_type="application/json", headers=headers)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _prometheus(figures: dict[str, Any]) -> str:
    lines = [
        "# HELP ledger_reports_total Reports received over HTTP since the server started, by outcome.",
        "# TYPE ledger_reports_total counter",
    ]
    for outcome in ("recorded", "already_recorded", "conflicting", "rejected"):
        lines.append(f'ledger_reports_total{{outcome="{outcome}"}} {figures["reports"].get(outcome, 0)}')
    lines += [
        "# HELP ledger_projector_lag_records Log records not yet applied to the projection store.",
        "# TYPE ledger_projector_lag_records gauge",
        f"ledger_projector_lag_records {figures['lag']}",
        "# HELP ledger_alerts_open Alerts standing now, by kind.",
        "# TYPE ledger_alerts_open gauge",
    ]
    for kind in ALERT_KINDS:
        lines.append(f'ledger_alerts_open{{kind="{kind}"}} {figures["open_by_kind"].get(kind, 0)}')
    return "\n".join(lines) + "\n"

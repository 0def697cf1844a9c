"""The OpenAPI 3.1 document of ``ledger serve`` (``GET /openapi.json``).

Written out here, beside the routes in app.py, rather than derived from
them: the request body of ``POST /v1/events`` is one report, an array or
JSON Lines, which no framework infers, and the event schema is the
contract's own (``ledger schema``).
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from ledger.alerts import ALERT_KINDS
from ledger.events import event_json_schema

__all__ = ["openapi_document"]

API_VERSION = "1.0.0"


def _param(name: str, where: str, description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "description": description, "required": required, "schema": schema}


# A day (the end of it, UTC) or a time with its zone, as the CLI's --as-of takes them.
_WHEN = {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
_AS_OF = _param("as_of", "query", "Where things stood at T, by when they happened: 2019-09-01 (the end of that "
                "day, UTC) or 2019-09-01T12:00:00+09:00. Default: now.", _WHEN)
_KNOWN_AT = _param("known_at", "query", "Only what the ledger had been told by K (recorded_at). Default: "
                   "everything recorded.", _WHEN)
_PARTY = _param("party", "query", "Only alerts addressed to this party id, and those about material it "
                                  "exported at the origin (each one's about_your_material is true for these).",
                {"type": "string"})
_SEVERITY = _param("severity", "query", "Only alerts of this severity.", {"enum": ["low", "medium", "high"]})
_KIND = _param("kind", "query", "Only alerts of this kind.", {"enum": list(ALERT_KINDS)})
_SINCE = _param("since", "query", "Journal cursor: transitions with seq greater than this (default 0).",
                {"type": "integer", "minimum": 0, "maximum": 10**17})

_ERROR = {
    "type": "object", "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "a stable code: unauthenticated, revoked, forbidden, "
                  "impersonation, bad_request, rejected, not_found, too_large, unavailable, internal"},
        "message": {"type": "string", "description": "what happened and what to do"},
        "problems": {"type": "array", "items": {"$ref": "#/components/schemas/Problem"}},
    },
}
_PROBLEM = {
    "type": "object", "required": ["field", "value", "message"],
    "description": "One reason a report or a request was refused, as `ledger ingest --json` and the SDK's "
                   "EventRejected name it (ledger.events.FieldProblem).",
    "properties": {
        "field": {"type": "string", "description": "the field's path in the report (quantity.amount), a "
                  "parameter or header name, or (line) / (body) for the whole of it"},
        "value": {"type": "string", "description": "what the report holds there, as JSON text: \"30.5\" (a "
                  "string), 30.5 (a number), null, {...}; cut after 80 characters with ... (no longer valid "
                  "JSON then); or, where there is no value, a note in parentheses: (missing)"},
        "message": {"type": "string", "description": "what is wrong and what is accepted"},
        "index": {"type": "integer"}, "event_id": {"type": "string"},
    },
}
_OUTCOME = {
    "type": "object", "required": ["index", "outcome"],
    "properties": {
        "index": {"type": "integer", "description": "1-based position in the array, or line of JSON Lines"},
        "event_id": {"type": "string"},
        "outcome": {"enum": ["recorded", "already_recorded", "conflicting", "rejected", "not_recorded"]},
        "problems": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Problem"}},
        "message": {"type": "string"},
    },
    # A rejected report says why; one not recorded (atomic) says because of which.
    "allOf": [
        {"if": {"properties": {"outcome": {"const": "rejected"}}},
         "then": {"required": ["problems"]}, "else": {"not": {"required": ["problems"]}}},
        {"if": {"properties": {"outcome": {"const": "not_recorded"}}}, "then": {"required": ["message"]}},
    ],
}
_CAPTURE = {
    "type": "object",
    "required": ["reports", "recorded", "already_recorded", "conflicting", "rejected", "atomic", "results"],
    "properties": {
        "reports": {"type": "integer"}, "recorded": {"type": "integer"}, "already_recorded": {"type": "integer"},
        "conflicting": {"type": "integer"}, "rejected": {"type": "integer"}, "atomic": {"type": "boolean"},
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/Outcome"}},
        "projected_records": {"type": "integer"}, "note": {"type": "string"},
        "projection": {"type": "string", "description": "present when projecting after the append failed: "
                       "the reports are recorded; the server projects them when the store answers"},
    },
}
# 422: the request's outcomes as a Capture says them, none recorded, and why.
_REJECTED = {
    "description": "Nothing was recorded: every report was rejected, or ?atomic=true and one was. Each "
                   "report's outcome: rejected with its problems, or not_recorded (atomic).",
    "allOf": [
        {"$ref": "#/components/schemas/Capture"},
        {"type": "object", "required": ["error", "message"],
         "properties": {"error": {"const": "rejected"}, "message": {"type": "string"},
                        "recorded": {"const": 0}, "already_recorded": {"const": 0}, "conflicting": {"const": 0},
                        "rejected": {"type": "integer", "minimum": 1},
                        "results": {"type": "array", "items": {"properties": {
                            "outcome": {"enum": ["rejected", "not_recorded"]}}}}}},
    ],
}
_REJECT = {
    "type": "object", "required": ["source", "line", "raw", "problems", "rejected_at"],
    "description": "Input the ledger refused and kept, with its problems as the refusal (a 422) named them.",
    "properties": {
        "source": {"type": "string", "description": "the file, or 'POST /v1/events by PARTY'"},
        "line": {"type": "integer", "description": "its line, or its index in the request"},
        "raw": {"type": "string", "description": "exactly what was sent"},
        "problems": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Problem"},
                     "description": "input kept before problems were kept apart, or a record the Kafka "
                                    "projector could not apply: one problem, field (line), saying it all"},
        "rejected_at": {"type": "string"},
    },
}
_TEXT_OR_NULL = {"type": ["string", "null"]}
_TRANSITION = {
    "type": "object",
    "description": "One transition of the alert journal; the data of an event of /v1/alerts/stream too.",
    "required": ["seq", "transition_id", "alert_id", "transition", "at", "since"],
    "properties": {
        "seq": {"type": "integer", "description": "the journal's order; the SSE id"},
        "transition_id": {"type": "string", "description": "the same on every re-send: drop copies by it"},
        "alert_id": {"type": "string"},
        "transition": {"enum": ["raised", "updated", "resolved"]},
        "at": {"type": "string", "description": "when the ledger journaled it (UTC)"},
        **{name: _TEXT_OR_NULL for name in ("kind", "severity", "trace_id", "lot_id", "party", "quantity", "unit",
                                            "message")},
        "due_at": {"type": ["string", "null"], "description": "when the step it stands at (raised, updated) or "
                   "last stood at (resolved) came due (UTC)"},
        "since": {"type": ["string", "null"], "description": "when the alert first stood in the run this "
                  "transition belongs to (UTC), from the steps known now: for the latest transition of a "
                  "standing alert, the since of /v1/alerts"},
        "about_your_material": {"type": "boolean", "description": "read as a party (a reporter's own, or "
                                "?party=): addressed to another party, about material this party exported at "
                                "the origin; absent for an auditor or a dashboard naming no party"},
    },
}
_ROWS = {"type": "array", "items": {"type": "object"}}


def _errors(*codes: int) -> dict[str, Any]:
    reasons = {400: "A parameter or the body cannot be read (problems name field and value).",
               401: "No bearer token, one this ledger did not issue, or a revoked one.",
               403: "The credential's role or party may not do this; the message says why.",
               404: "No such lot, trace or path.",
               413: "Too many bytes or reports in one request.",
               422: "Every report was rejected, or ?atomic=true and one was: nothing recorded.",
               503: "The log or the store cannot be reached."}
    schemas = {422: "Rejected"}
    return {str(c): {"description": reasons[c], "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{schemas.get(c, 'Error')}"}}}}
            for c in codes}


def _ok(description: str, schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"200": {"description": description, "content": {media: {"schema": schema}}}}


def _get(summary: str, params: list[dict[str, Any]], ok: dict[str, Any], *errors: int,
         secured: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "parameters": params, "responses": {**ok, **_errors(*errors)}}
    if not secured:
        op["security"] = []
    return {"get": op}


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    event = event_json_schema()
    defs = event.pop("$defs", {})
    # The contract's $defs become components; its refs point there.
    text = _rewrite_refs(event)
    components = {name: _rewrite_refs(schema) for name, schema in defs.items()}
    reads = (400, 401, 403, 404, 503)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Traceability ledger API", "version": API_VERSION,
            "description": "Record reports about export-controlled goods and read the account of every lot. "
                           "Every /v1 request needs 'Authorization: Bearer <token>' "
                           "(`ledger credentials issue PARTY --role reporter|auditor|dashboard`). docs/API.md.",
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/events": {"post": {
                "summary": "Record reports: one JSON object, a JSON array, or JSON Lines.",
                "description": "Each report's outcome is listed. NOT all-or-nothing by default: good reports "
                               "are recorded and bad ones rejected with field/value/message problems. "
                               "?atomic=true records all or none. Idempotent by event_id: a re-sent report "
                               "is 'already_recorded'. A reporter credential may only send reports whose "
                               "'reporter' is its own party (403, nothing recorded).",
                "parameters": [_param("atomic", "query", "All or nothing (default false).",
                                      {"enum": ["true", "false"]})],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"oneOf": [{"$ref": "#/components/schemas/LedgerEvent"},
                                                              {"type": "array", "minItems": 1, "items": {
                                                                  "$ref": "#/components/schemas/LedgerEvent"}}]}},
                    "application/x-ndjson": {"schema": {"type": "string",
                                                        "description": "one report per line (JSON Lines)"}},
                }},
                "responses": {**_ok("Each report's outcome (some may be rejected: see 'rejected').",
                                    {"$ref": "#/components/schemas/Capture"}),
                              **_errors(400, 401, 403, 413, 422, 503)},
            }},
            "/v1/lots": _get("Every lot the caller may read, with its account.", [_AS_OF, _KNOWN_AT],
                             _ok("Lot rows.", {"type": "object", "properties": {"lots": _ROWS}}), *reads),
            "/v1/lots/{lot_id}": _get(
                "One lot: who holds it, where it came from, its account and what is unaccounted.",
                [_param("lot_id", "path", "A lot id.", {"type": "string"}, True), _AS_OF, _KNOWN_AT],
                _ok("The lot's row.", {"type": "object", "properties": {"lots": _ROWS}}), *reads),
            "/v1/reports": _get(
                "The reports about one lot (naming it, or opening it by re-export or ship-back), in the order "
                "they occurred, with event ids: the evidence behind the lot's figures.",
                [_param("lot", "query", "A lot id.", {"type": "string"}, True), _KNOWN_AT],
                _ok("The reports.", {"type": "object", "properties": {"reports": _ROWS}}), *reads),
            "/v1/traces/{trace_id}": _get(
                "A trace (or the trace of a lot id): whereabouts of every lot, the lineage tree, alerts.",
                [_param("trace_id", "path", "A trace id or a lot id.", {"type": "string"}, True), _AS_OF, _KNOWN_AT],
                _ok("The trace.", {"type": "object", "properties": {
                    "trace_ids": {"type": "array", "items": {"type": "string"}}, "whereabouts": _ROWS,
                    "lineage": _ROWS, "alerts": _ROWS}}), *reads),
            "/v1/alerts": _get(
                "Alerts standing now (or as of T).",
                [_param("party", "query", "Only alerts addressed to this party id, and those about material it "
                                          "exported at the origin (each row's about_your_material is true for "
                                          "these).", {"type": "string"}),
                 _SEVERITY, _KIND, _param("trace", "query", "Only this trace id.", {"type": "string"}),
                 _AS_OF, _KNOWN_AT],
                _ok("Standing alerts; each row's since is when it first stood, due_at its latest step. Read as a "
                    "party (?party=, or a reporter's token naming none) each row says about_your_material.",
                    {"type": "object", "properties": {"alerts": _ROWS}}), 400, 401, 403, 404, 503),
            "/v1/alerts/journal": _get(
                "Alert transitions (raised, updated, resolved) after a cursor, oldest first.",
                [_SINCE, _param("limit", "query", "At most this many (default and maximum 1000).",
                                {"type": "integer", "minimum": 0, "maximum": 10**17}), _PARTY, _SEVERITY, _KIND],
                _ok("Transitions, and the cursor to ask from next.", {"type": "object", "properties": {
                    "since": {"type": "integer"}, "next": {"type": "integer"},
                    "transitions": {"type": "array", "items": {"$ref": "#/components/schemas/Transition"}}}}),
                400, 401, 403, 503),
            "/v1/alerts/stream": _get(
                "Server-Sent Events of alert transitions as they are journaled. The SSE id is the journal "
                "seq, the event the transition, the data a Transition (as the journal answers it): reconnect "
                "with Last-Event-ID (or ?since=) and nothing is lost or repeated. When the server shuts down "
                "it ends the stream.",
                [_SINCE, _param("Last-Event-ID", "header", "Resume after this seq (wins over since).",
                                {"type": "string", "pattern": "^[0-9]{1,18}$"}), _PARTY, _SEVERITY, _KIND],
                _ok("An endless event stream.", {"type": "string"}, "text/event-stream"), 400, 401, 403),
            "/v1/flows": _get(
                "Cross-border reconciliation: shipped as senders report against received as receivers report.",
                [_param("from", "query", "Origin country (ISO 3166 alpha-2, upper case; else 400).", {"type": "string"}),
                 _param("to", "query", "Destination country.", {"type": "string"}),
                 _param("item", "query", "Only this item id.", {"type": "string"}),
                 _param("period", "query", "A year (2019) or a month (2019-07).",
                        {"type": "string", "pattern": "^[0-9]{4}(-(0[1-9]|1[0-2]))?$"}),
                 _param("gaps_only", "query", "Only flows whose gap is not zero.", {"enum": ["true", "false"]}),
                 _AS_OF, _KNOWN_AT],
                _ok("Flows.", {"type": "object", "properties": {"flows": _ROWS}}), 400, 401, 403, 503),
            "/v1/rejects": _get(
                "Input that was refused, with the reasons (a reporter: its own).",
                [_param("limit", "query", "At most this many, oldest first (default 1000; 0: all).",
                        {"type": "integer", "minimum": 0, "maximum": 10**17})],
                _ok("Rejects.", {"type": "object", "required": ["rejects"], "properties": {"rejects": {
                    "type": "array", "items": {"$ref": "#/components/schemas/Reject"}}}}), 400, 401, 403, 404, 503),
            "/healthz": _get("Liveness: the process answers.", [], _ok("Alive.", {"type": "object"}), secured=False),
            "/readyz": _get("Readiness: the log, the store and the credentials store answer.", [],
                            {**_ok("Ready.", {"type": "object"}),
                             "503": {"description": "A part is not reachable; the body says which and why.",
                                     "content": {"application/json": {"schema": {"type": "object"}}}}},
                            secured=False),
            "/metrics": _get("Prometheus text: reports by outcome, projector lag in records, open alerts by kind "
                             "(an auditor or a dashboard; not a reporter).",
                             [], _ok("Metrics.", {"type": "string"}, "text/plain"), 401, 403, 503),
            "/openapi.json": _get("This document.", [], _ok("OpenAPI 3.1.", {"type": "object"}), secured=False),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "`ledger credentials issue PARTY` prints one"}},
            "schemas": {**components, "LedgerEvent": text, "Error": _ERROR, "Problem": _PROBLEM,
                        "Outcome": _OUTCOME, "Capture": _CAPTURE, "Rejected": _REJECTED,
                        "Reject": _REJECT, "Transition": _TRANSITION},
        },
    }


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" and isinstance(v, str)
                    else _rewrite_refs(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def openapi_document() -> dict[str, Any]:
    return copy.deepcopy(_document())

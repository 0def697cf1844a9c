"""The HTTP API as a client uses it: `ledger serve` started as a process,
httpx as the client, on the embedded default (SQLite store) and on a
PostgreSQL store.  docs/API.md shows the same requests with curl."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import httpx

from consumers.client import EventRejected, LedgerClient
from http_server import LEDGER, Client, Server, post_story, serve_env, story_by_reporter

PROJECTOR_CATCH_UP_MAX_S = 120  # a bound on the wait, not a measurement
STOP_WITH_A_STREAM_OPEN_MAX_S = 20  # a bound on a hang, not a measurement

STOCK_DECLARED_HF_0001 = {
    "type": "stock_declared", "event_id": "semi-stock-2019-1201-001", "occurred_at": "2019-12-01T10:00:00+09:00",
    "reporter": "KR-SEMI", "trace_id": "TR-HF-2019-0001", "lot_id": "HF-0001",
    "quantity": {"amount": "30", "unit": "unit"},
}


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    args: tuple[str, ...] = ()
    env = serve_env(tmp_path / "home")
    if request.param == "postgres":
        # The projections and the credentials in one PostgreSQL schema
        # (the server and `ledger credentials` both read LEDGER_CREDENTIALS).
        url = request.getfixturevalue("postgres_url")
        args = ("--store", url)
        env["LEDGER_CREDENTIALS"] = url
    running = Server(tmp_path / "home", args, env).start()
    try:
        yield running
    finally:
        running.stop()


def test_the_2019_story_over_http(server: Server) -> None:
    clients = post_story(server)
    semi, fluoro = clients["KR-SEMI"], clients["JP-FLUORO"]
    auditor = server.issue("METI-AUDIT", "auditor")

    # HF-0001: 100 exported, 70 consumed, 30 unaccounted at KR-SEMI.
    lot = semi.get("/v1/lots/HF-0001")
    assert lot.status_code == 200, lot.text
    [row] = lot.json()["lots"]
    assert (row["holder"], row["shipped"], row["consumed"], row["unaccounted"]) == ("KR-SEMI", "100", "70", "30")
    # The exporter of origin reads it too; as of before the receipt, it was in transit.
    before = fluoro.get("/v1/lots/HF-0001", as_of="2019-07-12").json()["lots"][0]
    assert (before["in_transit"], before["received"], before["unaccounted"]) == ("100", "0", "0")
    # The reports behind its figures, in the order they occurred.
    reports = semi.get("/v1/reports", lot="HF-0001")
    assert reports.status_code == 200, reports.text
    assert [(r["event_id"], r["type"], r["quantity"]) for r in reports.json()["reports"]] == [
        ("fluoro-2019-0710-001", "exported", "100"), ("semi-rcv-2019-0715-001", "received", "100"),
        ("semi-use-2019-0820-001", "consumed", "70")]
    assert semi.get("/v1/reports", lot="HF-0001", known_at="2019-01-01").json()["reports"] == []
    assert semi.get("/v1/reports").status_code == 400
    assert semi.get("/v1/reports", lot="NO-SUCH-LOT").status_code == 404
    assert clients["CN-CHEM"].get("/v1/reports", lot="HF-0001").status_code == 403  # not its lot
    # Known at a moment before anything was recorded: nothing.
    assert auditor.get("/v1/lots/HF-0001", known_at="2019-01-01").json()["lots"] == []

    # Re-sending is a no-op, report by report.
    again = semi.post("/v1/events", "\n".join(story_by_reporter()["KR-SEMI"]))
    assert again.status_code == 200
    assert {r["outcome"] for r in again.json()["results"]} == {"already_recorded"}

    trace = auditor.get("/v1/traces/TR-PR-2019-0003").json()
    assert trace["trace_ids"] == ["TR-PR-2019-0003"]
    [root] = trace["lineage"]
    assert root["lot_id"] == "PR-0003"
    assert sorted((c["lot_id"], c["shipped"]) for c in root["children"]) == [("PR-0003-WX", "300"),
                                                                             ("PR-0003-XA", "700")]
    assert {a["kind"] for a in trace["alerts"]} >= {"premise_deviation"}

    alerts = auditor.get("/v1/alerts", kind="unaccounted").json()["alerts"]
    assert [(a["lot_id"], a["quantity"], a["party"]) for a in alerts] == [("HF-0001", "30", "KR-SEMI")]
    high = auditor.get("/v1/alerts", severity="high").json()["alerts"]
    assert high and all(a["severity"] == "high" for a in high)
    assert all(a["party"] == "KR-SEMI" for a in auditor.get("/v1/alerts", party="KR-SEMI").json()["alerts"])
    # The exporter of origin: KR-SEMI's re-exports of its photoresist, marked as about its material.
    origin = clients["JP-FLUORO"].get("/v1/alerts", party="JP-FLUORO").json()["alerts"]
    assert ("PR-0003-XA", "KR-SEMI", True) in {(a["lot_id"], a["party"], a["about_your_material"]) for a in origin}
    assert all(a["since"] <= a["due_at"] for a in origin)

    page = auditor.get("/v1/alerts/journal", since=0, limit=2).json()
    assert [t["seq"] for t in page["transitions"]] == [1, 2] and page["next"] == 2
    rest = auditor.get("/v1/alerts/journal", since=page["next"]).json()
    assert rest["transitions"][0]["seq"] == 3

    flows = auditor.get("/v1/flows", period="2019", gaps_only="true").json()["flows"]
    assert any((f["from"], f["to"], f["gap"]) == ("KR", "CN", "50") for f in flows), flows
    # A country read by the one rule, as `ledger flows --from jp` reads it: a 400 naming it, not "no flows".
    lower = auditor.get("/v1/flows", **{"from": "jp"})
    assert lower.status_code == 400
    assert lower.json()["problems"] == [{"field": "from", "value": '"jp"', "message":
                                         "'jp' is not an ISO 3166-1 alpha-2 country code (e.g. JP, KR, CN); write JP"}]

    assert auditor.get("/v1/rejects").json() == {"rejects": []}

    metrics = auditor.get("/metrics")
    assert metrics.status_code == 200
    assert 'ledger_reports_total{outcome="recorded"} 24' in metrics.text
    assert 'ledger_reports_total{outcome="already_recorded"} 5' in metrics.text
    assert 'ledger_alerts_open{kind="unaccounted"} 1' in metrics.text
    assert "ledger_projector_lag_records 0" in metrics.text
    # Ledger-wide counts are not a reporter's to read.
    refused = fluoro.get("/metrics")
    assert refused.status_code == 403 and "read ledger-wide metrics" in refused.text

    # "+09:00" typed into a URL unencoded arrives as " 09:00": read as the offset meant.
    typed = "/v1/lots/HF-0001?as_of=2019-07-12T12:00:00+09:00"
    assert httpx.get(server.url + typed, headers=fluoro.headers({}), timeout=30).json()["lots"][0]["in_transit"] \
        == before["in_transit"]

    ready = httpx_get(server, "/readyz")
    assert ready.status_code == 200 and ready.json() == {"credentials": "ok", "log": "ok", "ready": True,
                                                         "store": "ok"}
    spec = httpx_get(server, "/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert {"/v1/events", "/v1/lots/{lot_id}", "/v1/traces/{trace_id}", "/v1/alerts", "/v1/alerts/journal",
            "/v1/alerts/stream", "/v1/flows", "/v1/rejects", "/v1/reports", "/metrics", "/readyz", "/healthz"} <= set(spec["paths"])


def httpx_get(server: Server, path: str):  # type: ignore[no-untyped-def]
    return Client(server.url, None).get(path)


def test_bad_reports_are_rejected_one_by_one_unless_atomic(server: Server) -> None:
    semi = server.issue("KR-SEMI")
    good = dict(STOCK_DECLARED_HF_0001)
    bad = dict(good, event_id="semi-bad-1", quantity={"amount": 30.5, "unit": "unit"}, occurred_at="2019-12-01T10:00:00")

    atomic = semi.post("/v1/events", json.dumps([good, bad]), "application/json", atomic="true")
    assert atomic.status_code == 422
    body = atomic.json()
    assert body["error"] == "rejected" and "nothing was recorded" in body["message"]
    assert [r["outcome"] for r in body["results"]] == ["not_recorded", "rejected"]
    assert (body["reports"], body["recorded"], body["rejected"], body["atomic"]) == (2, 0, 1, True)
    # Each value as its JSON text: the number 30.5, the string "2019-12-01T10:00:00".
    assert body["results"][1]["problems"] == [
        {"field": "occurred_at", "value": '"2019-12-01T10:00:00"', "message": "Input should have timezone info"},
        {"field": "quantity.amount", "value": "30.5",
         "message": 'must be a decimal string such as "30.5" or an integer; JSON floats are inexact and are not '
                    "accepted"}]
    # The SDK refuses the same report with the same problems, value for value.
    with LedgerClient(f"sqlite:///{server.home.parent / 'sdk-log.db'}") as sdk, \
            pytest.raises(EventRejected) as refused:
        sdk.validate(bad)
    assert [p.model_dump() for p in refused.value.problems] == body["results"][1]["problems"]

    mixed = semi.post("/v1/events", json.dumps(good) + "\nnot json\n" + json.dumps(bad) + "\n")
    assert mixed.status_code == 200
    results = mixed.json()["results"]
    assert [(r["index"], r["outcome"]) for r in results] == [(1, "recorded"), (2, "rejected"), (3, "rejected")]
    assert results[1]["problems"][0]["field"] == "(line)"

    conflicting = semi.post("/v1/events", json.dumps(dict(good, quantity={"amount": "29", "unit": "unit"})))
    assert conflicting.json()["results"][0]["outcome"] == "conflicting"

    all_bad = semi.post("/v1/events", json.dumps(bad))
    assert all_bad.status_code == 422 and all_bad.json()["rejected"] == 1

    rejects = semi.get("/v1/rejects").json()["rejects"]
    assert {r["line"] for r in rejects} == {1, 2, 3}
    assert all(r["source"] == "POST /v1/events by KR-SEMI" for r in rejects)
    # Each kept with its problems as the 422 named them.
    assert [r["problems"] for r in rejects if r["raw"] == json.dumps(bad)] == [body["results"][1]["problems"]] * 2
    [not_json] = [r["problems"] for r in rejects if r["raw"] == "not json"]
    assert [(p["field"], p["value"]) for p in not_json] == [("(line)", '"not json"')]
    # Another reporter does not see KR-SEMI's rejects; an auditor does.
    assert server.issue("JP-FLUORO").get("/v1/rejects").json() == {"rejects": []}
    assert len(server.issue("AUDIT", "auditor").get("/v1/rejects").json()["rejects"]) == 3

    for content, ctype in (("", "application/json"), ("{", "application/json")):
        refused = semi.post("/v1/events", content, ctype)
        assert refused.status_code == 400 and refused.json()["problems"][0]["field"] == "(body)"
    assert semi.get("/v1/alerts", as_of="yesterday").json()["problems"][0]["value"] == '"yesterday"'
    assert semi.get("/v1/alerts", kind="bogus").status_code == 400


def test_who_may_do_what(server: Server) -> None:
    clients = post_story(server)
    semi, fluoro, chem = clients["KR-SEMI"], clients["JP-FLUORO"], clients["CN-CHEM"]
    auditor = server.issue("METI-AUDIT", "auditor")
    dashboard = server.issue("OPS-WALL", "dashboard")
    report = json.dumps(STOCK_DECLARED_HF_0001)

    # No token, a token this ledger never issued: 401, saying what to send.
    for token in (None, "ldg_not-a-token"):
        response = Client(server.url, token).get("/v1/alerts")
        assert response.status_code == 401
        assert response.json()["error"] == "unauthenticated"
        assert "ledger credentials issue" in response.json()["message"]
        assert response.headers["www-authenticate"].startswith("Bearer")

    # Impersonation: JP-FLUORO reports a consumption as KR-SEMI. Refused whole, nothing recorded.
    refused = fluoro.post("/v1/events", report)
    assert refused.status_code == 403
    body = refused.json()
    assert body["error"] == "impersonation"
    assert body["problems"] == [{"index": 1, "event_id": "semi-stock-2019-1201-001", "field": "reporter",
                                 "value": '"KR-SEMI"', "message": "this credential reports as JP-FLUORO only"}]
    assert auditor.get("/v1/alerts", kind="unaccounted").json()["alerts"], "the alert must still stand"

    # An auditor reads everything and writes nothing; a dashboard reads alerts only.
    assert auditor.post("/v1/events", report).status_code == 403
    assert "may not write reports" in auditor.post("/v1/events", report).json()["message"]
    assert dashboard.get("/v1/alerts").status_code == 200
    for path in ("/v1/lots/HF-0001", "/v1/traces/TR-HF-2019-0001", "/v1/flows", "/v1/rejects", "/v1/lots"):
        response = dashboard.get(path)
        assert response.status_code == 403, path
        assert "a dashboard credential (OPS-WALL) may not read lots" in response.json()["message"]
    assert dashboard.post("/v1/events", report).status_code == 403

    # A reporter reads its own lots and alerts only (holder, shipper, or exporter of origin).
    assert chem.get("/v1/lots/HF-0001").status_code == 403
    assert "reads only its own lots" in chem.get("/v1/lots/HF-0001").json()["message"]
    assert chem.get("/v1/traces/TR-HF-2019-0001").status_code == 403
    assert semi.get("/v1/lots/NO-SUCH-LOT").status_code == 404
    semi_lots = {r["lot_id"] for r in semi.get("/v1/lots").json()["lots"]}
    assert "HF-0001" in semi_lots and "HF-0004" not in semi_lots
    assert {r["lot_id"] for r in auditor.get("/v1/lots").json()["lots"]} > semi_lots
    assert {a["lot_id"] for a in chem.get("/v1/alerts").json()["alerts"]} <= {"HF-0004"}
    assert "HF-0001" in {a["lot_id"] for a in fluoro.get("/v1/alerts").json()["alerts"]}  # exporter of origin

    # The report sent with KR-SEMI's own token is recorded: the 30 units are accounted for.
    assert semi.post("/v1/events", report).json()["recorded"] == 1
    assert auditor.get("/v1/alerts", kind="unaccounted").json()["alerts"] == []

    # Revoked while the server runs: refused at the next request.
    done = server.ledger("credentials", "revoke", semi.credential_id)
    assert done.returncode == 0, done.stderr
    revoked = semi.get("/v1/alerts")
    assert revoked.status_code == 401
    assert revoked.json()["error"] == "revoked" and semi.credential_id in revoked.json()["message"]
    listed = json.loads(server.ledger("credentials", "list", "--party", "KR-SEMI", "--json").stdout)
    assert [c["revoked_at"] is not None for c in listed] == [True]


def test_alert_stream_resumes_with_last_event_id(server: Server) -> None:
    """An ingest raises an alert and a connected client receives it;
    disconnect, more transitions, reconnect with Last-Event-ID: the two
    connections together give every journal transition exactly once."""
    dashboard = server.issue("OPS-WALL", "dashboard")
    clients = {}
    by_reporter = story_by_reporter()
    # Connected before anything is recorded: the first event arrives as a report raises it.
    first = dashboard.listen(until_seq=1)
    clients["JP-FLUORO"] = server.issue("JP-FLUORO")
    assert clients["JP-FLUORO"].post("/v1/events", "\n".join(by_reporter["JP-FLUORO"])).status_code == 200
    assert [e["id"] for e in first.join()] == ["1"]

    # The rest of the story, while the stream is open: it delivers the 30-unit alert.
    listener = dashboard.listen(until_seq=10**9, stop_after=1, kind="unaccounted")
    for party, lines in sorted(by_reporter.items()):
        if party != "JP-FLUORO":
            assert server.issue(party).post("/v1/events", "\n".join(lines)).status_code == 200
    [unaccounted] = listener.join()
    assert (unaccounted["event"], unaccounted["data"]["lot_id"], unaccounted["data"]["quantity"]) == (
        "raised", "HF-0001", "30")

    # Read part of the journal, disconnect; more transitions; resume after the last id received.
    journal_end = dashboard.get("/v1/alerts/journal", limit=1000).json()["next"]
    part = list(dashboard.stream_events(until_seq=journal_end, stop_after=4))
    assert len(part) == 4
    semi = server.issue("KR-SEMI")
    assert semi.post("/v1/events", json.dumps(STOCK_DECLARED_HF_0001)).json()["recorded"] == 1  # resolves it
    everything = []
    since = 0
    while True:  # the journal's end, known before reading the stream
        page = dashboard.get("/v1/alerts/journal", since=since).json()
        everything += page["transitions"]
        if page["next"] == since:
            break
        since = page["next"]
    assert any(t["transition"] == "resolved" and t["lot_id"] == "HF-0001" for t in everything)
    rest = list(dashboard.stream_events(until_seq=everything[-1]["seq"], last_event_id=int(part[-1]["id"])))
    got = [int(e["id"]) for e in part + rest]
    assert got == [t["seq"] for t in everything]  # nothing lost, nothing repeated, in order
    assert [e["data"]["transition_id"] for e in part + rest] == [t["transition_id"] for t in everything]


@pytest.mark.kafka
@pytest.mark.postgres
def test_kafka_deployment_appends_and_the_projector_projects(tmp_path: Path, kafka_url: str,
                                                            postgres_url: str) -> None:
    """With a Kafka log, `ledger serve` only appends; `ledger kafka project`,
    its own process, projects into the PostgreSQL store the server reads."""
    home = tmp_path / "home"
    server = Server(home, ("--log", kafka_url, "--store", postgres_url), serve_env(home)).start()
    try:
        assert "appending only" in "".join(server.output)
        dashboard = server.issue("OPS-WALL", "dashboard")
        listener = dashboard.listen(until_seq=10**9, stop_after=1, kind="unaccounted")
        for party, lines in sorted(story_by_reporter().items()):
            response = server.issue(party).post("/v1/events", "\n".join(lines))
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["recorded"] == len(lines) and "projected_records" not in body
            assert "cannot tell a re-sent report" in body["note"]
        auditor = server.issue("METI-AUDIT", "auditor")
        assert "ledger_projector_lag_records 24" in auditor.get("/metrics").text
        # The projector runs until the server says it has read everything:
        # the end is the 24 records appended, not an idle interval (a
        # consumer group's first join can take longer than any such interval).
        projector = subprocess.Popen(
            [str(LEDGER), "kafka", "project", "--log", kafka_url, "--store", postgres_url, "--group", "http-test",
             "--no-publish"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=server.env)
        try:
            [alert] = listener.join()
            assert (alert["data"]["lot_id"], alert["data"]["quantity"]) == ("HF-0001", "30")
            deadline = time.monotonic() + PROJECTOR_CATCH_UP_MAX_S
            while "ledger_projector_lag_records 0\n" not in auditor.get("/metrics").text:
                assert time.monotonic() < deadline, "the projector did not catch up"
                assert projector.poll() is None, projector.stderr.read() if projector.stderr else ""
                time.sleep(0.2)
        finally:
            projector.terminate()
            projector.wait(timeout=30)
        [row] = auditor.get("/v1/lots/HF-0001").json()["lots"]
        assert row["unaccounted"] == "30"
        assert Client(server.url, None).get("/readyz").json()["ready"] is True
        # On Kafka the rejects are the dead-letter topic's refused input lines (issue 16): none were sent.
        rejects = auditor.get("/v1/rejects")
        assert rejects.status_code == 200 and rejects.json() == {"rejects": []}
    finally:
        server.stop()


def test_https_with_a_certificate(tmp_path: Path) -> None:
    """--tls-cert/--tls-key: tokens do not cross the network in clear text."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out",
                    str(cert)], check=True, capture_output=True, timeout=60)
    home = tmp_path / "home"
    trust = ssl.create_default_context(cafile=str(cert))
    server = Server(home, ("--tls-cert", str(cert), "--tls-key", str(key)), serve_env(home), verify=trust)
    server.start()
    try:
        assert server.url.startswith("https://127.0.0.1:")
        token = server.issue("OPS-WALL", "dashboard").token
        response = httpx.get(f"{server.url}/v1/alerts", headers={"Authorization": f"Bearer {token}"},
                             verify=trust, timeout=30)
        assert response.status_code == 200 and response.json()["alerts"] == []
        with pytest.raises(httpx.HTTPError):  # plain HTTP to the TLS port is not answered as HTTP
            httpx.get(server.url.replace("https://", "http://") + "/healthz", timeout=30)
    finally:
        server.stop()
    unpaired = server.ledger("serve", "--port", "0", "--tls-cert", str(cert))
    assert unpaired.returncode == 2 and "go together" in unpaired.stderr


def test_a_reporter_streams_only_its_own_alerts(server: Server) -> None:
    clients = post_story(server)
    chem = clients["CN-CHEM"]
    mine = chem.get("/v1/alerts/journal").json()["transitions"]
    everything = server.issue("AUDIT", "auditor").get("/v1/alerts/journal").json()["transitions"]
    assert mine and len(mine) < len(everything)
    # Addressed to CN-CHEM, or about HF-0004, the lot it holds.
    assert {t["lot_id"] for t in mine} == {"HF-0004"}
    streamed = list(chem.stream_events(until_seq=mine[-1]["seq"]))
    assert [int(e["id"]) for e in streamed] == [t["seq"] for t in mine]


def test_a_report_naming_an_unregistered_party_is_refused_over_http_as_ingest_refuses_it(server: Server) -> None:
    # A credential issued while the ledger ran open; then the operator fills the registry.
    stranger = server.issue("SOMEONE-UNKNOWN")
    semi = server.issue("KR-SEMI")
    parties = Path(__file__).resolve().parents[2] / "examples" / "parties.json"
    assert server.ledger("parties", "add", "--file", str(parties), *server.args).returncode == 0

    as_stranger = dict(STOCK_DECLARED_HF_0001, event_id="stranger-1", reporter="SOMEONE-UNKNOWN")
    refused = stranger.post("/v1/events", json.dumps(as_stranger), "application/json")
    assert refused.status_code == 422
    [result] = refused.json()["results"]
    assert result["outcome"] == "rejected"
    assert [p["field"] for p in result["problems"]] == ["reporter"]
    assert "is not a registered party" in result["problems"][0]["message"]

    # A registered reporter, reporting as itself, is recorded as before.
    to_nobody = dict(STOCK_DECLARED_HF_0001, event_id="semi-ok-1")
    assert semi.post("/v1/events", json.dumps(to_nobody), "application/json").json()["results"][0]["outcome"] \
        == "recorded"


def test_a_key_said_twice_or_a_body_nested_too_deep_is_refused_and_stops_nothing(server: Server) -> None:
    semi = server.issue("KR-SEMI")
    twice = json.dumps(dict(STOCK_DECLARED_HF_0001, event_id="semi-twice-1"))
    twice = '{"type": "teleported", ' + twice[1:]  # "type" said twice: the last would win silently
    for body in (twice, f"[{twice}]"):
        answer = semi.post("/v1/events", body, "application/json")
        assert answer.status_code == 422, body
        [result] = answer.json()["results"]
        assert result["outcome"] == "rejected"
        assert result["problems"][0]["field"] == "type"
        assert "appears twice in one object" in result["problems"][0]["message"]

    deep = semi.post("/v1/events", "[" * 1000 + "]" * 1000, "application/json")
    assert deep.status_code == 400 and deep.json()["problems"][0]["field"] == "(body)"
    # The server goes on: the next report is recorded.
    good = semi.post("/v1/events", json.dumps(dict(STOCK_DECLARED_HF_0001, event_id="semi-after-1")),
                     "application/json")
    assert good.json()["results"][0]["outcome"] == "recorded"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopping_the_server_ends_an_open_alert_stream_quietly(tmp_path: Path, stop: signal.Signals) -> None:
    """Ctrl-C or SIGTERM while a dashboard holds the alert stream open: the
    server ends the stream (the client reads it to its end, no cut
    connection), exits, and prints no error or traceback."""
    home = tmp_path / "home"
    server = Server(home, (), serve_env(home)).start()
    try:
        listener = server.issue("OPS-WALL", "dashboard").listen(until_seq=10**9)
        assert server.process is not None
        server.process.send_signal(stop)
        status, output = server.wait(STOP_WITH_A_STREAM_OPEN_MAX_S)
    finally:
        server.stop()
    assert listener.join() == []  # ended by the server, read to its end without an error
    # uvicorn raises the signal it caught again once it has shut down: Ctrl-C
    # ends the command as an interrupt (130), SIGTERM kills it, as a supervisor expects.
    assert status == (130 if stop == signal.SIGINT else -signal.SIGTERM), output
    said = output.splitlines()
    assert "listening on" in said[0], output
    assert said[1:] == (["ledger serve: interrupted; what was committed is kept, re-run to resume"]
                        if stop == signal.SIGINT else []), output


def test_the_journal_says_since_and_marks_a_partys_material_as_the_alert_list_does(server: Server) -> None:
    fluoro = post_story(server)["JP-FLUORO"]
    listed = {a["alert_id"]: (a["since"], a["about_your_material"]) for a in fluoro.get("/v1/alerts").json()["alerts"]}
    latest = {t["alert_id"]: t for t in fluoro.get("/v1/alerts/journal").json()["transitions"]}
    standing = {i: (t["since"], t["about_your_material"]) for i, t in latest.items() if t["transition"] != "resolved"}
    assert standing == listed
    assert any(marked for _since, marked in listed.values())

    # ?party= reads the journal as that party, as it reads the alert list: its
    # own alerts and those about its material, marked.
    auditor = server.issue("METI-AUDIT", "auditor")
    as_fluoro = auditor.get("/v1/alerts/journal", party="JP-FLUORO").json()["transitions"]
    assert all(t["party"] == "JP-FLUORO" or t["about_your_material"] for t in as_fluoro)
    assert ("KR-SEMI", "HF-0001", "unaccounted", True) in {
        (t["party"], t["lot_id"], t["kind"], t["about_your_material"]) for t in as_fluoro}
    # No party's view, no mark; since on every transition.
    everything = auditor.get("/v1/alerts/journal").json()["transitions"]
    assert all("about_your_material" not in t and t["since"] <= t["due_at"] for t in everything if t["due_at"])

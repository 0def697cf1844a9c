"""`ledger serve` as a process, and a real HTTP client (httpx) against it."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

LEDGER = Path(sys.executable).parent / "ledger"
STORY = Path(__file__).resolve().parents[1] / "examples" / "story-2019.jsonl"
START_WAIT_S = 60  # bound on the server's start (opening a PostgreSQL store included)
STOP_WAIT_S = 20
REQUEST_TIMEOUT_S = 60
SSE_READ_TIMEOUT_S = 30  # an event the test waits for arrives within this, or the test fails


def story_by_reporter() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in STORY.read_text().splitlines():
        if line.strip():
            out.setdefault(json.loads(line)["reporter"], []).append(line)
    return out


@dataclass
class Server:
    home: Path
    args: tuple[str, ...]
    env: dict[str, str]
    process: subprocess.Popen[str] | None = None
    url: str = ""
    verify: Any = True  # an ssl.SSLContext trusting the certificate of a server with --tls-cert
    output: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None

    def start(self) -> "Server":
        self.process = subprocess.Popen([str(LEDGER), "serve", "--port", "0", *self.args], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, env=self.env)
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                lines.put(line)
            lines.put(None)

        self.pump = threading.Thread(target=pump, daemon=True)
        self.pump.start()
        while True:
            try:
                line = lines.get(timeout=START_WAIT_S)
            except queue.Empty:
                raise AssertionError(f"ledger serve did not start in {START_WAIT_S} s: {''.join(self.output)}")
            if line is None:
                raise AssertionError(f"ledger serve exited: {''.join(self.output)}")
            if "listening on " in line:
                self.url = line.split("listening on ", 1)[1].split()[0]
                break
        # The lifespan opens the adapters before the first request is answered.
        assert httpx.get(f"{self.url}/healthz", timeout=REQUEST_TIMEOUT_S, verify=self.verify).status_code == 200
        return self

    def stop(self) -> int | None:
        if self.process is None:
            return None
        self.process.terminate()
        try:
            return self.process.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"ledger serve did not stop in {STOP_WAIT_S} s on SIGTERM")

    def wait(self, timeout_s: float) -> tuple[int, str]:
        """The exit status and everything the server printed, once it has exited by itself."""
        assert self.process is not None and self.pump is not None
        status = self.process.wait(timeout=timeout_s)
        self.pump.join(timeout_s)  # the output to its end
        return status, "".join(self.output)

    def ledger(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(LEDGER), *args], capture_output=True, text=True, env=self.env, timeout=120)

    def issue(self, party: str, role: str = "reporter") -> "Client":
        done = self.ledger("credentials", "issue", party, "--role", role, "--json")
        assert done.returncode == 0, done.stderr
        issued = json.loads(done.stdout)
        return Client(self.url, issued["token"], issued["credential_id"], party)


@dataclass
class Client:
    url: str
    token: str | None
    credential_id: str = ""
    party: str = ""

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        out = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        out.update(extra or {})
        return out

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.url + path, params=params, headers=self.headers(), timeout=REQUEST_TIMEOUT_S)

    def post(self, path: str, content: str | bytes, content_type: str = "application/x-ndjson",
             **params: Any) -> httpx.Response:
        return httpx.post(self.url + path, params=params, content=content, timeout=REQUEST_TIMEOUT_S,
                          headers=self.headers({"Content-Type": content_type}))

    def listen(self, until_seq: int, **options: Any) -> "Listener":
        """Read the stream in a thread; returns once the connection is open."""
        listener = Listener(self, until_seq, options)
        listener.thread.start()
        if not listener.opened.wait(REQUEST_TIMEOUT_S):
            raise AssertionError(f"the alert stream did not open in {REQUEST_TIMEOUT_S} s: {listener.error}")
        return listener

    def stream_events(self, until_seq: int, *, last_event_id: int | None = None,
                      stop_after: int | None = None, opened: threading.Event | None = None,
                      **params: Any) -> Iterator[dict[str, Any]]:
        """SSE events (id, event, data) from /v1/alerts/stream until one with
        id >= ``until_seq`` (or ``stop_after`` events), then disconnect."""
        extra = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            extra["Last-Event-ID"] = str(last_event_id)
        timeout = httpx.Timeout(REQUEST_TIMEOUT_S, read=SSE_READ_TIMEOUT_S)
        with httpx.stream("GET", self.url + "/v1/alerts/stream", params=params, headers=self.headers(extra),
                          timeout=timeout) as response:
            assert response.status_code == 200, response.read()
            if opened is not None:
                opened.set()
            event: dict[str, Any] = {}
            seen = 0
            for line in response.iter_lines():
                if line.startswith(":"):
                    continue
                if line == "":
                    if "data" in event:
                        event["data"] = json.loads(event["data"])
                        yield event
                        seen += 1
                        if int(event["id"]) >= until_seq or (stop_after is not None and seen >= stop_after):
                            return
                    event = {}
                    continue
                name, _, value = line.partition(":")
                event[name] = value.removeprefix(" ")


class Listener:
    """An SSE client in a thread: ``events`` fills as they arrive; ``join()`` waits for the last."""

    def __init__(self, client: Client, until_seq: int, options: dict[str, Any]):
        self.events: list[dict[str, Any]] = []
        self.opened = threading.Event()
        self.error: BaseException | None = None

        def run() -> None:
            try:
                for event in client.stream_events(until_seq, opened=self.opened, **options):
                    self.events.append(event)
            except BaseException as error:  # noqa: BLE001 - reported by join()
                self.error = error
                self.opened.set()

        self.thread = threading.Thread(target=run, daemon=True)

    def join(self) -> list[dict[str, Any]]:
        # Bounded: stream_events fails on a read idle for SSE_READ_TIMEOUT_S.
        self.thread.join(REQUEST_TIMEOUT_S + SSE_READ_TIMEOUT_S)
        if self.thread.is_alive():
            raise AssertionError("the alert stream did not deliver the awaited event")
        if self.error is not None:
            raise self.error
        return self.events


def post_story(server: Server) -> dict[str, Client]:
    """Every party of the 2019 story posts its own reports with its own token,
    in three body shapes: JSON Lines, a JSON array, single JSON objects."""
    clients = {}
    for n, (party, lines) in enumerate(sorted(story_by_reporter().items())):
        client = clients[party] = server.issue(party)
        if n % 3 == 0:
            responses = [client.post("/v1/events", "\n".join(lines) + "\n")]
        elif n % 3 == 1:
            responses = [client.post("/v1/events", "[" + ",".join(lines) + "]", "application/json")]
        else:
            responses = [client.post("/v1/events", line, "application/json") for line in lines]
        for response in responses:
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["recorded"] == body["reports"], body
            assert {r["outcome"] for r in body["results"]} == {"recorded"}
    return clients


def serve_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LEDGER_LOG", "LEDGER_STORE", "LEDGER_POLICY",
                                                             "LEDGER_CREDENTIALS")}
    env["LEDGER_HOME"] = str(home)
    return env

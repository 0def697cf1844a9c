"""Who may say what, on every path (issue 15; docs/COMPLIANCE.md).

The 2019 story is recorded, then a dishonest but registered party, KR-EVIL,
tries each trick the issue lists -- through the producer SDK (which it runs
itself, so the SDK checks nothing for the ledger) and, on Kafka, around it
with a plain producer.  Each test runs on the embedded log and on Kafka (with a SQLite store, and
with PostgreSQL); the projector is the guard every report passes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from consumers.client import EventRejected, LedgerClient
from consumers.log.embedded import EmbeddedLog
from ledger.events import event_key
from consumers.projector import catch_up, utc_now
from ledger.events import parse_event
from ledger.parties import RegisteredParty, parties_from_json
from consumers.bootstrap import load_policy
from projections.queries import standing_alerts, whereabouts
from projections.sqlite_store import SQLiteProjectionStore
from projections.store import ProjectionStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
POLICY = load_policy(EXAMPLES / "policy.toml")
# The story's parties, and KR-EVIL: registered, so its reports are taken -- and judged.
PARTIES = [*parties_from_json((EXAMPLES / "parties.json").read_text()),
           RegisteredParty("KR-EVIL", "KR", ("consignee", "exporter"))]
STORY = [json.loads(line) for line in (EXAMPLES / "story-2019.jsonl").read_text().splitlines() if line.strip()]
HF_UHP = {"id": "HF-UHP", "name": "hydrogen fluoride, ultra high purity", "classification": "AG 1C350.25"}


def kr(party_id: str) -> dict[str, str]:
    return {"id": party_id, "country": "KR"}


@dataclass
class Ledger:
    kind: str
    log: Any
    store: ProjectionStore

    def send(self, *reports: dict[str, Any]) -> None:
        """What a party's own SDK sends: it checks the contract, not the registry."""
        with LedgerClient(self.log) as client:
            client.send(list(reports))

    def send_around_the_sdk(self, *reports: dict[str, Any]) -> None:
        """A plain Kafka producer: whatever bytes, whatever recorded_at."""
        self.log.send(self.log.events_topic,
                      [(event_key(parse_event(r)), json.dumps(r).encode(), []) for r in reports])

    def project(self) -> None:
        catch_up(self.log, self.store, policy=POLICY)

    def lot(self, lot_id: str) -> dict[str, Any]:
        """The lot as `ledger whereabouts LOT --json` shows it now."""
        [row] = whereabouts(self.store, lot_id, now=utc_now(), policy=POLICY)
        return row

    def alerts(self, kind: str) -> list[dict[str, Any]]:
        return [a for a in self.store.standing_alerts(utc_now()) if a["kind"] == kind]

    def dead_letters(self) -> list[str]:
        return [d["error"] for d in self.store.dead_letters()]


@pytest.fixture(params=["embedded", "kafka", "kafka+postgresql"])
def ledger(request, tmp_path):
    """The embedded default (one SQLite log, one SQLite store), Kafka with the
    SQLite store, and Kafka with PostgreSQL (the registry kept in PostgreSQL)."""
    if request.param.startswith("kafka"):
        from consumers.log.kafka import KafkaLog

        log = KafkaLog.from_url(request.getfixturevalue("kafka_url"))
    else:
        log = EmbeddedLog(tmp_path / "log.db")
    if request.param == "kafka+postgresql":
        from projections.postgres_store import PostgresProjectionStore

        store = PostgresProjectionStore.from_url(request.getfixturevalue("postgres_url"))
    else:
        store = SQLiteProjectionStore(tmp_path / "store.db")
    store.register_parties(PARTIES)
    with LedgerClient(log, parties=store) as client:  # the parties' systems report the story
        client.send(STORY)
    yield Ledger(request.param.split("+")[0], log, store)
    store.close()
    log.close()


def test_the_story_alone_gives_its_answers(ledger):
    ledger.project()
    assert ledger.lot("HF-0001")["unaccounted"] == "30"
    assert [a["lot_id"] for a in ledger.alerts("ship_back_exemption")] == ["HF-0002-R1"]
    assert ledger.alerts("unauthorized_report") == [] and ledger.dead_letters() == []


def test_lot_hijack_an_earlier_dated_export_of_the_lot_by_another_party_is_refused(ledger):
    # KR-EVIL exports lot HF-0001 in the same trace, dated nine days before
    # the real export of 10 July 2019, to itself.
    ledger.send({"type": "exported", "event_id": "evil-exp-1", "occurred_at": "2019-07-01T10:00:00+09:00",
                 "reporter": "KR-EVIL", "trace_id": "TR-HF-2019-0001", "lot_id": "HF-0001",
                 "exporter": kr("KR-EVIL"), "consignee": kr("KR-EVIL"), "item": HF_UHP,
                 "quantity": {"amount": "100", "unit": "unit"}})
    ledger.project()

    # KR-SEMI still holds the lot; its receipt and consumption still count.
    lot = ledger.lot("HF-0001")
    assert (lot["shipper"], lot["holder"], lot["consumed"], lot["unaccounted"]) == ("JP-FLUORO", "KR-SEMI", "70", "30")
    [refused] = ledger.alerts("unauthorized_report")
    assert (refused["party"], refused["lot_id"], refused["event_ids"]) == ("KR-SEMI", "HF-0001", ["evil-exp-1"])


def test_event_id_squatting_another_partys_id_does_not_shadow_the_holders_report(ledger):
    # KR-EVIL sends "semi-use-2" in its own trace first ...
    ledger.send(
        {"type": "exported", "event_id": "evil-exp-2", "occurred_at": "2019-08-01T10:00:00+09:00",
         "reporter": "KR-EVIL", "trace_id": "TR-EVIL-2", "lot_id": "EVIL-2", "exporter": kr("KR-EVIL"),
         "consignee": kr("KR-EVIL"), "item": HF_UHP, "quantity": {"amount": "1", "unit": "unit"}},
        {"type": "consumed", "event_id": "semi-use-2", "occurred_at": "2019-08-02T10:00:00+09:00",
         "reporter": "KR-EVIL", "trace_id": "TR-EVIL-2", "lot_id": "EVIL-2",
         "quantity": {"amount": "1", "unit": "unit"}, "end_use": "squatting"},
    )
    ledger.project()
    # ... then KR-SEMI accounts for its last 30 units under that id.
    ledger.send({"type": "consumed", "event_id": "semi-use-2", "occurred_at": "2019-09-02T10:00:00+09:00",
                 "reporter": "KR-SEMI", "trace_id": "TR-HF-2019-0001", "lot_id": "HF-0001",
                 "quantity": {"amount": "30", "unit": "unit"}, "end_use": "wafer etching, memory line 2"})
    ledger.project()

    assert (ledger.lot("HF-0001")["consumed"], ledger.lot("HF-0001")["unaccounted"]) == ("100", "0")
    assert ledger.alerts("conflicting_report") == []


def test_event_id_reused_by_one_party_in_two_traces_is_a_conflict_not_two_movements(ledger):
    ledger.send({"type": "consumed", "event_id": "semi-use-2019-0820-001", "occurred_at": "2019-09-02T10:00:00+09:00",
                 "reporter": "KR-SEMI", "trace_id": "TR-PR-2019-0003", "lot_id": "PR-0003",
                 "quantity": {"amount": "5", "unit": "L"}, "end_use": "lithography"})
    ledger.project()

    assert ledger.lot("PR-0003")["consumed"] == "0" and ledger.lot("HF-0001")["consumed"] == "70"
    [conflict] = ledger.alerts("conflicting_report")
    assert (conflict["trace_id"], conflict["party"]) == ("TR-PR-2019-0003", "KR-SEMI")
    assert "first recorded in trace 'TR-HF-2019-0001'" in conflict["message"]


def test_licenses_by_anyone_a_forged_revocation_and_a_self_granted_license_are_refused(ledger):
    # KR-EVIL revokes JP-FLUORO's license for the HF-0001 export ...
    ledger.send({"type": "license_revoked", "event_id": "evil-rev-1", "occurred_at": "2019-07-05T09:00:00+09:00",
                 "reporter": "KR-EVIL", "license_id": "JP-IND-2019-0001", "reason": "forged"})
    # ... and KR-TRADE grants itself a license, and ships to China citing it.
    ledger.send({"type": "license_granted", "event_id": "trade-self-1", "occurred_at": "2019-04-01T09:00:00+09:00",
                 "reporter": "KR-TRADE", "license_id": "KR-SELF-1", "kind": "general_bulk", "exporter": "KR-TRADE",
                 "items": ["HF-UHP"], "destinations": ["CN"], "valid_from": "2019-04-01T00:00:00+09:00",
                 "valid_until": "2022-04-01T00:00:00+09:00"},
                {"type": "exported", "event_id": "trade-exp-9", "occurred_at": "2019-08-01T10:00:00+09:00",
                 "reporter": "KR-TRADE", "trace_id": "TR-HF-2019-0009", "lot_id": "HF-0009",
                 "exporter": kr("KR-TRADE"), "consignee": {"id": "CN-CHEM", "country": "CN"}, "item": HF_UHP,
                 "quantity": {"amount": "10", "unit": "t"}, "license_id": "KR-SELF-1"})
    ledger.project()

    assert ledger.alerts("license_invalid") == []  # the HF-0001 export stays licensed
    # The self-granted license licenses nothing: the shipment citing it is unlicensed.
    assert [a["lot_id"] for a in ledger.alerts("license_unknown")] == ["HF-0009"]
    refused = {a["event_ids"][0]: a for a in ledger.alerts("unauthorized_report")}
    assert sorted(refused) == ["evil-rev-1", "trade-self-1"]
    assert (refused["evil-rev-1"]["trace_id"], refused["evil-rev-1"]["party"]) == ("license:JP-IND-2019-0001", "JP-FLUORO")
    assert "'KR-TRADE' is not a licensing authority named in the policy" in refused["trade-self-1"]["message"]
    # Asked as of a date (recomputed, not read from the stored steps), the answer is the same.
    as_of = datetime(2020, 1, 1, tzinfo=timezone.utc)
    recomputed = standing_alerts(ledger.store, now=utc_now(), policy=POLICY, as_of=as_of)
    assert sorted(a["event_ids"][0] for a in recomputed if a["kind"] == "unauthorized_report") == sorted(refused)
    assert [a["lot_id"] for a in recomputed if a["kind"] == "license_unknown"] == ["HF-0009"]


def test_times_chosen_by_the_sender_a_backdated_second_version_does_not_win(ledger):
    # KR-SEMI's consumption of 70 units, sent again saying 1 unit and
    # claiming to have been recorded the day after the original.
    second = dict(next(r for r in STORY if r["event_id"] == "semi-use-2019-0820-001"),
                  quantity={"amount": "1", "unit": "unit"}, recorded_at="2019-08-21T00:00:00+00:00")
    ledger.send(second)
    if ledger.kind == "kafka":  # and with a plain producer, around the SDK
        ledger.send_around_the_sdk(dict(second, quantity={"amount": "2", "unit": "unit"}))
    ledger.project()

    assert ledger.lot("HF-0001")["consumed"] == "70"
    assert ledger.alerts("conflicting_report"), "the second version is kept, and alerted"


def test_times_chosen_by_the_sender_a_report_dated_in_the_future_is_refused(ledger):
    in_2031 = {"type": "consumed", "event_id": "semi-use-2031", "occurred_at": "2031-01-01T00:00:00+00:00",
               "recorded_at": "2031-01-01T00:00:00+00:00", "reporter": "KR-SEMI", "trace_id": "TR-HF-2019-0001",
               "lot_id": "HF-0001", "quantity": {"amount": "30", "unit": "unit"}, "end_use": "not yet"}
    with pytest.raises(EventRejected) as refused:
        ledger.send(in_2031)
    assert [p.field for p in refused.value.problems] == ["occurred_at"]
    if ledger.kind == "kafka":
        ledger.send_around_the_sdk(in_2031)
    ledger.project()

    assert ledger.lot("HF-0001")["unaccounted"] == "30"
    if ledger.kind == "kafka":
        [error] = ledger.dead_letters()
        assert "occurred_at" in error and "cannot describe the future" in error


def test_a_report_naming_an_unregistered_party_is_refused(ledger):
    ghost = {"type": "received", "event_id": "ghost-rcv-1", "occurred_at": "2019-07-16T10:00:00+09:00",
             "reporter": "KR-GHOST", "trace_id": "TR-HF-2019-0001", "lot_id": "HF-0001",
             "quantity": {"amount": "1", "unit": "unit"}}
    with LedgerClient(ledger.log, parties=ledger.store) as client, pytest.raises(EventRejected) as refused:
        client.send([ghost])  # an SDK given the registry refuses before sending
    assert [(p.field, p.value) for p in refused.value.problems] == [("reporter", '"KR-GHOST"')]
    ledger.send(ghost)  # one that is not: the projector refuses it
    ledger.project()

    [error] = ledger.dead_letters()
    assert "field 'reporter' value \"KR-GHOST\": is not a registered party" in error
    assert ledger.alerts("invalid_report") == []


def test_a_ship_back_exemption_is_confirmed_by_the_licensing_authority_only(ledger):
    confirmation = {"type": "exemption_confirmed", "occurred_at": "2019-04-12T09:00:00+09:00",
                    "trace_id": "TR-HF-2019-0002", "lot_id": "HF-0002-R1", "reference": "return to manufacturer"}
    ledger.send(dict(confirmation, event_id="evil-exm-1", reporter="KR-EVIL"))
    ledger.project()
    assert [a["lot_id"] for a in ledger.alerts("ship_back_exemption")] == ["HF-0002-R1"]
    [refused] = ledger.alerts("unauthorized_report")
    assert (refused["party"], refused["event_ids"]) == ("KR-TRADE", ["evil-exm-1"])

    ledger.send(dict(confirmation, event_id="motie-exm-1", reporter="KR-MOTIE"))
    ledger.project()
    assert ledger.alerts("ship_back_exemption") == []


def test_an_operator_migrating_with_trust_recorded_at_keeps_the_times_the_reports_carry(ledger, tmp_path):
    # `--trust-recorded-at` stays the operator's switch: ingest keeps the
    # recorded_at a migrated file carries, and so does the projector that
    # the operator runs with it (on Kafka, instead of the broker's append time).
    from consumers.ingest import ingest_lines

    migrated = dict(next(r for r in STORY if r["event_id"] == "semi-use-2019-0820-001"),
                    event_id="semi-use-migrated-1", quantity={"amount": "5", "unit": "unit"},
                    recorded_at="2019-08-21T00:00:00+00:00")
    report = ingest_lines([json.dumps(migrated)], ledger.log, source="migration", clock=utc_now,
                          trust_recorded_at=True)
    assert report.rejected == 0
    catch_up(ledger.log, ledger.store, policy=POLICY, trust_recorded_at=True)

    [payload] = [p for versions in ledger.store.load_versions(["TR-HF-2019-0001"]).values() for p, _d in versions
                 if json.loads(p)["event_id"] == "semi-use-migrated-1"]
    assert json.loads(payload)["recorded_at"] == "2019-08-21T00:00:00Z"

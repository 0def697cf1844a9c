"""Two clocks: where things stood as of a date (occurred_at), and what the
ledger knew at a moment (recorded_at).  Asked of the domain and of a real
projection store, the answers agree."""

from datetime import datetime, timezone

import pytest

from builders import DAY, MICROSECOND, consumed, exported, projected, received, retracted, stamp, trace_of, when
from ledger.policy import Policy
from projections.queries import standing_alerts, whereabouts

POLICY = Policy()
NOW = datetime(2021, 1, 1, tzinfo=timezone.utc)

SHIPPED = when("2019-07-10T10:00:00+09:00")
RECEIVED = when("2019-07-15T14:00:00+09:00")
CONSUMED = RECEIVED + 36 * DAY
# The consignee's consumption report reaches the ledger a week after the fact,
# and is withdrawn by the consignee two months later.
USE_RECORDED = CONSUMED + 7 * DAY
RETRACTION_RECORDED = CONSUMED + 60 * DAY

EXPORT = exported(lot="HF-1", qty="100", unit="kg", at=SHIPPED, event_id="exp-1")
RECEIPT = received(lot="HF-1", qty="100", unit="kg", at=RECEIVED, event_id="rcv-1")
USE = consumed(lot="HF-1", qty="70", unit="kg", at=CONSUMED, event_id="use-1", recorded_at=USE_RECORDED)
RETRACTION = retracted(USE, at=RETRACTION_RECORDED - DAY, event_id="retract-1",
                       recorded_at=RETRACTION_RECORDED)
REPORTS = [EXPORT, RECEIPT, USE, RETRACTION]


@pytest.fixture
def store():
    store = projected([stamp(r) for r in REPORTS], policy=POLICY, now=NOW, log="embedded")
    yield store
    store.close()


def lot(rows, lot_id="HF-1"):
    [row] = [r for r in rows if r["lot_id"] == lot_id]
    return row


# -- as of a date: before and after a receipt -----------------------------------------


def test_whereabouts_before_the_receipt_is_in_transit():
    account = trace_of(*REPORTS).account(as_of=RECEIVED - MICROSECOND)
    hf = account.lots["HF-1"]
    assert (hf.shipped, hf.in_transit, hf.received, hf.on_hand) == (100, 100, 0, 0)


def test_whereabouts_from_the_receipt_on_is_on_hand():
    account = trace_of(*REPORTS).account(as_of=RECEIVED)
    hf = account.lots["HF-1"]
    assert (hf.shipped, hf.in_transit, hf.received, hf.on_hand) == (100, 0, 100, 100)
    assert hf.since == RECEIVED


def test_the_store_answers_as_of_a_date_the_same_way(store):
    before = lot(whereabouts(store, "HF-1", now=NOW, policy=POLICY, as_of=RECEIVED - MICROSECOND))
    after = lot(whereabouts(store, "HF-1", now=NOW, policy=POLICY, as_of=RECEIVED))
    assert (before["in_transit"], before["received"], before["on_hand"]) == ("100", "0", "0")
    assert (after["in_transit"], after["received"], after["on_hand"]) == ("0", "100", "100")


def test_a_lot_not_yet_shipped_on_the_date_is_not_there(store):
    assert whereabouts(store, "TR-1", now=NOW, policy=POLICY, as_of=SHIPPED - MICROSECOND) == []


# -- known at a moment: before and after a retraction was recorded -------------------------


def test_known_before_the_retraction_was_recorded_the_consumption_counts():
    account = trace_of(*REPORTS).account(known_at=RETRACTION_RECORDED - MICROSECOND)
    assert account.lots["HF-1"].consumed == 70
    assert account.lots["HF-1"].on_hand == 30


def test_known_once_the_retraction_was_recorded_the_consumption_is_gone():
    account = trace_of(*REPORTS).account(known_at=RETRACTION_RECORDED)
    assert account.lots["HF-1"].consumed == 0
    assert account.lots["HF-1"].on_hand == 100


def test_known_before_the_consumption_was_recorded_it_is_not_there_either():
    # It occurred on CONSUMED, but the ledger only learned of it a week later.
    account = trace_of(*REPORTS).account(as_of=CONSUMED, known_at=USE_RECORDED - MICROSECOND)
    assert account.lots["HF-1"].consumed == 0
    account = trace_of(*REPORTS).account(as_of=CONSUMED, known_at=USE_RECORDED)
    assert account.lots["HF-1"].consumed == 70


def test_the_store_answers_known_at_the_same_way(store):
    def consumed_known_at(known_at):
        return lot(whereabouts(store, "HF-1", now=NOW, policy=POLICY, known_at=known_at))["consumed"]

    assert consumed_known_at(RETRACTION_RECORDED - MICROSECOND) == "70"
    assert consumed_known_at(RETRACTION_RECORDED) == "0"
    # Now (everything known) the retraction stands.
    assert lot(whereabouts(store, "HF-1", now=NOW, policy=POLICY))["consumed"] == "0"


def test_what_the_ledger_said_was_unaccounted_depends_on_what_it_knew(store):
    # Ninety days after the receipt, with the consumption known, 30 kg were
    # unaccounted; once the retraction is known, all 100 kg are.
    deadline = RECEIVED + 90 * DAY

    def unaccounted(known_at):
        alerts = standing_alerts(store, now=NOW, policy=POLICY, as_of=deadline, known_at=known_at)
        return [a["quantity"] for a in alerts if a["kind"] == "unaccounted"]

    assert unaccounted(RETRACTION_RECORDED - MICROSECOND) == ["30"]
    assert unaccounted(RETRACTION_RECORDED) == ["100"]


def test_a_retraction_removes_the_report_from_dates_before_the_retraction_too():
    # As of the day after the consumption, with everything known now, the
    # consumption never happened: the consignee withdrew it.
    account = trace_of(*REPORTS).account(as_of=CONSUMED + DAY)
    assert account.lots["HF-1"].consumed == 0
    # What the ledger believed on that day is asked with known_at.
    account = trace_of(*REPORTS).account(as_of=CONSUMED + DAY, known_at=RETRACTION_RECORDED - MICROSECOND)
    assert account.lots["HF-1"].consumed == 70

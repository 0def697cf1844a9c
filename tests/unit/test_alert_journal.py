"""Raising and resolving are events with ids a subscriber can de-duplicate by."""

from projections.journal import Status, transitions


def standing(quantity: str, *, kind: str = "unaccounted", due_at: str = "2019-10-13T05:00:00.000000Z"):
    return {"alert_id": "A-1", "kind": kind, "quantity": quantity, "due_at": due_at}


def test_an_alert_is_raised_updated_and_resolved_once_each():
    raised = transitions({}, {"A-1": standing("30")}, {})
    assert [(t.transition, t.number) for t in raised] == [("raised", 1)]
    after_raise = {"A-1": Status("A-1", "open", "unaccounted", "30", 1)}
    assert transitions(after_raise, {"A-1": standing("30")}, {}) == []  # nothing new to say
    updated = transitions(after_raise, {"A-1": standing("12")}, {})
    assert [(t.transition, t.number) for t in updated] == [("updated", 2)]
    after_update = {"A-1": Status("A-1", "open", "unaccounted", "12", 2)}
    resolved = transitions(after_update, {}, {"A-1": standing("12")})
    assert [(t.transition, t.number) for t in resolved] == [("resolved", 3)]


def test_the_same_transition_computed_twice_has_the_same_id():
    # A publisher that re-sends after a crash sends the same id.
    assert transitions({}, {"A-1": standing("30")}, {}) == transitions({}, {"A-1": standing("30")}, {})


def test_a_rebuilt_store_does_not_reuse_an_old_id_for_a_different_change():
    # The live store said: raised 30 (#1), updated to 12 (#2).  A store rebuilt
    # from the log restarts at raised-with-12 (#1); when the quantity then
    # changes to 5, its #2 must not carry the id of the old "updated to 12".
    live_update = transitions({"A-1": Status("A-1", "open", "unaccounted", "30", 1)}, {"A-1": standing("12")}, {})
    rebuilt_update = transitions({"A-1": Status("A-1", "open", "unaccounted", "12", 1)}, {"A-1": standing("5")}, {})
    assert live_update[0].number == rebuilt_update[0].number == 2
    assert live_update[0].transition_id != rebuilt_update[0].transition_id

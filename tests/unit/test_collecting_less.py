"""Projecting, the cyclic garbage collector's young pass runs less often, and
only while projecting: the process's own setting comes back, error or not."""

from __future__ import annotations

import gc

import pytest

from consumers.projector import GC_YOUNG_THRESHOLD, collecting_less


def test_the_young_pass_runs_less_often_inside_and_as_before_after():
    before = gc.get_threshold()
    with collecting_less():
        inside = gc.get_threshold()
    assert inside == (max(GC_YOUNG_THRESHOLD, before[0]), *before[1:])
    assert inside[0] > 700
    assert gc.get_threshold() == before


def test_the_setting_comes_back_when_projecting_fails():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError):
        with collecting_less():
            raise RuntimeError("a batch failed")
    assert gc.get_threshold() == before

"""The engine state's compiled plumbing (model/state.py) and the engine's index helpers."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from numba.core import callconv

from replay.model import engine
from replay.model import state as st


@njit
def _callee(x):
    if x > 3:
        raise ValueError("x above 3")
    return x, x * 2.5


@njit
def _caller(n):
    s = 0.0
    for i in range(n):
        a, b = _callee(i % 4)
        s += a + b
    return s


@njit
def _caller_raises(x):
    return _callee(x)[1]


def test_call_slots_patch_is_installed_once_by_the_state_module():
    fn = callconv.CPUCallConv.call_function
    assert getattr(fn, "_slots_not_zeroed", False)
    st._call_slots_not_zeroed_at_entry()  # importing twice must not wrap the wrapper
    assert callconv.CPUCallConv.call_function is fn


def test_calls_return_their_values_without_the_entry_fill():
    # 10 calls: (0 + 0) + (1 + 2.5) + (2 + 5) + (3 + 7.5), twice, + (0 + 0) + (1 + 2.5)
    assert _caller(10) == 2 * 21.0 + 3.5


def test_a_callees_exception_still_reaches_python_through_a_caller():
    # the exception slot is no longer zeroed at the caller's entry: the callee must fill it
    with pytest.raises(ValueError, match="x above 3"):
        _caller_raises(7)
    assert _caller_raises(2) == 5.0


@pytest.mark.parametrize("n", [1, 2, 7, 512])
def test_ring_next_is_the_next_index_modulo_the_ring_size(n):
    nxt = njit(lambda i, m: engine.ring_next(i, m))
    assert [nxt(i, n) for i in range(n)] == [(i + 1) % n for i in range(n)]


def test_stays_top_follows_the_heap_order_time_then_entity():
    # heap of entities 2 (top), 0 and 5 at times 10, 20, 10: entity 2 stays the top at 10
    # (entity 5 ties but comes later), not at 11 (5 would be first) nor at 21
    ht = np.array([20, 0, 10, 0, 0, 10], np.int64)
    hh = np.array([2, 0, 5], np.int64)
    top = njit(lambda ht, hh, e, t: engine.stays_top(ht, hh, e, t))
    assert top(ht, hh, 2, 10) is True
    assert top(ht, hh, 2, 11) is False
    assert top(ht, hh, 2, 21) is False
    assert top(ht, hh[:1], 2, 10**9) is True  # no children: always the top

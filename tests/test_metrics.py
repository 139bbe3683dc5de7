"""Derived figures: break-even sparsity interpolation, throughput."""
from __future__ import annotations

import math

import pytest

from sparsekit import BreakEven, break_even
from sparsekit.metrics import gbps, gflops


def test_crossing_interpolated_in_log_speedup():
    # log-linear between (0.5, 0.5) and (0.9, 2.0): log 0.5 = -log 2, so the midpoint
    be = break_even([0.5, 0.9], [0.5, 2.0])
    assert be.relation == "="
    assert be.sparsity == pytest.approx(0.7)


def test_crossing_between_the_right_points():
    be = break_even([0.1, 0.5, 0.9, 0.99], [0.2, 0.5, 4.0, 8.0])
    # between 0.5 (speedup 0.5) and 0.9 (speedup 4): t = log 2 / log 8 = 1/3
    assert be.relation == "="
    assert be.sparsity == pytest.approx(0.5 + (0.9 - 0.5) / 3)


def test_exact_one_counts_as_winning():
    be = break_even([0.5, 0.7, 0.9], [0.5, 1.0, 2.0])
    assert be.relation == "=" and be.sparsity == pytest.approx(0.7)


def test_unsorted_input():
    assert break_even([0.9, 0.5], [2.0, 0.5]).sparsity == pytest.approx(0.7)


def test_always_faster():
    be = break_even([0.5, 0.7, 0.9], [1.0, 1.5, 3.0])
    assert be == BreakEven(0.5, "<=")
    assert str(be) == "<=0.5"


def test_never_faster():
    be = break_even([0.5, 0.7, 0.9], [0.1, 0.5, 0.9])
    assert be == BreakEven(0.9, ">")
    assert str(be) == ">0.9"


def test_nan_none_and_nonpositive_ignored():
    be = break_even([0.5, 0.6, 0.7, 0.8, 0.9], [0.5, math.nan, None, 0.0, 2.0])
    assert be.relation == "=" and be.sparsity == pytest.approx(0.7)
    # a NaN that would otherwise be the crossing partner
    assert break_even([0.5, 0.9, 0.95], [0.5, math.nan, 2.0]).sparsity == pytest.approx(0.725)
    assert break_even([0.5, 0.9], [math.inf, 2.0]) == BreakEven(0.9, "<=")


def test_multiple_crossings_last_upward_wins():
    be = break_even([0.1, 0.3, 0.5, 0.7, 0.9], [2.0, 0.5, 2.0, 0.5, 2.0])
    assert be.relation == "=" and be.sparsity == pytest.approx(0.8)
    # ends slower: no sparsity above which sparse stays faster
    assert break_even([0.1, 0.3, 0.5, 0.7], [2.0, 0.5, 2.0, 0.5]) == BreakEven(0.7, ">")


def test_no_data():
    for s, v in (([], []), ([0.5, 0.9], [math.nan, None])):
        be = break_even(s, v)
        assert be == BreakEven(None, "?")
        assert str(be) == "n/a"


def test_str_of_crossing():
    assert str(BreakEven(0.71234, "=")) == "0.712"


def test_gflops_and_gbps():
    assert gflops(10**9, 2.0) == pytest.approx(1.0)  # 2 FLOPs per MAC
    assert gbps(3 * 10**9, 1.5) == pytest.approx(2.0)
    assert math.isnan(gflops(10, 0.0)) and math.isnan(gbps(10, 0.0))

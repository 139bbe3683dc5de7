"""The ``cpu`` backend's shape-dependent strategies: each is chosen where documented,
and each is right on the edge cases of its own path (the conformance suite checks the
results, these make sure every path is reached)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.sparse as sp

import sparsekit as sk

pytest.importorskip("numba")
from sparsekit_cpu import backend as cb  # noqa: E402


@pytest.fixture(scope="module")
def cpu():
    rec = {r.name: r for r in sk.backends()}.get("cpu")
    if rec is None or not rec.available:
        pytest.skip(f"cpu backend unavailable: {rec.reason if rec else 'not registered'}")
    return sk.backend("cpu")


def _assert_ok(backend, problem):
    plan = backend.prepare(problem)
    plan()
    c = sk.check(problem, plan.result())
    assert c.ok, c.detail


def test_column_indices_compact_up_to_65536_columns():
    idx = np.array([0, 5, 65535])
    assert cb._columns(idx, 2**16).dtype == np.uint16
    assert cb._columns(idx, 2**16 + 1).dtype == np.uint32
    assert cb._columns(idx, 2**33).dtype == np.int64
    np.testing.assert_array_equal(cb._columns(idx, 2**16), idx)


@pytest.mark.parametrize("n_cols", [2**16, 2**16 + 7])
@pytest.mark.parametrize("n", [1, 3])
def test_spmm_either_side_of_the_uint16_limit(cpu, n_cols, n):
    # nonzeros in the last columns: an index that wrapped or was truncated would read the wrong x
    rng = np.random.default_rng(3)
    m = 37
    cols = np.concatenate([rng.integers(0, n_cols, 200), np.full(m, n_cols - 1), np.full(m, 2**16 - 1)])
    rows = np.concatenate([rng.integers(0, m, 200), np.arange(m), np.arange(m)])
    w = sp.csr_matrix((rng.standard_normal(len(cols)), (rows, cols)), shape=(m, n_cols))
    p = sk.make_problem("spmm", weights=w, n=n, dtype="float32", seed=0)
    _assert_ok(cpu, p)


def test_gather_strategy_by_width():
    assert cb.gather_strategy(1) == "dot"
    assert cb.gather_strategy(2) == "rows"
    assert cb.gather_strategy(cb.GATHER_BLAS_MIN_N - 1) == "rows"
    assert cb.gather_strategy(cb.GATHER_BLAS_MIN_N) == "copy+blas"
    assert cb.gather_strategy(512) == "copy+blas"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 2, cb.GATHER_BLAS_MIN_N - 1, cb.GATHER_BLAS_MIN_N, 33])
@pytest.mark.parametrize("rows", [1, 7, 13, 64])  # 7, 13: the four/eight-rows-per-pass kernels' tails
def test_gather_every_strategy_is_right(cpu, dtype, n, rows):
    p = sk.make_problem("gather_mm", m=300, k=45, n=n, rows=rows, dtype=dtype, seed=5)
    _assert_ok(cpu, p)


def test_threading_layer_is_chosen_deliberately(cpu):
    import numba

    # the module sets the priority unless the user named a layer (see backend's "Threads")
    if not {"NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY"} & set(os.environ):
        assert numba.config.THREADING_LAYER_PRIORITY[0] == "omp"
    p = sk.make_problem("gather_mm", m=100, k=20, n=1, rows=10, dtype="float32", seed=0)
    cpu.prepare(p)()
    v = cpu.versions()
    assert v["threads"] == cb.thread_count()
    assert v["threading_layer"] in ("omp", "workqueue", "tbb")


def test_spmv_panel_choice():
    # x fits one panel: no panels; long rows over a wide x: panels of 16 KiB of x
    assert cb.spmv_panel_width((100, 4096), 100 * 4096, 4) is None
    assert cb.spmv_panel_width((100, 16384), 100 * 1638, 4) == 4096
    assert cb.spmv_panel_width((100, 16384), 100 * 1638, 8) == 2048
    # rows too short per panel: the plain kernel
    assert cb.spmv_panel_width((100, 16384), 100 * 4 * (cb.SPMV_PANEL_MIN_ROW - 1), 4) is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("k", [10000, 70001])  # 70001: past the uint16 range, panels keep local indices small
def test_spmv_panels_are_right(cpu, dtype, k):
    rng = np.random.default_rng(7)
    m = 23
    w = sp.random(m, k, density=0.05, format="lil", random_state=rng)
    w[5] = 0  # an empty row
    w[:, k - 1] = 1.5  # the last column of the last, narrower panel
    w = sp.csr_matrix(w)
    itemsize = np.dtype(dtype).itemsize
    assert cb.spmv_panel_width(w.shape, w.nnz, itemsize) is not None
    _assert_ok(cpu, sk.make_problem("spmm", weights=w, n=1, dtype=dtype, seed=1))


def test_spmm_panel_choice():
    # x (k x n) within L2: no panels; 4096 x 128 float32 (2 MiB) with long rows: panels
    assert cb.spmm_panel_width((4096, 1024), 4096 * 400, 128, 4) is None
    assert cb.spmm_panel_width((4096, 4096), 4096 * 400, 128, 4) == cb.SPMM_PANEL_BYTES // (128 * 4)
    assert cb.spmm_panel_width((4096, 4096), 4096 * 400, 1, 4) is None  # SpMV has its own rule
    # rows too short per panel
    assert cb.spmm_panel_width((4096, 4096), 4096 * 100, 128, 4) is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_spmm_panels_are_right(cpu, dtype):
    rng = np.random.default_rng(8)
    m, k, n = 40, 3000, 128
    w = sp.random(m, k, density=0.2, format="lil", random_state=rng)
    w[3] = 0  # an empty row
    w[:, k - 1] = -2.0  # the last, narrower panel
    w = sp.csr_matrix(w)
    assert cb.spmm_panel_width(w.shape, w.nnz, n, np.dtype(dtype).itemsize) is not None
    _assert_ok(cpu, sk.make_problem("spmm", weights=w, n=n, dtype=dtype, seed=2))

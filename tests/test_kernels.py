"""The catalogue's oracles, op models and checks on hand-computed cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

import sparsekit
from sparsekit import dtypes
from sparsekit.kernels.base import Ops
from sparsekit.kernels.lif import simulate
from sparsekit.kernels.moe import route
from sparsekit.problem import Problem


def handmade(kernel, inputs, dtype="float64", **params) -> Problem:
    """A Problem with inputs written by hand (make_problem only draws random ones)."""
    host = dtypes.host_dtype(dtype)
    cast = {}
    for name, v in inputs.items():
        if sp.issparse(v):
            cast[name] = sp.csr_matrix(v, dtype=host) if name != "mask" else sp.csr_matrix(v, dtype=np.float64)
        elif name in ("rows",):
            cast[name] = np.asarray(v, dtype=np.int64)
        else:
            cast[name] = np.asarray(v, dtype=host)
    return Problem(kernel, {"dtype": dtype, "seed": -1, **params}, cast, spec=sparsekit.get_kernel(kernel))


def test_catalogue():
    assert sparsekit.kernels() == ["dense_mm", "spmm", "sddmm", "gather_mm", "kwta", "sparse_sparse", "lif", "moe"]
    for name in sparsekit.kernels():
        spec = sparsekit.get_kernel(name)
        assert spec.name == name and spec.summary and spec.__doc__


# -- dense_mm --------------------------------------------------------------------

def test_dense_mm_reference_ops_bytes():
    p = handmade("dense_mm", {"w": [[1, 2], [3, 4]], "x": [[5, 6], [7, 8]]}, m=2, k=2, n=2)
    np.testing.assert_array_equal(sparsekit.reference(p), [[19, 22], [43, 50]])
    assert sparsekit.ops(p) == Ops(dense=8, effective=8)
    assert sparsekit.compulsory_bytes(p) == (4 + 4 + 4) * 8


def test_effective_macs_count_only_nonzero_pairs():
    w = np.array([[1, 0], [3, 4]])
    x = np.array([[5, 0], [0, 8]])
    p = handmade("dense_mm", {"w": w, "x": x}, dtype="float32", m=2, k=2, n=2)
    # brute force: (i, l, j) with w[i, l] != 0 and x[l, j] != 0
    brute = sum(1 for i in range(2) for l in range(2) for j in range(2) if w[i, l] and x[l, j])
    assert brute == 3
    assert sparsekit.ops(p) == Ops(dense=8, effective=3)
    assert sparsekit.compulsory_bytes(p) == 12 * 4


# -- spmm ------------------------------------------------------------------------

def test_spmm_reference_ops_bytes():
    w = sp.csr_matrix(np.array([[0, 2, 0], [1, 0, 3]]))
    p = handmade("spmm", {"w": w, "x": [[1], [2], [3]]}, dtype="float32", m=2, k=3, n=1, format="csr")
    np.testing.assert_array_equal(sparsekit.reference(p), [[4], [10]])
    assert sparsekit.ops(p) == Ops(dense=6, effective=3)
    # CSR: nnz values + nnz int32 indices + (m+1) int32 offsets; then X and Y dense
    assert sparsekit.compulsory_bytes(p) == 3 * (4 + 4) + 3 * 4 + (3 + 2) * 4
    assert p.spec.depth(p) == 2


def test_spmm_nm_arrays():
    w = sp.csr_matrix(np.array([[1, 0, 2, 0], [0, 3, 0, 4]], dtype=float))
    vals, cols = sparsekit.get_kernel("spmm").nm_arrays(w)
    np.testing.assert_array_equal(vals, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(cols, [[0, 2], [1, 3]])
    with pytest.raises(ValueError, match="same number of nonzeros"):
        sparsekit.get_kernel("spmm").nm_arrays(sp.csr_matrix(np.array([[1.0, 1.0], [0.0, 1.0]])))


def test_spmm_bsr_keeps_explicit_zeros_meaningless():
    """BSR stores zeros inside kept blocks; the oracle's answer does not change."""
    p = sparsekit.make_problem("spmm", m=8, k=8, n=3, sparsity=0.7, pattern="uniform", format="bsr", blocksize=(4, 4))
    dense = p.inputs["w"].toarray().astype(np.float64) @ p.inputs["x"].astype(np.float64)
    np.testing.assert_allclose(sparsekit.reference(p), dense, rtol=1e-12)


# -- sddmm -----------------------------------------------------------------------

def test_sddmm_reference_in_csr_order():
    a = [[1, 2], [3, 4]]
    b = [[1, 0], [0, 1]]
    mask = sp.csr_matrix(np.array([[0, 1], [1, 0]]))
    p = handmade("sddmm", {"a": a, "b": b, "mask": mask}, dtype="float32", m=2, k=2, n=2)
    np.testing.assert_array_equal(sparsekit.reference(p), [2, 3])
    # per mask entry: l with a[i, l] != 0 and b[l, j] != 0 -> 1 each
    assert sparsekit.ops(p) == Ops(dense=8, effective=2)
    assert sparsekit.compulsory_bytes(p) == (4 + 4 + 2) * 4 + 2 * 4 + 3 * 4

    mask2 = sp.csr_matrix(np.array([[1, 1], [0, 1]]))
    a2 = [[1, 2], [3, 4]]
    b2 = [[5, 6], [7, 8]]  # A @ B = [[19, 22], [43, 50]]
    p2 = handmade("sddmm", {"a": a2, "b": b2, "mask": mask2}, m=2, k=2, n=2)
    np.testing.assert_array_equal(sparsekit.reference(p2), [19, 22, 50])


# -- gather_mm -------------------------------------------------------------------

def test_gather_mm_keeps_selector_order():
    w = [[1, 1], [2, 2], [3, 3]]
    p = handmade("gather_mm", {"w": w, "x": [[1], [10]], "rows": [2, 0]}, dtype="float32", m=3, k=2, n=1)
    np.testing.assert_array_equal(sparsekit.reference(p), [[33], [11]])
    r, k, n = 2, 2, 1
    assert sparsekit.compulsory_bytes(p) == (r * k + k * n + r * n) * 4 + r * 8
    assert sparsekit.ops(p).dense == 3 * 2 * 1  # the dense equivalent does every row
    assert sparsekit.ops(p).effective == r * k * n


def test_gather_mm_zero_rows():
    p = sparsekit.make_problem("gather_mm", m=5, k=3, n=2, rows=0)
    assert sparsekit.reference(p).shape == (0, 2)
    assert p.sparsity == 1.0
    assert sparsekit.check(p, np.zeros((0, 2), np.float32)).ok
    assert sparsekit.ops(p).effective == 0


def test_gather_mm_rows_from_sparsity():
    p = sparsekit.make_problem("gather_mm", m=10, k=3, n=2, sparsity=0.7)
    assert len(p.inputs["rows"]) == 3 and p.params["rows"] == 3
    assert p.sparsity == pytest.approx(0.7)
    assert len(set(p.inputs["rows"].tolist())) == 3


# -- kwta ------------------------------------------------------------------------

def test_kwta_reference():
    x = [[3, -1], [1, 5], [2, 0]]
    p = handmade("kwta", {"x": x}, m=3, n=2, k=2)
    np.testing.assert_array_equal(sparsekit.reference(p), [[3, 0], [0, 5], [2, 0]])
    assert sparsekit.ops(p) == Ops(6, 6)
    assert sparsekit.compulsory_bytes(p) == 2 * 6 * 8


def test_kwta_ties_either_way():
    p = handmade("kwta", {"x": [[1], [1], [1]]}, dtype="float32", m=3, n=1, k=1)
    np.testing.assert_array_equal(sparsekit.reference(p), [[1], [0], [0]])  # lower index wins
    assert sparsekit.check(p, np.array([[0], [1], [0]], np.float32)).ok  # another tie-break: fine
    assert not sparsekit.check(p, np.array([[1], [1], [0]], np.float32)).ok  # two winners: wrong


def test_kwta_k_extremes():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    none = handmade("kwta", {"x": x}, m=2, n=2, k=0)
    every = handmade("kwta", {"x": x}, m=2, n=2, k=2)
    np.testing.assert_array_equal(sparsekit.reference(none), np.zeros((2, 2)))
    np.testing.assert_array_equal(sparsekit.reference(every), x)


def test_kwta_check_rejects_foreign_values_and_wrong_winners():
    p = handmade("kwta", {"x": [[3, -1], [1, 5], [2, 0]]}, dtype="float32", m=3, n=2, k=2)
    good = np.array([[3, 0], [0, 5], [2, 0]], np.float32)
    assert sparsekit.check(p, good).ok
    rounded = good.copy()
    rounded[0, 0] = np.nextafter(np.float32(3), np.float32(4))  # selection must copy exactly
    c = sparsekit.check(p, rounded)
    assert not c.ok and "neither 0 nor the input" in c.detail
    wrong = np.array([[3, 0], [1, 5], [0, 0]], np.float32)  # kept 1 instead of 2 in column 0
    c = sparsekit.check(p, wrong)
    assert not c.ok and "column 0" in c.detail


# -- sparse_sparse ---------------------------------------------------------------

def test_sparse_sparse_activations_are_kwta_sparse():
    p = sparsekit.make_problem("sparse_sparse", m=6, k=10, n=4, sparsity=0.5, act_k=3, seed=2)
    x = p.inputs["x"]
    assert np.all(np.count_nonzero(x, axis=0) == 3)
    np.testing.assert_array_equal(p.inputs["x_csc"].toarray(), x)
    assert p.params["act_sparsity"] == pytest.approx(0.7)
    w = p.inputs["w"]
    np.testing.assert_allclose(sparsekit.reference(p), w.toarray().astype(float) @ x.astype(float))
    # effective MACs: both operands nonzero, brute force
    wd, xd = w.toarray() != 0, x != 0
    assert sparsekit.ops(p).effective == int((wd.astype(int) @ xd.astype(int)).sum())
    assert sparsekit.ops(p).dense == 6 * 10 * 4


# -- lif -------------------------------------------------------------------------

def lif_problem(w, spikes, dtype="float64", **params):
    base = dict(du=0.5, dv=0.5, vth=1.0, bias=0.0)
    base.update(params)
    w = sp.csr_matrix(np.asarray(w, dtype=float))
    spikes = np.asarray(spikes, dtype=float)
    return handmade("lif", {"w": w, "spikes": spikes}, dtype=dtype, n_in=w.shape[1], n_out=w.shape[0], steps=spikes.shape[0], **base)


def test_lif_one_step_delay_and_strict_threshold():
    # t0: a=0 (delay), v=0.  t1: a=2, u=2, v=2 > 1 -> spike, reset.
    # t2: u=1, v=1 (not > 1).  t3: u=0.5, v=0.5+0.5=1 (not > 1). The spike at t3 is never delivered.
    p = lif_problem([[2.0]], [[1], [0], [0], [1]])
    np.testing.assert_array_equal(sparsekit.reference(p), [[0], [1], [0], [0]])
    raster, v_pre, _ = simulate(p.inputs["spikes"], p.inputs["w"], 0.5, 0.5, 1.0, 0.0)
    np.testing.assert_allclose(v_pre.ravel(), [0, 2, 1, 1])


def test_lif_bias_and_leak():
    # no input; v[t] = 0.5 v[t-1] + 0.6: 0.6, 0.9, 1.05 (fire, reset), 0.6, 0.9, 1.05 (fire)
    p = lif_problem([[0.0]], np.zeros((6, 1)), du=0.0, dv=0.5, bias=0.6)
    np.testing.assert_array_equal(sparsekit.reference(p).ravel(), [0, 0, 1, 0, 0, 1])


def test_lif_current_decay():
    # du=0.5, dv=0: u carries half of itself; one input spike at t0 with weight 0.6.
    # t1: u=0.6, v=0.6; t2: u=0.3, v=0.9; t3: u=0.15, v=1.05 > 1 -> spike
    p = lif_problem([[0.6]], [[1], [0], [0], [0]], du=0.5, dv=0.0)
    np.testing.assert_array_equal(sparsekit.reference(p).ravel(), [0, 0, 0, 1])


def test_lif_ops_and_bytes():
    w = [[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]  # column nnz: 1, 0, 2
    spikes = [[1, 1, 0], [0, 0, 1], [1, 1, 1]]  # the last step is never delivered
    p = lif_problem(w, spikes)
    # delivered spikes per input over steps 0..1: [1, 1, 1]; times column nnz -> 1 + 0 + 2
    assert sparsekit.ops(p) == Ops(dense=3 * 2 * 3, effective=3)
    item = 8
    assert sparsekit.compulsory_bytes(p) == (3 * (item + 4) + 3 * 4) + 6 * 4 + 3 * 2 // 8


def test_lif_check_flags_a_wrong_spike():
    p = sparsekit.make_problem("lif", n_in=32, n_out=16, steps=12, sparsity=0.5, rate=0.3, seed=4)
    ref = sparsekit.reference(p)
    assert ref.any(), "the generator promises neurons that fire"
    assert sparsekit.check(p, ref).ok
    bad = ref.copy()
    bad[0, 0] = 1 - bad[0, 0]  # at t0 no input has arrived: v = bias = 0, far from vth
    c = sparsekit.check(p, bad)
    assert not c.ok and "neuron 0 at step 0" in c.detail


# -- moe -------------------------------------------------------------------------

def test_route_top_k_and_renormalised_softmax():
    order, weights = route(np.array([[1.0], [3.0], [2.0]]), 2)
    np.testing.assert_array_equal(order.ravel(), [1, 2])
    e = math.e
    np.testing.assert_allclose(weights.ravel(), [e / (e + 1), 1 / (e + 1)])
    order, _ = route(np.array([[2.0], [2.0], [1.0]]), 1)  # tie: lower index
    assert order.ravel().tolist() == [0]


def test_moe_reference_routes_each_token():
    experts = [[[2.0]], [[3.0]]]  # E=2, m=1, k=1
    gate = [[1.0], [-1.0]]
    x = [[1.0, -1.0]]  # token 0 -> logits (1, -1) -> expert 0; token 1 -> expert 1
    p = handmade("moe", {"x": x, "gate": gate, "experts": experts}, m=1, k=1, n=2, experts=2, top_k=1)
    np.testing.assert_allclose(sparsekit.reference(p), [[2.0, -3.0]])
    # top_k=2: both experts, weighted by softmax(1, -1) (token 0)
    p2 = handmade("moe", {"x": [[1.0]], "gate": gate, "experts": experts}, m=1, k=1, n=1, experts=2, top_k=2)
    w0 = 1 / (1 + math.exp(-2))
    np.testing.assert_allclose(sparsekit.reference(p2), [[w0 * 2 + (1 - w0) * 3]])


def test_moe_ops_and_bytes():
    p = sparsekit.make_problem("moe", m=3, k=4, n=5, experts=6, top_k=2, seed=1)
    e, m, k, n, top_k = 6, 3, 4, 5, 2
    assert sparsekit.ops(p) == Ops(e * m * k * n + e * k * n, top_k * m * k * n + e * k * n)
    order, _ = route(p.inputs["gate"].astype(float) @ p.inputs["x"].astype(float), top_k)
    used = len(np.unique(order))
    assert sparsekit.compulsory_bytes(p) == (k * n + e * k + used * m * k + m * n) * 4
    assert p.sparsity == pytest.approx(1 - 2 / 6)
    assert p.spec.dense_equivalent(p.params) == {"m": e * m, "k": k, "n": n}


def test_moe_generation_keeps_routing_unambiguous():
    p = sparsekit.make_problem("moe", m=4, k=16, n=64, experts=8, top_k=2, dtype="float32", seed=3)
    logits = p.inputs["gate"].astype(float) @ p.inputs["x"].astype(float)
    ordered = -np.sort(-logits, axis=0)
    assert np.all(ordered[1] - ordered[2] > 1e-3 * np.std(logits))


# -- the check ---------------------------------------------------------------------

PERTURBABLE = {
    "dense_mm": dict(m=12, k=10, n=4),
    "spmm": dict(m=12, k=10, n=4, sparsity=0.5),
    "sddmm": dict(m=12, k=10, n=4, sparsity=0.5),
    "gather_mm": dict(m=12, k=10, n=4, rows=5),
    "sparse_sparse": dict(m=12, k=10, n=4, sparsity=0.5, act_k=5),
    "moe": dict(m=12, k=10, n=4),
}


@pytest.mark.parametrize("kernel", list(PERTURBABLE))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_check_accepts_rounded_oracle_and_rejects_perturbed(kernel, dtype):
    p = sparsekit.make_problem(kernel, dtype=dtype, seed=5, **PERTURBABLE[kernel])
    ref = sparsekit.reference(p)
    y = ref.astype(dtypes.host_dtype(dtype))
    assert sparsekit.check(p, y).ok
    bad = y.copy()
    idx = np.unravel_index(np.argmax(np.abs(ref)), ref.shape)
    bad[idx] += np.asarray(1e-3 * np.abs(ref).max(), dtype=bad.dtype)  # far above the rounding bound
    c = sparsekit.check(p, bad)
    assert not c.ok, f"check accepted a result off by 1e-3 relative at {idx}"
    assert str(tuple(int(i) for i in idx)) in c.detail
    assert c.error == pytest.approx(1e-3, rel=1e-2)


def test_check_rejects_a_missing_term():
    p = sparsekit.make_problem("spmm", m=16, k=16, n=4, sparsity=0.5, dtype="float32", seed=1)
    w = p.inputs["w"].astype(np.float64).tolil()
    i, j = p.inputs["w"].nonzero()[0][0], p.inputs["w"].nonzero()[1][0]
    w[i, j] = 0.0
    y = (w.tocsr() @ p.inputs["x"].astype(np.float64)).astype(np.float32)
    assert not sparsekit.check(p, y).ok


def test_check_nan_and_shape():
    p = sparsekit.make_problem("dense_mm", m=3, k=3, n=2)
    y = sparsekit.reference(p).astype(np.float32)
    y[1, 1] = np.nan
    c = sparsekit.check(p, y)
    assert not c.ok and "NaN" in c.detail and c.error == math.inf
    with pytest.raises(AssertionError, match="shape"):
        sparsekit.check(p, np.zeros((2, 3), np.float32))


def test_tolerance_scales_with_dtype():
    spec = sparsekit.get_kernel("dense_mm")
    bounds = {}
    for dt in ("float16", "bfloat16", "float32", "float64"):
        p = sparsekit.make_problem("dense_mm", m=8, k=32, n=4, dtype=dt, seed=0)
        bounds[dt] = float(np.max(spec.bound(p)))
    assert bounds["bfloat16"] > bounds["float16"] > bounds["float32"] > bounds["float64"] > 0
    # roughly the ratio of unit roundoffs (inputs round differently, so not exactly)
    assert bounds["float32"] / bounds["float64"] == pytest.approx(2.0**29, rel=0.05)

    # the same relative perturbation passes in a coarse type and fails in a fine one
    def perturbed_ok(dt, rel):
        p = sparsekit.make_problem("dense_mm", m=8, k=32, n=4, dtype=dt, seed=0)
        ref = sparsekit.reference(p)
        return sparsekit.check(p, ref * (1 + rel)).ok

    assert perturbed_ok("float16", 1e-4) and not perturbed_ok("float32", 1e-4)
    assert perturbed_ok("float32", 1e-9) and not perturbed_ok("float64", 1e-9)


def test_rel_error():
    from sparsekit.kernels import rel_error

    assert rel_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert rel_error([1.0, 2.5], [1.0, 2.0]) == pytest.approx(0.25)
    assert rel_error([0.0], [0.0]) == 0.0
    assert rel_error([1.0], [0.0]) == math.inf
    assert rel_error([np.inf], [1.0]) == math.inf
    assert rel_error(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0


# -- dtypes ----------------------------------------------------------------------------

def test_bfloat16_rounding_to_nearest_even():
    x = np.array([1 + 2.0**-7, 1 + 2.0**-8, 1 + 3 * 2.0**-8, -(1 + 3 * 2.0**-8), np.inf, np.nan])
    got = dtypes.to_host(x, "bfloat16")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got[:4], [1 + 2.0**-7, 1.0, 1 + 2.0**-6, -(1 + 2.0**-6)])
    assert got[4] == np.inf and np.isnan(got[5])


def test_host_dtypes():
    assert dtypes.host_dtype("bfloat16") == np.float32
    assert dtypes.host_dtype("float16") == np.float32  # holding exact float16 values
    half = dtypes.to_host(np.array([1 + 2.0**-12, 1 + 2.0**-10, 70000.0]), "float16")
    np.testing.assert_array_equal(half, [1.0, 1 + 2.0**-10, np.inf])
    assert dtypes.check_dtype(np.float32) == "float32"
    assert dtypes.check_dtype(np.dtype("float64")) == "float64"
    assert dtypes.unit_roundoff("float32") == 2.0**-24


@pytest.mark.parametrize("kernel", ["dense_mm", "sddmm", "gather_mm", "kwta", "moe"])
def test_dense_kernels_build_in_every_dtype(kernel):
    kw = {**PERTURBABLE, "kwta": dict(m=6, n=3, k=2)}[kernel]
    for dt in dtypes.DTYPES:
        if (kernel, dt) == ("moe", "bfloat16"):
            continue  # see test_moe_low_precision_generation
        p = sparsekit.make_problem(kernel, dtype=dt, **kw)
        for name, v in p.inputs.items():
            if name not in ("rows", "mask"):
                assert v.dtype == dtypes.host_dtype(dt), (name, v.dtype)


@pytest.mark.parametrize("kernel, kw", [
    ("spmm", dict(m=4, k=4, n=2, sparsity=0.5)),
    ("sparse_sparse", dict(m=4, k=4, n=2, sparsity=0.5)),
    ("lif", dict(n_in=4, n_out=4, steps=2, sparsity=0.5)),
])
def test_float16_sparse_problems_hold_half_representable_float32(kernel, kw):
    # scipy.sparse has no float16: half precision lives in float32 holding exact half values
    p = sparsekit.make_problem(kernel, dtype="float16", **kw)
    w = p.inputs["w"]
    assert w.dtype == np.float32
    assert np.array_equal(w.data, w.data.astype(np.float16).astype(np.float32))


@pytest.mark.parametrize("kw", [
    dict(k=16, dtype="bfloat16", seed=0),
    dict(k=1, dtype="float16", seed=101),  # k=1: every token ranks experts by the same gate column
], ids=["bfloat16-k16", "float16-k1"])
def test_moe_low_precision_generation(kw):
    p = sparsekit.make_problem("moe", m=2, n=8, experts=8, top_k=2, **kw)
    y = sparsekit.reference(p)
    assert sparsekit.check(p, y.astype(np.float32)).ok


def test_spmm_compulsory_bytes_follow_the_format():
    """BSR moves its blocks' values and one index per block; N:M a value and an index each (no row offsets)."""
    p = sparsekit.make_problem("spmm", m=64, k=64, n=8, sparsity=0.75, pattern="block", blocksize=(4, 4), format="bsr")
    blocks = 64 * 64 // 16 // 4  # a quarter of the 4x4 blocks are kept
    dense_part = (64 * 8 + 64 * 8) * 4
    assert sparsekit.compulsory_bytes(p) == blocks * (16 * 4 + 4) + (64 // 4 + 1) * 4 + dense_part
    q = sparsekit.make_problem("spmm", m=64, k=64, n=8, nm="2:4", format="nm")
    assert sparsekit.compulsory_bytes(q) == 64 * 32 * (4 + 4) + dense_part
    spec = sparsekit.get_kernel("spmm")
    f_bsr, b_bsr = spec.nominal_model(dict(m=64, k=64, n=8, sparsity=0.75, format="bsr", blocksize=(4, 4)))
    assert b_bsr == pytest.approx(1024 * 4 + 64 * 4 + 17 * 4 + dense_part)
    assert spec.nominal_model(dict(m=64, k=64, n=8, sparsity=0.75, format="csr"))[1] > b_bsr

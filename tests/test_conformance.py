"""The conformance suite: written once, run against every backend under test.

Each backend is checked against the float64 oracles for every kernel x dtype x
sparsity pattern (and spmm storage format) on a fixed grid, then on drawn edge
cases (Hypothesis, ``sparsekit.testing.strategies``). ``Unsupported`` from
``prepare`` skips with the backend's reason; known gaps live in tests/xfail/.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import sparsekit
from sparsekit import dtypes as sk_dtypes
from sparsekit.testing import changed_inputs, inputs_snapshot, result_dtype_matters
from sparsekit.testing import strategies as sks


@dataclass(frozen=True)
class Case:
    """One grid point: a kernel with fixed make_problem parameters (dtype and seed apart)."""

    kernel: str
    label: str
    params: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.kernel}-{self.label}"

    def make(self, dtype: str, seed: int = 0) -> sparsekit.Problem:
        return sparsekit.make_problem(self.kernel, dtype=dtype, seed=seed, **self.params)


MKN = dict(m=48, k=40, n=12)
ODD = dict(m=37, k=29, n=7)


def _grid() -> list[Case]:
    c: list[Case] = []
    add = lambda kernel, label, **params: c.append(Case(kernel, label, params))  # noqa: E731

    add("dense_mm", "dense", **MKN)
    add("dense_mm", "uniform-0.9", **MKN, sparsity=0.9)
    add("dense_mm", "odd-shape", **ODD)
    add("dense_mm", "1x1x1", m=1, k=1, n=1)

    # spmm, format csr: every generated pattern, DLMC masks, the sparsity extremes
    for pattern in ("uniform", "block", "powerlaw", "selector", "kwta"):
        add("spmm", f"csr-{pattern}-0.9", **MKN, sparsity=0.9, pattern=pattern, format="csr")
    add("spmm", "csr-nm-2:4", **MKN, pattern="nm", nm="2:4", format="csr")
    add("spmm", "csr-uniform-0.0", **MKN, sparsity=0.0, format="csr")
    add("spmm", "csr-uniform-1.0", **MKN, sparsity=1.0, format="csr")
    add("spmm", "csr-uniform-0.5-odd", **ODD, sparsity=0.5, format="csr")
    add("spmm", "csr-n1", m=48, k=40, n=1, sparsity=0.8, format="csr")
    add("spmm", "csr-dlmc-transformer-0.9", n=8, matrix="transformer_attn_q", sparsity=0.9, format="csr")
    add("spmm", "csr-dlmc-rn50-0.95", n=4, matrix="rn50_conv3x3", sparsity=0.95, format="csr")
    # format bsr: aligned blocks, and scattered nonzeros (explicit zeros inside blocks)
    add("spmm", "bsr-block4x4-0.75", **MKN, sparsity=0.75, pattern="block", blocksize=(4, 4), format="bsr")
    add("spmm", "bsr-block2x8-0.5", **MKN, sparsity=0.5, pattern="block", blocksize=(2, 8), format="bsr")
    add("spmm", "bsr-uniform-0.9", **MKN, sparsity=0.9, pattern="uniform", blocksize=(4, 4), format="bsr")
    add("spmm", "bsr-block1x1-0.0", **MKN, sparsity=0.0, pattern="block", blocksize=(1, 1), format="bsr")
    add("spmm", "bsr-dlmc-transformer-0.9", n=8, matrix="transformer_attn_q", sparsity=0.9, blocksize=(4, 4), format="bsr")
    # format nm
    for ratio in ("2:4", "1:4", "1:8", "4:8"):
        add("spmm", f"nm-{ratio}", **MKN, nm=ratio, format="nm")
    add("spmm", "nm-2:4-short-last-group", m=16, k=30, n=5, nm="2:4", format="nm")

    for pattern in ("uniform", "block", "powerlaw", "selector", "kwta", "nm"):
        add("sddmm", f"{pattern}-0.75", **MKN, sparsity=0.75, pattern=pattern)
    add("sddmm", "uniform-0.0", **MKN, sparsity=0.0)
    add("sddmm", "uniform-1.0", **MKN, sparsity=1.0)

    for s in (0.0, 0.5, 0.9, 1.0):
        add("gather_mm", f"sparsity-{s}", **MKN, sparsity=s)
    add("gather_mm", "rows-reversed", **MKN, rows=np.arange(47, -1, -3))

    for s in (0.0, 0.5, 0.9, 1.0):
        add("kwta", f"sparsity-{s}", m=48, n=12, sparsity=s)
    add("kwta", "k1-odd", m=37, n=7, k=1)

    for pattern in ("uniform", "block", "powerlaw"):
        add("sparse_sparse", f"{pattern}-0.9-act0.9", **MKN, sparsity=0.9, pattern=pattern, act_sparsity=0.9)
    add("sparse_sparse", "uniform-0.5-act0.5", **MKN, sparsity=0.5, act_sparsity=0.5)
    add("sparse_sparse", "uniform-0.5-act_k0", **MKN, sparsity=0.5, act_k=0)
    add("sparse_sparse", "dlmc-transformer-0.9", n=8, matrix="transformer_attn_q", sparsity=0.9)

    lif = dict(n_in=48, n_out=40, steps=32)
    for pattern in ("uniform", "block", "powerlaw"):
        add("lif", f"{pattern}-0.9", **lif, sparsity=0.9, pattern=pattern)
    add("lif", "uniform-0.5-rate0.5", **lif, sparsity=0.5, rate=0.5)
    add("lif", "bias-no-decay", **lif, sparsity=0.8, bias=0.05, du=1.0, dv=0.0)
    add("lif", "dense-0.0", **lif, sparsity=0.0)

    moe = dict(m=24, k=16, n=20)
    add("moe", "e8-top2", **moe, experts=8, top_k=2)
    add("moe", "e4-top4", **moe, experts=4, top_k=4)
    add("moe", "e1-top1", **moe, experts=1, top_k=1)
    add("moe", "e8-top1-n1", m=24, k=16, n=1, experts=8, top_k=1)
    return c


GRID = _grid()
#: one case per kernel and spmm format: where the interface promises are checked
REPRESENTATIVE = [
    case for case in GRID
    if case.id in ("dense_mm-dense", "spmm-csr-uniform-0.9", "spmm-bsr-block4x4-0.75", "spmm-nm-2:4",
                   "sddmm-uniform-0.75", "gather_mm-sparsity-0.5", "kwta-sparsity-0.5",
                   "sparse_sparse-uniform-0.9-act0.9", "lif-uniform-0.9", "moe-e8-top2")
]


def _grid_params(cases):
    """(case, dtype) pairs: every dtype ``make_problem`` can build the kernel in."""
    return [
        pytest.param(case, dt, id=f"{case.id}-{dt}")
        for case in cases
        for dt in sks.possible_dtypes(case.kernel)
    ]


def test_grid_covers_catalogue():
    """The grid must grow with the catalogue: every kernel, every spmm format."""
    assert {c.kernel for c in GRID} == set(sparsekit.kernels())
    formats = {c.params.get("format") for c in GRID if c.kernel == "spmm"}
    assert formats == set(sparsekit.get_kernel("spmm").formats)
    assert {c.kernel for c in REPRESENTATIVE} == set(sparsekit.kernels())
    assert len(REPRESENTATIVE) == 10  # every id above names a grid case


def _prepare(backend, p):
    try:
        return backend.prepare(p)
    except sparsekit.Unsupported as e:
        pytest.skip(f"{backend.name}: Unsupported: {e.reason}")


def _assert_ok(p, y, backend=None):
    ref = sparsekit.reference(p)
    assert isinstance(y, np.ndarray), f"result is {type(y).__name__}, not a host numpy.ndarray"
    assert y.shape == ref.shape, f"result shape {y.shape}, oracle shape {ref.shape}"
    c = sparsekit.check(p, y, backend=backend)  # lava-fixed declares its fixed-point allowance
    assert c.ok, f"{p}: {c.detail} (error {c.error:.3g} {p.spec.error_unit})"


@pytest.mark.parametrize("case, dtype", _grid_params(GRID))
def test_grid(backend, case, dtype):
    """prepare -> plan() -> plan.result() passes sparsekit.check against the oracle."""
    p = case.make(dtype)
    plan = _prepare(backend, p)
    with plan:
        plan()
        _assert_ok(p, plan.result(), backend)


@pytest.mark.parametrize("case, dtype", _grid_params(REPRESENTATIVE))
def test_result_before_call_raises(backend, case, dtype):
    plan = _prepare(backend, case.make(dtype))
    with plan, pytest.raises(RuntimeError):
        plan.result()


@pytest.mark.parametrize("case, dtype", _grid_params(REPRESENTATIVE))
def test_result_is_host_array_in_problem_dtype(backend, case, dtype):
    p = case.make(dtype)
    with _prepare(backend, p) as plan:
        plan()
        y = plan.result()
    assert type(y) is np.ndarray, f"result is {type(y).__module__}.{type(y).__name__}, not numpy.ndarray"
    assert y.shape == sparsekit.reference(p).shape
    if result_dtype_matters(p):
        assert y.dtype == sk_dtypes.host_dtype(dtype), f"result dtype {y.dtype} for a {dtype} problem"
    else:  # a spike raster: 0/1 in any real or boolean type
        assert y.dtype.kind in "biuf"
        assert np.isin(y, (0, 1)).all()


@pytest.mark.parametrize("case, dtype", _grid_params(REPRESENTATIVE))
def test_second_call_same_result(backend, case, dtype):
    """A plan runs on resident data: calling it again must not accumulate or drift."""
    p = case.make(dtype)
    with _prepare(backend, p) as plan:
        plan()
        first = np.array(plan.result(), copy=True)
        plan()
        second = plan.result()
    _assert_ok(p, second, backend)
    np.testing.assert_array_equal(second, first)


@pytest.mark.parametrize("case, dtype", _grid_params(REPRESENTATIVE))
def test_inputs_left_untouched(backend, case, dtype):
    p = case.make(dtype)
    before = inputs_snapshot(p)
    with _prepare(backend, p) as plan:
        plan()
        plan.result()
    assert changed_inputs(before, p) == []


def test_info_matches_registry(backend):
    """The cheap metadata (entry-point info()) and the loaded backend describe the same thing."""
    info = backend.info()
    rec = {r.name: r for r in sparsekit.backends()}[backend.name]
    assert info.name == rec.name
    assert {k: tuple(v) for k, v in info.kernels.items()} == {k: tuple(v) for k, v in rec.kernels.items()}
    assert tuple(info.dtypes) == tuple(rec.dtypes)
    for kernel, formats in info.kernels.items():
        spec = sparsekit.get_kernel(kernel)  # a claimed kernel must exist
        assert set(formats) <= set(spec.formats), f"{kernel}: unknown formats {set(formats) - set(spec.formats)}"
    assert set(info.dtypes) <= set(sk_dtypes.DTYPES)


def _claims(kernel):
    return [pytest.param(kernel, fmt, id=f"{kernel}-{fmt}") for fmt in sparsekit.get_kernel(kernel).formats]


@pytest.mark.parametrize("kernel, fmt", [c for k in sparsekit.kernels() for c in _claims(k)])
def test_claimed_support_is_honoured(backend, kernel, fmt):
    """What info() claims, prepare() must accept: nothing turns into n/a behind the metadata's back."""
    info = backend.info()
    if kernel not in info.kernels or (fmt != "dense" and fmt not in info.kernels[kernel]):
        with pytest.raises(sparsekit.Unsupported):
            backend.prepare(_small_problem(kernel, fmt, "float64"))
        return
    for dtype in info.dtypes:
        if dtype not in sks.possible_dtypes(kernel):
            continue
        p = _small_problem(kernel, fmt, dtype)
        try:
            plan = backend.prepare(p)
        except sparsekit.Unsupported as e:
            pytest.fail(f"info() claims {kernel}/{fmt}/{dtype} but prepare() says Unsupported: {e.reason}")
        with plan:
            plan()
            _assert_ok(p, plan.result(), backend)
    for dtype in sorted(set(sks.possible_dtypes(kernel)) - set(info.dtypes)):
        with pytest.raises(sparsekit.Unsupported):
            backend.prepare(_small_problem(kernel, fmt, dtype))


def _small_problem(kernel, fmt, dtype):
    base = {
        "dense_mm": dict(m=8, k=8, n=4),
        "spmm": dict(m=8, k=8, n=4, sparsity=0.5, format=fmt if fmt != "dense" else "csr"),
        "sddmm": dict(m=8, k=8, n=4, sparsity=0.5),
        "gather_mm": dict(m=8, k=8, n=4, rows=3),
        "kwta": dict(m=8, n=4, k=2),
        "sparse_sparse": dict(m=8, k=8, n=4, sparsity=0.5),
        "lif": dict(n_in=8, n_out=8, steps=4, sparsity=0.5),
        "moe": dict(m=8, k=8, n=4),
    }[kernel]
    if kernel == "spmm" and fmt == "nm":
        base = dict(m=8, k=8, n=4, nm="2:4", format="nm")
    return sparsekit.make_problem(kernel, dtype=dtype, seed=1, **base)


# -- drawn edge cases ----------------------------------------------------------------

def _skip_unless_kernel(backend, kernel):
    if kernel not in backend.info().kernels:
        pytest.skip(f"{backend.name}: Unsupported: backend has no {kernel} kernel")


def _drawable_dtypes(backend, kernel):
    dts = [d for d in backend.info().dtypes if d in sks.possible_dtypes(kernel)]
    if not dts:
        pytest.skip(f"{backend.name}: Unsupported: none of its dtypes {backend.info().dtypes} is drawable for {kernel}")
    return dts


def _run_drawn(backend, p):
    """Run a drawn problem; data-dependent Unsupported (a format) is noted, not failed."""
    note(repr(p))
    before = inputs_snapshot(p)
    try:
        plan = backend.prepare(p)
    except sparsekit.Unsupported as e:
        note(f"Unsupported: {e.reason}")
        return None
    with plan:
        plan()
        y = plan.result()
    _assert_ok(p, y, backend)
    if result_dtype_matters(p):
        assert y.dtype == sk_dtypes.host_dtype(p.dtype), f"result dtype {y.dtype} for a {p.dtype} problem"
    assert changed_inputs(before, p) == [], "the backend modified its inputs"
    return y


@pytest.mark.parametrize("kernel", sparsekit.kernels())
@given(data=st.data())
def test_drawn_problems(backend, kernel, data):
    """Hypothesis-drawn problems: 1x1, n=1, 0% and 100% sparsity, k=0 and k=m winners,
    zero selected rows, top_k = experts, user weights with duplicate/unsorted indices."""
    _skip_unless_kernel(backend, kernel)
    dtype = data.draw(st.sampled_from(_drawable_dtypes(backend, kernel)), label="dtype")
    p = data.draw(sks.problems(kernel, dtype=dtype), label="problem")
    _run_drawn(backend, p)


@given(data=st.data())
def test_kwta_with_ties(backend, data):
    """Activations full of ties and zeros: any tie-break is right, values must be copied exactly."""
    _skip_unless_kernel(backend, "kwta")
    dtype = data.draw(st.sampled_from(_drawable_dtypes(backend, "kwta")), label="dtype")
    x, k = data.draw(sks.kwta_activations(), label="activations")
    _run_drawn(backend, sks.kwta_problem(x, k, dtype))


# -- the suite can fail: deliberately broken backends ------------------------------------

class _Spmm(sparsekit.Backend):
    """A correct CSR spmm, and the defects a conformance suite must catch."""

    name = "broken"
    supports = {"spmm": ("csr",)}

    def __init__(self, defect=None):
        self.defect = defect

    def _prepare_spmm(self, p):
        w, x = p.inputs["w"], p.inputs["x"]
        out = np.zeros((w.shape[0], x.shape[1]), dtype=x.dtype)
        if self.defect == "drops_a_term":
            w = w.copy()
            w.data[-1] = 0
        if self.defect == "mutates_input":
            x = p.inputs["x"]

        def run():
            if self.defect == "accumulates":
                out[...] += w @ x
                return out
            if self.defect == "mutates_input":
                y = np.asarray(w @ x)
                x[0, 0] = 42.0  # scribbles on the caller's problem
                return y
            y = np.asarray(w @ x)
            if self.defect == "float64_result":
                return y.astype(np.float64)
            return y

        return sparsekit.Plan(run)


@pytest.mark.parametrize("defect", ["drops_a_term", "float64_result", "mutates_input"])
def test_suite_catches_broken_backend(defect):
    p = sparsekit.make_problem("spmm", m=16, k=16, n=4, sparsity=0.5, dtype="float32", seed=0)
    from sparsekit.testing import assert_conforms

    assert_conforms(_Spmm(), p)  # the correct one passes
    with pytest.raises(AssertionError):
        assert_conforms(_Spmm(defect), p)


def test_suite_catches_accumulating_plan():
    p = sparsekit.make_problem("spmm", m=16, k=16, n=4, sparsity=0.5, dtype="float32", seed=0)
    with _Spmm("accumulates").prepare(p) as plan:
        plan()
        first = plan.result().copy()
        _assert_ok(p, first)  # one call looks fine ...
        plan()
        with pytest.raises(AssertionError):  # ... the second is what test_second_call_same_result sees
            _assert_ok(p, plan.result())

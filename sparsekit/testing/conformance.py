"""The conformance suite: written once, run against every backend under test.

Each backend is checked against the float64 oracles for every kernel x dtype on the
kernels' own conformance cases (``KernelSpec.conformance_cases``: patterns, storage
formats, extremes), then on drawn edge cases (Hypothesis, each kernel's
``KernelSpec.draw_kwargs`` through ``sparsekit.testing.strategies``). ``Unsupported``
from ``prepare`` skips with the backend's reason; known gaps are a backend's
known-failures file (``sparsekit.testing.plugin``).

Shipped in the wheel: ``pytest --pyargs sparsekit.testing --backend NAME``.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

import sparsekit
from sparsekit import dtypes as sk_dtypes
from sparsekit.kernels import Case, specs
from sparsekit.testing import changed_inputs, inputs_snapshot, result_dtype_matters
from sparsekit.testing import strategies as sks


def grid() -> list[Case]:
    """Every kernel's conformance cases (``KernelSpec.conformance_cases``), catalogue order."""
    return [case for spec in specs() for case in spec.conformance_cases()]


GRID = grid()
#: one case per kernel and spmm format: where the interface promises are checked
REPRESENTATIVE = [case for case in GRID if case.representative]


def _make(case: Case, dtype: str, seed: int = 0) -> sparsekit.Problem:
    return sparsekit.make_problem(case.kernel, dtype=dtype, seed=seed, **case.params)


def _grid_params(cases):
    """(case, dtype) pairs: every dtype ``make_problem`` can build the kernel in."""
    return [
        pytest.param(case, dt, id=f"{case.id}-{dt}")
        for case in cases
        for dt in sks.possible_dtypes(case.kernel)
    ]


def test_grid_covers_catalogue():
    """The grid grows with the catalogue: every kernel, every storage format, one
    representative case per kernel and format."""
    assert {c.kernel for c in GRID} == set(sparsekit.kernels())
    for spec in specs():
        if spec.formats != ("dense",):
            formats = {c.params.get("format") for c in GRID if c.kernel == spec.name}
            assert formats == set(spec.formats), spec.name
            rep = {c.params.get("format") for c in REPRESENTATIVE if c.kernel == spec.name}
            assert rep == set(spec.formats), f"{spec.name}: one representative case per format"
        else:
            assert sum(c.kernel == spec.name for c in REPRESENTATIVE) == 1, spec.name
    assert len({c.id for c in GRID}) == len(GRID), "case ids must be unique"


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
    p = _make(case, dtype)
    plan = _prepare(backend, p)
    with plan:
        plan()
        _assert_ok(p, plan.result(), backend)


@pytest.mark.parametrize("case, dtype", _grid_params(REPRESENTATIVE))
def test_result_before_call_raises(backend, case, dtype):
    plan = _prepare(backend, _make(case, dtype))
    with plan, pytest.raises(RuntimeError):
        plan.result()


@pytest.mark.parametrize("case, dtype", _grid_params(REPRESENTATIVE))
def test_result_is_host_array_in_problem_dtype(backend, case, dtype):
    p = _make(case, dtype)
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
    p = _make(case, dtype)
    with _prepare(backend, p) as plan:
        plan()
        first = np.array(plan.result(), copy=True)
        plan()
        second = plan.result()
    _assert_ok(p, second, backend)
    np.testing.assert_array_equal(second, first)


@pytest.mark.parametrize("case, dtype", _grid_params(REPRESENTATIVE))
def test_inputs_left_untouched(backend, case, dtype):
    p = _make(case, dtype)
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
    params = sparsekit.get_kernel(kernel).small_params(None if fmt == "dense" else fmt)
    return sparsekit.make_problem(kernel, dtype=dtype, seed=1, **params)


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


def _drawn_problem(backend, kernel, data):
    dtype = data.draw(st.sampled_from(_drawable_dtypes(backend, kernel)), label="dtype")
    p = data.draw(sks.problems(kernel, dtype=dtype), label="problem")
    _run_drawn(backend, p)


@functools.lru_cache(maxsize=None)
def _drawn_property(examples: int | None):
    """The property as a Hypothesis test, with the profile's settings or at most ``examples``
    (``Backend.conformance_examples``; one pytest test serves every backend, so the budget is
    chosen per call rather than by a decorator)."""
    # A fresh function per budget: Hypothesis's ``settings`` marks the function it decorates,
    # so decorating the shared ``_drawn_problem`` for a second budget would be refused.
    def fn(backend, kernel, data):
        _drawn_problem(backend, kernel, data)

    if examples is not None:
        fn = settings(max_examples=min(examples, settings.default.max_examples))(fn)
    return given(data=st.data())(fn)


@pytest.mark.parametrize("kernel", sparsekit.kernels())
def test_drawn_problems(backend, kernel):
    """Hypothesis-drawn problems: 1x1, n=1, 0% and 100% sparsity, k=0 and k=m winners,
    zero selected rows, top_k = experts, user weights with duplicate/unsorted indices."""
    _skip_unless_kernel(backend, kernel)
    _drawn_property(getattr(backend, "conformance_examples", None))(backend, kernel)


@given(data=st.data())
def test_kwta_with_ties(backend, data):
    """Activations full of ties and zeros: any tie-break is right, values must be copied exactly."""
    _skip_unless_kernel(backend, "kwta")
    dtype = data.draw(st.sampled_from(_drawable_dtypes(backend, "kwta")), label="dtype")
    x, k = data.draw(sks.kwta_activations(), label="activations")
    _run_drawn(backend, sks.kwta_problem(x, k, dtype))

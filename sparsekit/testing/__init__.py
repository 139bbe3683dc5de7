"""Testing helpers for sparsekit and for anyone writing a backend.

- ``sparsekit.testing.strategies``: Hypothesis strategies (needs ``hypothesis``;
  imported on demand, so ``import sparsekit.testing`` stays cheap).
- ``run(backend, problem)``: prepare, call once, return the host result.
- ``assert_conforms(backend, problem)``: run and require ``sparsekit.check`` to pass,
  plus the interface's promises (host ndarray of the oracle's shape, the problem's
  float type, inputs left untouched).

A backend author's smallest conformance test::

    import sparsekit
    from sparsekit.testing import assert_conforms

    def test_spmm():
        p = sparsekit.make_problem("spmm", m=64, k=64, n=8, sparsity=0.9, seed=0)
        assert_conforms(sparsekit.backend("mybackend"), p)
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import dtypes as _dtypes
from ..kernels import check, reference

__all__ = ["assert_conforms", "inputs_snapshot", "result_dtype_matters", "run", "changed_inputs"]

#: kernels whose result is a 0/1 raster, not values in the problem's float type
_NON_FLOAT_RESULTS = frozenset({"lif"})


def run(backend, problem) -> np.ndarray:
    """``backend.prepare(problem)``, one call, and the host result (may raise ``Unsupported``)."""
    plan = backend.prepare(problem)
    try:
        plan()
        return plan.result()
    finally:
        plan.close()


def result_dtype_matters(problem) -> bool:
    """Whether a result must come back in the problem's host float type (not for spike rasters)."""
    return problem.kernel not in _NON_FLOAT_RESULTS


def inputs_snapshot(problem) -> dict:
    """Deep copies of the problem's inputs, to show later that a backend left them alone."""
    return {k: (v.copy() if hasattr(v, "copy") else v) for k, v in problem.inputs.items()}


def changed_inputs(before: dict, problem) -> list[str]:
    """Names of the inputs that differ from the snapshot ``before`` (empty when untouched)."""
    changed = []
    for name, old in before.items():
        new = problem.inputs[name]
        if sp.issparse(old):
            same = (
                sp.issparse(new) and old.shape == new.shape and old.format == new.format
                and all(np.array_equal(getattr(old, a), getattr(new, a)) for a in ("data", "indices", "indptr"))
            )
        elif isinstance(old, np.ndarray):
            same = isinstance(new, np.ndarray) and old.dtype == new.dtype and np.array_equal(old, new, equal_nan=True)
        else:
            same = old is new
        if not same:
            changed.append(name)
    return changed


def assert_conforms(backend, problem) -> np.ndarray:
    """Run ``problem`` on ``backend`` and assert the result passes the oracle's check.

    Also asserts the interface's promises: a host ``numpy.ndarray`` of the oracle's
    shape, in the problem's host float type (except spike rasters), and inputs not
    modified. Returns the result. ``Unsupported`` from ``prepare`` propagates.
    """
    before = inputs_snapshot(problem)
    y = run(backend, problem)
    ref = reference(problem)
    assert isinstance(y, np.ndarray), f"{problem}: result is a {type(y).__name__}, not a host numpy.ndarray"
    assert y.shape == ref.shape, f"{problem}: result shape {y.shape}, oracle shape {ref.shape}"
    c = check(problem, y, backend=backend)
    assert c.ok, f"{problem}: {c.detail} (error {c.error:.3g})"
    if result_dtype_matters(problem):
        want = _dtypes.host_dtype(problem.dtype)
        assert y.dtype == want, f"{problem}: result dtype {y.dtype}, expected {want}"
    changed = changed_inputs(before, problem)
    assert not changed, f"{problem}: the backend modified input(s) {changed}"
    return y

"""sparsekit's own run of the conformance suite (shipped as ``sparsekit.testing``), and proof
that the suite can fail: deliberately broken backends it must catch.
"""
from __future__ import annotations

import numpy as np
import pytest

import sparsekit
from sparsekit.testing.conformance import *  # noqa: F401,F403 - the shipped suite, collected here
from sparsekit.testing.conformance import _assert_ok


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

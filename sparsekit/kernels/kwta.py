"""kwta: k-winners-take-all -- keep the k largest entries of every column, zero the rest."""
from __future__ import annotations

import operator

import numpy as np

from .. import patterns
from .weights import dense_operand
from .base import (BASELINE_BYTES, BenchGrid, Case, Check, KernelSpec, Ops, _as_result, dim, oracle_itemsize, rel_error,
                   shape_str, value_bytes)


def kwta_reference(x: np.ndarray, k: int) -> np.ndarray:
    """Keep the k largest values of each column (ties: the lower row index wins)."""
    y = np.zeros_like(x, dtype=np.float64)
    if k == 0 or x.size == 0:
        return y
    keep = np.argsort(-x.astype(np.float64), axis=0, kind="stable")[:k]
    cols = np.broadcast_to(np.arange(x.shape[1]), keep.shape)
    y[keep, cols] = x[keep, cols]
    return y


class KWTA(KernelSpec):
    """Inputs: ``x`` (m x n ndarray). Parameter ``k``: winners per column, 0 <= k <= m
    (or ``sparsity`` = 1 - k/m). Result: x with all but the k largest entries of each
    column set to 0 (m x n).

    Correctness: selection copies values, so no rounding is allowed. Ties may be
    broken either way: a result is right when each entry is either 0 or the input
    at that place and each column keeps the same multiset of values as the oracle.
    Ops count element visits (m x n), not MACs.
    """

    name = "kwta"
    summary = "keep the k largest per column, zero the rest"
    defaults = {"m": None, "n": None, "k": None, "sparsity": None}
    shape_axes = ("m", "n")
    example_shape = (1024, 64)
    # shape: m x n (units x batch); sparsity = 1 - k/m. No dense equivalent, so no break-even.
    benchmarks = (
        BenchGrid("KWTA", ("shape", "sparsity"), default=([shape_str((2048, 64))], [0.5, 0.9, 0.95, 0.99]),
                  full=([shape_str((2048, 64)), shape_str((4096, 256)), shape_str((16384, 64))],
                        [0.5, 0.8, 0.9, 0.95, 0.98, 0.99])),
    )
    error_unit = "max|sorted(Y)-sorted(Yref)|/max|Yref| per column"

    def generate(self, rng, params):
        m, n = dim("m", params["m"]), dim("n", params["n"])
        k = params.get("k")
        if k is None:
            if params.get("sparsity") is None:
                raise ValueError("kwta needs k (winners per column) or sparsity")
            k = patterns.nnz_for(m, patterns.check_sparsity(params["sparsity"]))
        try:
            k = operator.index(k)
        except TypeError:
            raise TypeError(f"k must be an integer, got {k!r}") from None
        if not 0 <= k <= m:
            raise ValueError(f"kwta needs 0 <= k <= m, got k={k} with m={m}")
        params["k"] = k
        params["sparsity"] = 1.0 - k / m
        return params, {"x": dense_operand(rng, (m, n), params["dtype"])}

    def reference(self, problem, absolute=False):
        return kwta_reference(problem.inputs["x"], problem.params["k"])

    def check(self, problem, result):
        ref = problem.cached("reference", lambda: self.reference(problem))
        x = problem.inputs["x"].astype(np.float64)
        got = _as_result(result, ref.shape, self.name)
        err = rel_error(np.sort(got, axis=0), np.sort(ref, axis=0))
        foreign = (got != 0) & (got != x)
        if foreign.any():
            i, j = np.argwhere(foreign)[0]
            return Check(False, err, f"entry ({i}, {j}) = {got[i, j]!r} is neither 0 nor the input {x[i, j]!r}")
        if err != 0.0:
            j = int(np.argmax(np.any(np.sort(got, axis=0) != np.sort(ref, axis=0), axis=0)))
            return Check(False, err, f"column {j} keeps different values than the {problem.params['k']} largest")
        return Check(True, err)

    def ops(self, problem):
        size = problem.inputs["x"].size
        return Ops(size, size)

    def compulsory_bytes(self, problem):
        x = problem.inputs["x"]
        return 2 * x.size * x.itemsize

    def depth(self, problem):
        return 0

    def footprint_bytes(self, params, dtype):
        m, n = (int(params.get(key) or 0) for key in ("m", "n"))
        return int(BASELINE_BYTES + 8 * m * n * oracle_itemsize(dtype))

    def nominal_model(self, params):
        # one visit per element (the catalogue's op count), X read and Y written once
        m, n = int(params["m"]), int(params["n"])
        return float(m * n), 2.0 * m * n * value_bytes(params.get("dtype", "float32"))

    def conformance_cases(self):
        c = [Case(self.name, f"sparsity-{s}", dict(m=48, n=12, sparsity=s), representative=s == 0.5)
             for s in (0.0, 0.5, 0.9, 1.0)]
        c.append(Case(self.name, "k1-odd", dict(m=37, n=7, k=1)))
        return c

    def small_params(self, fmt=None):
        return dict(m=8, n=4, k=2)

    def draw_kwargs(self, draw, sks, max_side):
        st = sks.st
        side = sks.sides(1, max_side)
        m, n = draw(side), draw(side)
        kw = dict(m=m, n=n)
        if draw(st.booleans()):
            kw.update(k=draw(st.one_of(st.sampled_from([0, m]), st.integers(0, m))))
        else:
            kw.update(sparsity=draw(sks.sparsity_levels()))
        return kw

    def sparsity(self, problem):
        return problem.params["sparsity"]

"""kwta: k-winners-take-all -- keep the k largest entries of every column, zero the rest."""
from __future__ import annotations

import operator

import numpy as np

from .. import patterns
from ._weights import dense_operand
from .base import Check, KernelSpec, Ops, _as_result, dim, rel_error


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

    def sparsity(self, problem):
        return problem.params["sparsity"]

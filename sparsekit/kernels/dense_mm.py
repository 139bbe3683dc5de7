"""dense_mm: Y = W @ X with W stored dense (it may hold zeros) -- every backend's baseline."""
from __future__ import annotations

import numpy as np

from .. import patterns
from ._weights import dense_operand
from .base import ProductSpec, Ops, dim, effective_macs, nonzero_counts


class DenseMM(ProductSpec):
    """Inputs: ``w`` (m x k ndarray), ``x`` (k x n ndarray). Result: ``w @ x`` (m x n).

    ``sparsity`` zeroes that fraction of W (uniform positions) without changing
    the dense work: it lets the same W be compared with a sparse kernel.
    """

    name = "dense_mm"
    summary = "Y = W @ X, W dense (may hold zeros): the baseline on every backend"
    defaults = {"m": None, "k": None, "n": None, "sparsity": 0.0, "pattern": "uniform"}

    def generate(self, rng, params):
        m, k, n = (dim(key, params[key]) for key in ("m", "k", "n"))
        s = patterns.check_sparsity(params["sparsity"])
        w = dense_operand(rng, (m, k), params["dtype"])
        if s > 0:
            mask = patterns.make_mask(params["pattern"], m, k, s, rng).toarray().astype(bool)
            w[~mask] = 0
        x = dense_operand(rng, (k, n), params["dtype"])
        params["sparsity"] = 1.0 - np.count_nonzero(w) / w.size
        return params, {"w": w, "x": x}

    def sparsity(self, problem):
        return 0.0  # zeros in W change nothing: all of it is computed

    def reference(self, problem, absolute=False):
        w, x = problem.inputs["w"].astype(np.float64), problem.inputs["x"].astype(np.float64)
        return np.abs(w) @ np.abs(x) if absolute else w @ x

    def ops(self, problem):
        w, x = problem.inputs["w"], problem.inputs["x"]
        return Ops(w.shape[0] * w.shape[1] * x.shape[1], effective_macs(nonzero_counts(w, 0), nonzero_counts(x, 1)))

    def compulsory_bytes(self, problem):
        w, x = problem.inputs["w"], problem.inputs["x"]
        return (w.size + x.size + w.shape[0] * x.shape[1]) * w.itemsize

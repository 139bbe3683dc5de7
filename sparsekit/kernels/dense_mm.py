"""dense_mm: Y = W @ X with W stored dense (it may hold zeros) -- every backend's baseline."""
from __future__ import annotations

import numpy as np

from .. import patterns
from .weights import dense_operand
from .base import BASELINE_BYTES, Case, ProductSpec, Ops, dim, effective_macs, nonzero_counts, oracle_itemsize, value_bytes


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

    # The DenseMM benchmark's shapes are every other kernel's dense equivalents
    # (benchmarks/bench_dense_mm.py derives them from the catalogue), so it has no grid here.

    def footprint_bytes(self, params, dtype):
        it = oracle_itemsize(dtype)
        m, k, n = (int(params.get(key) or 0) for key in ("m", "k", "n"))
        return int(BASELINE_BYTES + 4 * m * k * it + 6 * (k * n + m * n) * it)

    def nominal_model(self, params):
        m, k, n = (int(params[key]) for key in ("m", "k", "n"))
        return 2.0 * m * k * n, float(value_bytes(params.get("dtype", "float32")) * (m * k + k * n + m * n))

    def conformance_cases(self):
        mkn, odd = dict(m=48, k=40, n=12), dict(m=37, k=29, n=7)
        return [
            Case(self.name, "dense", mkn, representative=True),
            Case(self.name, "uniform-0.9", {**mkn, "sparsity": 0.9}),
            Case(self.name, "odd-shape", odd),
            Case(self.name, "1x1x1", dict(m=1, k=1, n=1)),
        ]

    def small_params(self, fmt=None):
        return dict(m=8, k=8, n=4)

    def draw_kwargs(self, draw, sks, max_side):
        side = sks.sides(1, max_side)
        kw = dict(m=draw(side), k=draw(side), n=draw(side))
        if draw(sks.st.booleans()):
            kw.update(sparsity=draw(sks.sparsity_levels()), pattern=draw(sks.sparsity_patterns()))
        return kw

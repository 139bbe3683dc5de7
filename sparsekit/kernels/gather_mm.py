"""gather_mm: Y = W[rows] @ X with the rows chosen per call (a selector's output selection)."""
from __future__ import annotations

import operator

import numpy as np

from .. import patterns
from .weights import dense_operand
from .base import (BASELINE_BYTES, BenchGrid, Case, ProductSpec, Ops, dim, effective_macs, nonzero_counts, oracle_itemsize,
                   shape_str, value_bytes)


class GatherMM(ProductSpec):
    """Inputs: ``w`` (m x k ndarray), ``x`` (k x n ndarray), ``rows`` (int64 array of r
    distinct row indices, in the order the selector gave them). Result: ``w[rows] @ x``
    (r x n). A good backend reads only the selected rows and never builds W[rows].

    ``rows`` is a count or an index array; alternatively ``sparsity`` = 1 - r/m.
    The sparsity this kernel exploits is the unselected fraction 1 - r/m; its dense
    equivalent is the full m x k x n product.
    """

    name = "gather_mm"
    summary = "Y = W[rows] @ X, rows chosen per call (selector)"
    defaults = {"m": None, "k": None, "n": None, "rows": None, "sparsity": None}

    def generate(self, rng, params):
        m, k, n = (dim(key, params[key]) for key in ("m", "k", "n"))
        rows = params.get("rows")
        if rows is None:
            if params.get("sparsity") is None:
                raise ValueError("gather_mm needs rows (a count or an index array) or sparsity")
            rows = patterns.nnz_for(m, patterns.check_sparsity(params["sparsity"]))
        if isinstance(rows, (list, tuple, np.ndarray)):
            idx = np.asarray(rows)
            if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
                raise TypeError("rows must be a 1-D integer index array")
            idx = idx.astype(np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= m):
                raise ValueError(f"rows must lie in [0, {m}), found {idx.min()}..{idx.max()}")
            if len(np.unique(idx)) != len(idx):
                raise ValueError("rows must be distinct (a selector picks each row at most once)")
        else:
            try:
                count = operator.index(rows)
            except TypeError:
                raise TypeError(f"rows must be a count or an index array, got {rows!r}") from None
            if not 0 <= count <= m:
                raise ValueError(f"rows={count} must be between 0 and m={m}")
            idx = patterns.selected_rows(m, count, rng)
        w = dense_operand(rng, (m, k), params["dtype"])
        x = dense_operand(rng, (k, n), params["dtype"])
        params["rows"] = int(len(idx))
        params["sparsity"] = 1.0 - len(idx) / m
        return params, {"w": w, "x": x, "rows": idx}

    def reference(self, problem, absolute=False):
        w = problem.inputs["w"][problem.inputs["rows"]].astype(np.float64)
        x = problem.inputs["x"].astype(np.float64)
        return np.abs(w) @ np.abs(x) if absolute else w @ x

    def ops(self, problem):
        w, x, rows = problem.inputs["w"], problem.inputs["x"], problem.inputs["rows"]
        eff = effective_macs(nonzero_counts(w[rows], 0), nonzero_counts(x, 1))
        return Ops(w.shape[0] * w.shape[1] * x.shape[1], eff)

    def compulsory_bytes(self, problem):
        w, x, rows = problem.inputs["w"], problem.inputs["x"], problem.inputs["rows"]
        r = len(rows)
        return (r * w.shape[1] + x.size + r * x.shape[1]) * w.itemsize + r * 8

    # sparsity: the unselected fraction of W's rows; the dense equivalent is the whole product
    benchmarks = (
        BenchGrid("GatherMM", ("shape", "sparsity"),
                  default=([shape_str((2048, 2048, 64))], [0.5, 0.75, 0.9, 0.95, 0.99]),
                  full=([shape_str((2048, 2048, 1)), shape_str((2048, 2048, 64)), shape_str((4096, 4096, 1)),
                         shape_str((4096, 4096, 64))], [0.5, 0.75, 0.875, 0.9, 0.95, 0.98, 0.99])),
    )

    def nominal_sparsity(self, params):
        if params.get("sparsity") is not None:
            return float(params["sparsity"])
        rows = params.get("rows")
        if isinstance(rows, (int, np.integer)) and params.get("m"):
            return 1.0 - int(rows) / int(params["m"])
        return None

    def footprint_bytes(self, params, dtype):
        # all m rows are stored, only the selected (1 - sparsity) are worked on
        s = self.nominal_sparsity(params)
        density = 1.0 if s is None else min(1.0, max(0.0, 1.0 - s))
        it = oracle_itemsize(dtype)
        m, k, n = (int(params.get(key) or 0) for key in ("m", "k", "n"))
        return int(BASELINE_BYTES + (2 + 12 * density) * m * k * it + 6 * (k * n + m * n) * it)

    def nominal_model(self, params):
        m, k, n = (int(params[key]) for key in ("m", "k", "n"))
        r = (1.0 - self.nominal_sparsity(params)) * m
        v = value_bytes(params.get("dtype", "float32"))
        return 2.0 * r * k * n, v * (r * k + k * n + r * n) + 8.0 * r

    def conformance_cases(self):
        mkn = dict(m=48, k=40, n=12)
        c = [Case(self.name, f"sparsity-{s}", {**mkn, "sparsity": s}, representative=s == 0.5)
             for s in (0.0, 0.5, 0.9, 1.0)]
        c.append(Case(self.name, "rows-reversed", {**mkn, "rows": np.arange(47, -1, -3)}))
        return c

    def small_params(self, fmt=None):
        return dict(m=8, k=8, n=4, rows=3)

    def draw_kwargs(self, draw, sks, max_side):
        st = sks.st
        side = sks.sides(1, max_side)
        m, k, n = draw(side), draw(side), draw(side)
        kw = dict(m=m, k=k, n=n)
        how = draw(st.sampled_from(["count", "indices", "sparsity"]))
        if how == "count":
            kw.update(rows=draw(st.one_of(st.sampled_from([0, m]), st.integers(0, m))))
        elif how == "indices":
            perm = draw(st.permutations(range(m)))
            r = draw(st.one_of(st.sampled_from([0, m]), st.integers(0, m)))
            kw.update(rows=np.asarray(perm[:r], dtype=np.int64))
        else:
            kw.update(sparsity=draw(sks.sparsity_levels()))
        return kw

"""gather_mm: Y = W[rows] @ X with the rows chosen per call (a selector's output selection)."""
from __future__ import annotations

import operator

import numpy as np

from .. import patterns
from ._weights import dense_operand
from .base import ProductSpec, Ops, dim, effective_macs, nonzero_counts


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

"""sddmm: out = mask * (A @ B), computed only at the mask's nonzeros (sparse-training backward)."""
from __future__ import annotations

import numpy as np

from .. import patterns
from .weights import dense_operand
from .base import (INDEX_BYTES, BenchGrid, Case, ProductSpec, Ops, dim, oracle_itemsize, shape_str,
                   value_bytes)


class SDDMM(ProductSpec):
    """Inputs: ``a`` (m x k), ``b`` (k x n), ``mask`` (m x n canonical CSR of ones).
    Result: the values of A @ B at the mask's nonzeros, a 1-D array of length nnz in
    the mask's CSR order (row by row, columns ascending).
    """

    name = "sddmm"
    summary = "out = mask * (A @ B), only at mask's nonzeros"
    defaults = {"m": None, "k": None, "n": None, "sparsity": None, "pattern": "uniform", "blocksize": None}

    def generate(self, rng, params):
        m, k, n = (dim(key, params[key]) for key in ("m", "k", "n"))
        if params["sparsity"] is None:
            raise ValueError("sddmm needs sparsity (of the output mask)")
        s = patterns.check_sparsity(params["sparsity"])
        mask = patterns.make_mask(params["pattern"], m, n, s, rng, blocksize=params.get("blocksize"))
        a = dense_operand(rng, (m, k), params["dtype"])
        b = dense_operand(rng, (k, n), params["dtype"])
        params["sparsity"] = patterns.sparsity_of(mask)
        params["nnz"] = int(mask.nnz)
        return params, {"a": a, "b": b, "mask": mask}

    @staticmethod
    def coo(mask):
        rows = np.repeat(np.arange(mask.shape[0]), np.diff(mask.indptr))
        return rows, mask.indices

    def reference(self, problem, absolute=False):
        a = problem.inputs["a"].astype(np.float64)
        b = problem.inputs["b"].astype(np.float64)
        if absolute:
            a, b = np.abs(a), np.abs(b)
        rows, cols = self.coo(problem.inputs["mask"])
        out = np.empty(len(rows))
        step = max(1, (1 << 22) // max(a.shape[1], 1))  # bound the temporary to ~32 MB
        for s in range(0, len(rows), step):
            r, c = rows[s : s + step], cols[s : s + step]
            out[s : s + step] = np.einsum("ij,ji->i", a[r], b[:, c])
        return out

    def ops(self, problem):
        a, b, mask = problem.inputs["a"], problem.inputs["b"], problem.inputs["mask"]
        rows, cols = self.coo(mask)
        anz, bnz = (a != 0), (b != 0)
        eff = 0
        step = max(1, (1 << 22) // max(a.shape[1], 1))
        for s in range(0, len(rows), step):
            eff += int(np.count_nonzero(anz[rows[s : s + step]] & bnz[:, cols[s : s + step]].T))
        return Ops(a.shape[0] * a.shape[1] * b.shape[1], eff)

    def compulsory_bytes(self, problem):
        a, b, mask = problem.inputs["a"], problem.inputs["b"], problem.inputs["mask"]
        return (a.size + b.size + mask.nnz) * a.itemsize + mask.nnz * 4 + (mask.shape[0] + 1) * 4

    # shape: m x k x n of A @ B (mask m x n, reduction k); the dense equivalent is the full product
    benchmarks = (
        BenchGrid("SDDMM", ("pattern", "shape", "sparsity"),
                  default=(["uniform"], [shape_str((1024, 64, 1024))], [0.5, 0.8, 0.9, 0.95, 0.98, 0.99]),
                  full=(["uniform", "block"], [shape_str((1024, 64, 1024)), shape_str((2048, 64, 2048)),
                                               shape_str((4096, 128, 4096))],
                        [0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995])),
    )

    def footprint_bytes(self, params, dtype):
        s = params.get("sparsity")
        density = 1.0 if s is None else min(1.0, max(0.0, 1.0 - float(s)))
        m, k, n = (int(params.get(key) or 0) for key in ("m", "k", "n"))
        # the oracle gathers a k-vector per output nonzero
        return int(super().footprint_bytes(params, dtype) + density * m * n * k * oracle_itemsize(dtype))

    def nominal_model(self, params):
        m, k, n = (int(params[key]) for key in ("m", "k", "n"))
        nnz = (1.0 - float(params["sparsity"])) * m * n
        v = value_bytes(params.get("dtype", "float32"))
        return 2.0 * nnz * k, v * (m * k + k * n + nnz) + INDEX_BYTES * (nnz + m + 1)

    def conformance_cases(self):
        mkn = dict(m=48, k=40, n=12)
        c = [Case(self.name, f"{p}-0.75", {**mkn, "sparsity": 0.75, "pattern": p}, representative=p == "uniform")
             for p in ("uniform", "block", "powerlaw", "selector", "kwta", "nm")]
        c += [Case(self.name, "uniform-0.0", {**mkn, "sparsity": 0.0}),
              Case(self.name, "uniform-1.0", {**mkn, "sparsity": 1.0})]
        return c

    def small_params(self, fmt=None):
        return dict(m=8, k=8, n=4, sparsity=0.5)

    def draw_kwargs(self, draw, sks, max_side):
        side = sks.sides(1, max_side)
        m, k, n = draw(side), draw(side), draw(side)
        pattern = draw(sks.sparsity_patterns())
        kw = dict(m=m, k=k, n=n, sparsity=draw(sks.sparsity_levels()), pattern=pattern)
        if pattern == "block":
            kw.update(blocksize=draw(sks.blocksizes(m, n)))
        return kw

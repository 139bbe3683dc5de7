"""sddmm: out = mask * (A @ B), computed only at the mask's nonzeros (sparse-training backward)."""
from __future__ import annotations

import numpy as np

from .. import patterns
from ._weights import dense_operand
from .base import ProductSpec, Ops, dim


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

"""spmm: Y = W @ X with W stored sparse (CSR, BSR blocks or N:M)."""
from __future__ import annotations

import numpy as np

from ._weights import WEIGHT_DEFAULTS, csr_bytes, dense_operand, sparse_weights
from .base import SparseWeightsProduct, dim

FORMATS = ("csr", "bsr", "nm")


class SpMM(SparseWeightsProduct):
    """Inputs: ``w`` (m x k canonical scipy.sparse CSR in the problem dtype), ``x`` (k x n ndarray).
    Result: ``w @ x`` (m x n).

    ``format`` says how a backend must store W: ``csr``; ``bsr`` with
    ``blocksize`` (bh, bw) dividing (m, k) (explicit zeros inside kept blocks are
    computed, as BSR does); ``nm``: every row holds the same number of nonzeros,
    N in each group of M columns (``nm`` "N:M"), so the values and column indices
    are dense (m x nnz_per_row) arrays: ``SpMM.nm_arrays(w)``.
    """

    name = "spmm"
    summary = "Y = W @ X, W sparse (CSR, BSR blocks, N:M)"
    formats = FORMATS
    defaults = {"m": None, "k": None, "n": None, "format": "csr", **WEIGHT_DEFAULTS}

    def generate(self, rng, params):
        fmt = params.get("format") or "csr"
        if fmt not in FORMATS:
            raise ValueError(f"unknown spmm format {fmt!r}: choose one of {', '.join(FORMATS)}")
        if fmt == "nm" and params.get("weights") is None and params.get("matrix") is None:
            params["pattern"] = "nm"
        if fmt == "bsr" and params.get("blocksize") is None:
            params["blocksize"] = (4, 4)
        w = sparse_weights(rng, params)
        n = dim("n", params["n"])
        if fmt == "bsr":
            bh, bw = params["blocksize"]
            if w.shape[0] % bh or w.shape[1] % bw:
                raise ValueError(f"format='bsr' needs blocksize {bh}x{bw} to divide the shape {w.shape}")
        if fmt == "nm":
            self.nm_arrays(w)  # validates the structure
        params["format"] = fmt
        x = dense_operand(rng, (params["k"], n), params["dtype"])
        return params, {"w": w, "x": x}

    @staticmethod
    def nm_arrays(w):
        """(values, column indices), each m x r, for a CSR whose rows all hold r entries."""
        lengths = np.diff(w.indptr)
        if len(lengths) and np.any(lengths != lengths[0]):
            raise ValueError("format='nm' needs the same number of nonzeros in every row (an N:M pattern)")
        r = int(lengths[0]) if len(lengths) else 0
        return w.data.reshape(w.shape[0], r), w.indices.reshape(w.shape[0], r)

    def compulsory_bytes(self, problem):
        w, x = problem.inputs["w"], problem.inputs["x"]
        return csr_bytes(w.nnz, w.shape[0], x.itemsize) + (x.size + w.shape[0] * x.shape[1]) * x.itemsize

"""sparse_sparse: W sparse @ X whose columns are k-WTA sparse (weights and activations both)."""
from __future__ import annotations

import scipy.sparse as sp

from .. import patterns
from ._weights import WEIGHT_DEFAULTS, csr_bytes, dense_operand, sparse_weights
from .base import SparseWeightsProduct, dim
from .kwta import kwta_reference


class SparseSparse(SparseWeightsProduct):
    """Inputs: ``w`` (m x k canonical CSR), ``x`` (k x n ndarray in which every column keeps
    its ``act_k`` largest entries, the output of a k-WTA layer) and ``x_csc`` (the same X
    as scipy.sparse CSC, for backends that consume compressed activations).
    Result: ``w @ x`` (m x n).

    ``sparsity`` is the weight sparsity (the swept figure); ``act_sparsity`` (default
    0.9) or ``act_k`` fixes the activations' sparsity.
    """

    name = "sparse_sparse"
    summary = "W sparse @ X whose columns are k-WTA sparse"
    defaults = {"m": None, "k": None, "n": None, "act_sparsity": 0.9, "act_k": None, **WEIGHT_DEFAULTS}

    def generate(self, rng, params):
        w = sparse_weights(rng, params)
        k, n = params["k"], dim("n", params["n"])
        act_k = params.get("act_k")
        if act_k is None:
            act_k = patterns.nnz_for(k, patterns.check_sparsity(params["act_sparsity"]))
        act_k = dim("act_k", act_k, minimum=0)
        if act_k > k:
            raise ValueError(f"act_k={act_k} exceeds k={k}")
        x = dense_operand(rng, (k, n), params["dtype"])
        x = kwta_reference(x, act_k).astype(x.dtype)
        params["act_k"] = act_k
        params["act_sparsity"] = 1.0 - act_k / k
        return params, {"w": w, "x": x, "x_csc": sp.csc_matrix(x)}

    def compulsory_bytes(self, problem):
        w, xc = problem.inputs["w"], problem.inputs["x_csc"]
        item = problem.inputs["x"].itemsize
        return csr_bytes(w.nnz, w.shape[0], item) + csr_bytes(xc.nnz, xc.shape[1], item) + w.shape[0] * xc.shape[1] * item

"""sparse_sparse: W sparse @ X whose columns are k-WTA sparse (weights and activations both)."""
from __future__ import annotations

import scipy.sparse as sp

from .. import patterns
from .weights import WEIGHT_DEFAULTS, csr_bytes, dense_operand, sparse_weights
from .base import INDEX_BYTES, BenchGrid, Case, SparseWeightsProduct, dim, shape_str, value_bytes
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

    # sparsity: the weights' (swept); act_sparsity: the activations'; dense equivalent: m x k x n
    benchmarks = (
        BenchGrid("SparseSparse", ("act_sparsity", "shape", "sparsity"),
                  default=([0.9], [shape_str((2048, 2048, 64))], [0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99]),
                  full=([0.5, 0.9, 0.98], [shape_str((2048, 2048, 64)), shape_str((4096, 4096, 64)),
                                           shape_str((4096, 4096, 256))],
                        [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995])),
    )

    def nominal_model(self, params):
        """Effective MACs nnz(W) x the activations' density x n; W's CSR, X's CSC and Y."""
        eq = self.dense_equivalent(params)
        s, act = self.nominal_sparsity(params), params.get("act_sparsity")
        if eq is None or s is None or act is None or params.get("act_k") is not None:
            return None
        m, k, n = eq["m"], eq["k"], eq["n"]
        v = value_bytes(params.get("dtype", "float32"))
        nnz_w, nnz_x = (1.0 - s) * m * k, (1.0 - float(act)) * k * n
        return (2.0 * nnz_w * (1.0 - float(act)) * n,
                (nnz_w + nnz_x) * (v + INDEX_BYTES) + (m + n + 2) * INDEX_BYTES + v * m * n)

    def conformance_cases(self):
        mkn = dict(m=48, k=40, n=12)
        c = [Case(self.name, f"{p}-0.9-act0.9", {**mkn, "sparsity": 0.9, "pattern": p, "act_sparsity": 0.9},
                  representative=p == "uniform") for p in ("uniform", "block", "powerlaw")]
        c += [Case(self.name, "uniform-0.5-act0.5", {**mkn, "sparsity": 0.5, "act_sparsity": 0.5}),
              Case(self.name, "uniform-0.5-act_k0", {**mkn, "sparsity": 0.5, "act_k": 0}),
              Case(self.name, "dlmc-transformer-0.9", dict(n=8, matrix="transformer_attn_q", sparsity=0.9))]
        return c

    def small_params(self, fmt=None):
        return dict(m=8, k=8, n=4, sparsity=0.5)

    def draw_kwargs(self, draw, sks, max_side):
        st = sks.st
        side = sks.sides(1, max_side)
        m, k = draw(side), draw(side)
        kw = dict(draw(sks.weight_kwargs(m, k, max_side)), n=draw(side))
        if draw(st.booleans()):
            k_eff = kw["weights"].shape[1] if "weights" in kw else k
            kw.update(act_k=draw(st.one_of(st.sampled_from([0, k_eff]), st.integers(0, k_eff))))
        else:
            kw.update(act_sparsity=draw(sks.sparsity_levels()))
        return kw

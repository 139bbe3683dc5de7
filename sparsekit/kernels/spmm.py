"""spmm: Y = W @ X with W stored sparse (CSR, BSR blocks or N:M)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import io
from .weights import WEIGHT_DEFAULTS, csr_bytes, dense_operand, sparse_weights
from .base import INDEX_BYTES, BenchGrid, Case, SparseWeightsProduct, dim, shape_str, value_bytes

FORMATS = ("csr", "bsr", "nm")

#: default-grid weight sparsities of the sweeps (spmm, sparse_sparse), and the full grid's
SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
SPARSITIES_FULL = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995)
#: structured formats' benchmark labels -> make_problem keywords
BENCH_FORMATS = {
    "bsr4x4": {"format": "bsr", "pattern": "block", "blocksize": (4, 4)},
    "bsr16x16": {"format": "bsr", "pattern": "block", "blocksize": (16, 16)},
    "nm": {"format": "nm", "pattern": "nm"},
}


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
        """W in the storage the problem asks for (CSR; BSR: its blocks' values and one index per
        block; N:M: values and an index each, no row offsets), X read once, Y written once."""
        w, x = problem.inputs["w"], problem.inputs["x"]
        dense_part = (x.size + w.shape[0] * x.shape[1]) * x.itemsize
        fmt = problem.params.get("format")
        if fmt == "bsr":
            bh, bw = problem.params["blocksize"]
            blocks = problem.cached("bsr_blocks", lambda: sp.bsr_matrix(w, blocksize=(bh, bw)).indices.size)
            return blocks * (bh * bw * x.itemsize + INDEX_BYTES) + (w.shape[0] // bh + 1) * INDEX_BYTES + dense_part
        if fmt == "nm":
            return w.nnz * (x.itemsize + INDEX_BYTES) + dense_part
        return csr_bytes(w.nnz, w.shape[0], x.itemsize) + dense_part

    def nominal_model(self, params):
        """As ``compulsory_bytes``, from the parameters (nnz = (1 - sparsity) x size; BSR blocks
        fully populated, as the block pattern makes them)."""
        got = super().nominal_model(params)
        fmt = params.get("format")
        if got is None or fmt not in ("bsr", "nm"):
            return got
        flops, _ = got
        eq = self.dense_equivalent(params)
        m, k, n = eq["m"], eq["k"], eq["n"]
        v = value_bytes(params.get("dtype", "float32"))
        stored = (1.0 - self.nominal_sparsity(params)) * m * k
        if fmt == "bsr":
            bh, bw = params.get("blocksize") or (4, 4)
            nbytes = stored * v + stored / (bh * bw) * INDEX_BYTES + (m / bh + 1) * INDEX_BYTES
        else:
            nbytes = stored * (v + INDEX_BYTES)
        return flops, nbytes + v * (k * n + m * n)

    benchmarks = (
        # CSR over generated patterns x shape x weight sparsity
        BenchGrid("SpMM", ("pattern", "shape", "sparsity"),
                  default=(["uniform"], [shape_str((2048, 2048, 1)), shape_str((2048, 2048, 64))], SPARSITIES),
                  full=(["uniform", "block", "powerlaw"],
                        [shape_str((2048, 2048, n)) for n in (1, 64, 128, 256)]
                        + [shape_str((4096, 4096, n)) for n in (1, 64, 128, 256)], SPARSITIES_FULL),
                  fixed={"format": "csr"}),
        # structured formats; N:M sparsities are the ones N:M expresses (2:4 ... 1:32), blocks take the same
        BenchGrid("SpMMFormats", ("format", "shape", "sparsity"),
                  default=(["bsr4x4", "nm"], [shape_str((2048, 2048, 64))], [0.5, 0.75, 0.875, 0.9375, 0.96875]),
                  full=(list(BENCH_FORMATS), [shape_str((2048, 2048, 64)), shape_str((4096, 4096, 64)),
                                              shape_str((4096, 4096, 256))],
                        [0.5, 0.75, 0.875, 0.9375, 0.96875, 0.984375]),
                  labels={"format": BENCH_FORMATS}),
        # real pruned masks (DLMC, magnitude pruning) at every vendored level, N of the original benchmark
        BenchGrid("SpMMDLMC", ("matrix", "sparsity"), default=(list(io.DLMC_MATRICES), list(io.DLMC_LEVELS)),
                  fixed={"format": "csr"}),
    )

    def bench_kwargs(self, grid, params):
        kw = super().bench_kwargs(grid, params)
        if grid.name == "SpMMDLMC":
            kw.setdefault("n", io.DLMC_MATRICES[kw["matrix"]][1])
        return kw

    def conformance_cases(self):
        mkn, odd = dict(m=48, k=40, n=12), dict(m=37, k=29, n=7)
        c = []

        def add(label, representative=False, **params):
            c.append(Case(self.name, label, params, representative))

        # format csr: every generated pattern, DLMC masks, the sparsity extremes
        for pattern in ("uniform", "block", "powerlaw", "selector", "kwta"):
            add(f"csr-{pattern}-0.9", pattern == "uniform", **mkn, sparsity=0.9, pattern=pattern, format="csr")
        add("csr-nm-2:4", **mkn, pattern="nm", nm="2:4", format="csr")
        add("csr-uniform-0.0", **mkn, sparsity=0.0, format="csr")
        add("csr-uniform-1.0", **mkn, sparsity=1.0, format="csr")
        add("csr-uniform-0.5-odd", **odd, sparsity=0.5, format="csr")
        add("csr-n1", m=48, k=40, n=1, sparsity=0.8, format="csr")
        add("csr-dlmc-transformer-0.9", n=8, matrix="transformer_attn_q", sparsity=0.9, format="csr")
        add("csr-dlmc-rn50-0.95", n=4, matrix="rn50_conv3x3", sparsity=0.95, format="csr")
        # format bsr: aligned blocks, and scattered nonzeros (explicit zeros inside blocks)
        add("bsr-block4x4-0.75", True, **mkn, sparsity=0.75, pattern="block", blocksize=(4, 4), format="bsr")
        add("bsr-block2x8-0.5", **mkn, sparsity=0.5, pattern="block", blocksize=(2, 8), format="bsr")
        add("bsr-uniform-0.9", **mkn, sparsity=0.9, pattern="uniform", blocksize=(4, 4), format="bsr")
        add("bsr-block1x1-0.0", **mkn, sparsity=0.0, pattern="block", blocksize=(1, 1), format="bsr")
        add("bsr-dlmc-transformer-0.9", n=8, matrix="transformer_attn_q", sparsity=0.9, blocksize=(4, 4), format="bsr")
        # format nm
        for ratio in ("2:4", "1:4", "1:8", "4:8"):
            add(f"nm-{ratio}", ratio == "2:4", **mkn, nm=ratio, format="nm")
        add("nm-2:4-short-last-group", m=16, k=30, n=5, nm="2:4", format="nm")
        return c

    def small_params(self, fmt=None):
        if fmt == "nm":
            return dict(m=8, k=8, n=4, nm="2:4", format="nm")
        return dict(m=8, k=8, n=4, sparsity=0.5, format=fmt if fmt not in (None, "dense") else "csr")

    def draw_kwargs(self, draw, sks, max_side):
        st = sks.st
        side = sks.sides(1, max_side)
        fmt = draw(st.sampled_from(FORMATS))
        n = draw(side)
        kw: dict = {}
        if fmt == "bsr":
            bh, bw = draw(st.integers(1, 8)), draw(st.integers(1, 8))
            gm, gk = draw(st.integers(1, max(1, max_side // bh))), draw(st.integers(1, max(1, max_side // bw)))
            m, k = bh * gm, bw * gk
            if draw(st.sampled_from(["generated"] * 4 + ["user"])) == "user":
                kw.update(weights=draw(sks.csr_matrices(shape=(m, k), canonical=False)))
            else:
                pattern = draw(st.sampled_from(["block", "uniform", "powerlaw", "selector"]))
                kw.update(m=m, k=k, pattern=pattern, sparsity=draw(sks.sparsity_levels()))
            kw.update(blocksize=(bh, bw))
        elif fmt == "nm":
            kw.update(m=draw(side), k=draw(side), nm=draw(sks.nm_ratios()))
        else:
            kw.update(draw(sks.weight_kwargs(draw(side), draw(side), max_side)))
        kw.update(format=fmt, n=n)
        return kw

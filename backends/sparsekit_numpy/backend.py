"""NumPy implementations of every catalogue kernel, in the problem's dtype.

These are the straightforward ways a NumPy user writes each operation
(``W[rows] @ X`` for a selector, a dense weight matrix for LIF synapses), so
this backend is both the loopback for the dispatch machinery and the dense
baseline the other backends are measured against. Sparse products are
vectorised gather-multiply-segment-sum over row chunks, with the chunking fixed
in ``prepare`` so a call allocates only bounded temporaries.
"""
from __future__ import annotations

import numpy as np

from sparsekit import Backend, Plan
from sparsekit.host import cpu_description
from sparsekit.dtypes import host_dtype
from sparsekit.kernels.sddmm import SDDMM
from sparsekit.kernels.spmm import SpMM
from sparsekit.xp import kwta_select, moe_forward

from . import DTYPES, KERNELS

#: elements of the largest temporary a chunked kernel builds (~16 MB in float32)
CHUNK_ELEMENTS = 1 << 22


def _blas_name() -> str:
    try:
        return np.__config__.CONFIG["Build Dependencies"]["blas"]["name"]
    except Exception:  # pragma: no cover - depends on the NumPy build
        return "BLAS"


def _row_chunks(indptr: np.ndarray, per_entry: int) -> list[tuple[int, int]]:
    """Split rows into runs whose entries x per_entry stay under CHUNK_ELEMENTS."""
    limit = max(CHUNK_ELEMENTS // max(per_entry, 1), 1)
    chunks, start = [], 0
    m = len(indptr) - 1
    while start < m:
        # the furthest row end whose nnz since `start` fits the limit (at least one row)
        end = int(np.searchsorted(indptr, indptr[start] + limit, side="right")) - 1
        end = min(max(end, start + 1), m)
        chunks.append((start, end))
        start = end
    return chunks


class _SegmentSum:
    """Y[r] = sum over a row's entries of value * X[col]: CSR (or BSR) products, chunked.

    ``np.add.reduceat`` returns the element itself for an empty segment, so only
    rows that hold entries are reduced; the rest of Y stays at the zeros it was
    allocated with in prepare.
    """

    def __init__(self, indptr, per_entry: int):
        self.pieces = []
        for lo, hi in _row_chunks(indptr, per_entry):
            ptr = indptr[lo : hi + 1]
            nonempty = np.flatnonzero(np.diff(ptr)) + lo
            if nonempty.size:
                starts = (indptr[nonempty] - ptr[0]).astype(np.intp)
                self.pieces.append((int(ptr[0]), int(ptr[-1]), nonempty, starts))


class NumpyBackend(Backend):
    name = "numpy"
    supports = KERNELS
    dtypes = DTYPES

    def device(self) -> str:
        return f"{cpu_description()} ({_blas_name()})"

    def versions(self) -> dict:
        return {"numpy": np.__version__}

    # -- dense -----------------------------------------------------------------
    def _prepare_dense_mm(self, p):
        w, x = (np.ascontiguousarray(p.inputs[k]) for k in ("w", "x"))
        y = np.empty((w.shape[0], x.shape[1]), dtype=w.dtype)
        return Plan(lambda: np.matmul(w, x, out=y))

    def _prepare_gather_mm(self, p):
        w, x, rows = p.inputs["w"], np.ascontiguousarray(p.inputs["x"]), p.inputs["rows"]
        # what a NumPy user writes: materialise the selected rows, then one GEMM
        return Plan(lambda: w[rows] @ x)

    # -- sparse weights --------------------------------------------------------
    def _csr_product(self, w, x):
        dt = host_dtype(self._dtype_of(x))
        data, indices = w.data.astype(dt), w.indices.astype(np.intp)
        n = x.shape[1]
        seg = _SegmentSum(w.indptr, n)
        y = np.zeros((w.shape[0], n), dtype=dt)

        def run():
            for lo, hi, rows, starts in seg.pieces:
                prod = data[lo:hi, None] * x[indices[lo:hi]]
                y[rows] = np.add.reduceat(prod, starts, axis=0)
            return y

        return Plan(run)

    @staticmethod
    def _dtype_of(x) -> str:
        return np.dtype(x.dtype).name

    def _prepare_spmm(self, p):
        w, x = p.inputs["w"], np.ascontiguousarray(p.inputs["x"])
        fmt = p.params["format"]
        if fmt == "csr":
            return self._csr_product(w, x)
        if fmt == "nm":
            return self._nm_product(w, x)
        return self._bsr_product(w, x, p.params["blocksize"])

    def _nm_product(self, w, x):
        vals, cols = SpMM.nm_arrays(w)
        vals, cols = vals.astype(x.dtype), cols.astype(np.intp)
        m, r = vals.shape
        n = x.shape[1]
        step = max(CHUNK_ELEMENTS // max(r * n, 1), 1)
        y = np.zeros((m, n), dtype=x.dtype)

        def run():
            for s in range(0, m, step):
                np.einsum("ir,irn->in", vals[s : s + step], x[cols[s : s + step]], out=y[s : s + step])
            return y

        return Plan(run)

    def _bsr_product(self, w, x, blocksize):
        b = w.tobsr(blocksize=tuple(blocksize))
        b.sort_indices()
        bh, bw = blocksize
        blocks, bcols = b.data.astype(x.dtype), b.indices.astype(np.intp)
        n = x.shape[1]
        xb = x.reshape(x.shape[0] // bw, bw, n)
        seg = _SegmentSum(b.indptr, bh * bw * n)
        y = np.zeros((b.shape[0] // bh, bh, n), dtype=x.dtype)

        def run():
            for lo, hi, rows, starts in seg.pieces:
                prod = np.matmul(blocks[lo:hi], xb[bcols[lo:hi]])
                y[rows] = np.add.reduceat(prod, starts, axis=0)
            return y.reshape(-1, n)

        return Plan(run)

    def _prepare_sparse_sparse(self, p):
        # NumPy has no sparse x sparse product: the compressed activations are used
        # densely, as a NumPy user would (zeros in X are multiplied like any value).
        return self._csr_product(p.inputs["w"], np.ascontiguousarray(p.inputs["x"]))

    def _prepare_sddmm(self, p):
        a, b = p.inputs["a"], np.ascontiguousarray(p.inputs["b"].T)
        rows, cols = (c.astype(np.intp) for c in SDDMM.coo(p.inputs["mask"]))
        step = max(CHUNK_ELEMENTS // max(a.shape[1], 1), 1)
        out = np.empty(len(rows), dtype=a.dtype)
        spans = [(s, min(s + step, len(rows))) for s in range(0, len(rows), step)]
        # Gather buffers allocated once: a fresh multi-MB temporary per call made the
        # timing depend on the allocator's mmap threshold rather than on the kernel.
        width = min(step, len(rows))
        ga = np.empty((width, a.shape[1]), dtype=a.dtype)
        gb = np.empty((width, b.shape[1]), dtype=a.dtype)

        def run():
            for lo, hi in spans:
                n = hi - lo
                np.take(a, rows[lo:hi], axis=0, out=ga[:n])
                np.take(b, cols[lo:hi], axis=0, out=gb[:n])
                np.einsum("ij,ij->i", ga[:n], gb[:n], out=out[lo:hi])
            return out

        return Plan(run)

    # -- activations -----------------------------------------------------------
    def _prepare_kwta(self, p):
        x = np.ascontiguousarray(p.inputs["x"])
        k = p.params["k"]
        # partial selection (argpartition), shared with the cupy backend: sparsekit.xp
        return Plan(lambda: kwta_select(np, x, k))

    def _prepare_lif(self, p):
        # Synapses as a dense matrix: the dense baseline of event-driven execution.
        dt = host_dtype(p.dtype)
        w = p.inputs["w"].toarray().astype(dt)
        s = p.inputs["spikes"].astype(dt)
        steps, n_out = s.shape[0], w.shape[0]
        one_du, one_dv = dt.type(1 - p.params["du"]), dt.type(1 - p.params["dv"])
        bias, vth = dt.type(p.params["bias"]), dt.type(p.params["vth"])

        def run():
            u = np.zeros(n_out, dtype=dt)
            v = np.zeros(n_out, dtype=dt)
            raster = np.zeros((steps, n_out), dtype=bool)
            for t in range(steps):
                a = w @ s[t - 1] if t > 0 else np.zeros(n_out, dtype=dt)
                u = u * one_du + a
                v = v * one_dv + u + bias
                fired = v > vth
                raster[t] = fired
                v[fired] = 0
            return raster

        return Plan(run)

    def _prepare_moe(self, p):
        x, gate, experts = (np.ascontiguousarray(p.inputs[k]) for k in ("x", "gate", "experts"))
        top_k = p.params["top_k"]
        # route, then only the chosen experts on their tokens: the same code the cupy backend runs
        return Plan(lambda: moe_forward(np, x, gate, experts, top_k))

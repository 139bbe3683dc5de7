"""``CpuBackend``: NumPy/OpenBLAS for the dense products, multithreaded Numba elsewhere.

Everything that is not the kernel happens in ``prepare``: conversion to the
layout a kernel wants (CSC for scatters, B transposed for SDDMM, input spikes as
per-step event lists), casts, output allocation, and one warm-up call that
JIT-compiles the Numba kernel (or loads it from Numba's on-disk cache: only the
first process to meet a kernel/dtype after a change to ``_kernels.py`` pays the
compile, a few seconds) and faults the output's pages in.
``run`` is the kernel alone and works in the problem's dtype.

Threads
-------
* Numba kernels use ``SPARSEKIT_NUM_THREADS`` threads when it is set, else
  ``NUMBA_NUM_THREADS`` (Numba's default: every core the process may use),
  capped at the latter; Numba's default threading layer is kept. The count is
  applied with ``numba.set_num_threads``, which holds for the calling thread,
  so ``prepare`` re-applies it: run a plan in the thread that prepared it.
* NumPy's OpenBLAS (``dense_mm``, ``moe``, the gate and expert products) sizes its
  pool from ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` when NumPy is first
  imported; this backend does not change it. The benchmark environment pins
  ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` and ``NUMBA_NUM_THREADS`` to the
  same count so dense and sparse kernels get the same cores, and so the two
  pools (which both spin a while after a call) do not oversubscribe them.
"""
from __future__ import annotations

import os

import numba
import numpy as np
import scipy
import scipy.sparse as sp

import sparsekit
from sparsekit import Plan
from sparsekit._sysinfo import cpu_description
from sparsekit.kernels.moe import route
from sparsekit.kernels.spmm import SpMM

from . import DTYPES, KERNELS
from . import _kernels as K


def thread_count() -> int:
    """Numba threads to use: SPARSEKIT_NUM_THREADS if set, else all Numba may use."""
    limit = numba.config.NUMBA_NUM_THREADS
    env = os.environ.get("SPARSEKIT_NUM_THREADS", "").strip()
    if not env:
        return limit
    try:
        n = int(env)
    except ValueError:
        raise ValueError(f"SPARSEKIT_NUM_THREADS must be an integer, got {env!r}") from None
    return max(1, min(n, limit))


def _blas() -> str:
    try:
        blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas.get('version', '')}".strip()
    except (AttributeError, KeyError, TypeError):
        return "unknown"


def _index(a, largest: int) -> np.ndarray:
    """Index array as uint32 when every value fits, else int64.

    Four bytes halve the index traffic, and an unsigned index spares Numba its
    negative-index wraparound test on every access (SpMV runs ~1.5x faster)."""
    return np.ascontiguousarray(a, dtype=np.uint32 if largest < 2**32 - 1 else np.int64)


def _dense(a, dtype) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=dtype)


def _csr(w, dtype):
    """(indptr, indices, data) of a canonical CSR, cast and made contiguous."""
    w = sp.csr_matrix(w)
    if not w.has_canonical_format:
        w = w.copy()
        w.sum_duplicates()
    largest = max(w.nnz, w.shape[1])
    return _index(w.indptr, largest), _index(w.indices, largest), _dense(w.data, dtype)


def _warm(run) -> Plan:
    run()  # JIT compile or cache load, first touch of the output: never timed
    return Plan(run)


class CpuBackend(sparsekit.Backend):
    name = "cpu"
    supports = KERNELS
    dtypes = DTYPES

    def __init__(self):
        self.threads = thread_count()
        numba.set_num_threads(self.threads)

    def device(self) -> str:
        return f"{cpu_description()} ({self.threads} Numba threads)"

    def versions(self) -> dict:
        try:
            layer = numba.threading_layer()
        except ValueError:  # no parallel kernel has run yet
            layer = numba.config.THREADING_LAYER
        return {
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "numba": numba.__version__,
            "blas": _blas(),
            "threads": self.threads,
            "threading_layer": layer,
        }

    def prepare(self, problem):
        numba.set_num_threads(self.threads)
        return super().prepare(problem)

    @property
    def _chunks(self) -> int:
        # a few equal-work row ranges per thread (prange splits iterations evenly)
        return 4 * self.threads

    # -- dense ------------------------------------------------------------------

    def _prepare_dense_mm(self, problem):
        dt = problem.dtype
        w, x = _dense(problem.inputs["w"], dt), _dense(problem.inputs["x"], dt)
        out = np.empty((w.shape[0], x.shape[1]), dt)
        return _warm(lambda: np.matmul(w, x, out=out))

    # -- spmm ---------------------------------------------------------------------

    def _prepare_spmm(self, problem):
        dt = problem.dtype
        w, x = problem.inputs["w"], _dense(problem.inputs["x"], dt)
        out = np.empty((w.shape[0], x.shape[1]), dt)
        vector = x.shape[1] == 1
        # a length-1 trailing axis is a plain vector: the dot-product kernels avoid
        # the per-nonzero loop setup of the row-combining ones
        xv, ov = x.reshape(-1), out.reshape(-1)
        fmt = problem.params["format"]
        if fmt == "csr":
            indptr, indices, data = _csr(w, dt)
            bounds = K.balanced_bounds(indptr, self._chunks, row_cost=2.0)
            if vector:
                run = lambda: (K.csr_spmv(bounds, indptr, indices, data, xv, ov), out)[1]
            else:
                run = lambda: K.csr_spmm(bounds, indptr, indices, data, x, out)
        elif fmt == "nm":
            vals, cols = SpMM.nm_arrays(sp.csr_matrix(w))
            vals, cols = _dense(vals, dt), _index(cols, w.shape[1])
            if vector:
                run = lambda: (K.nm_spmv(vals, cols, xv, ov), out)[1]
            else:
                bounds = np.linspace(0, w.shape[0], self._chunks + 1).astype(np.int64)
                run = lambda: K.nm_spmm(bounds, vals, cols, x, out)
        else:
            bh, bw = problem.params["blocksize"]
            wb = sp.csr_matrix(w).tobsr(blocksize=(bh, bw))
            wb.sort_indices()
            blocks = _dense(wb.data, dt)
            largest = max(len(wb.indices), wb.shape[1])
            indptr, indices = _index(wb.indptr, largest), _index(wb.indices, largest)
            bounds = K.balanced_bounds(indptr, self._chunks, row_cost=2.0)
            if vector:
                run = lambda: (K.bsr_spmv(bounds, indptr, indices, blocks, xv, ov), out)[1]
            else:
                run = lambda: K.bsr_spmm(bounds, indptr, indices, blocks, x, out)
        return _warm(run)

    # -- sddmm ----------------------------------------------------------------------

    def _prepare_sddmm(self, problem):
        dt = problem.dtype
        a = _dense(problem.inputs["a"], dt)
        # B's layout is the backend's choice, like W's format: column-major B makes
        # both operands of each dot product contiguous
        bt = _dense(problem.inputs["b"].T, dt)
        indptr, indices, _ = _csr(problem.inputs["mask"], dt)
        bounds = K.balanced_bounds(indptr, self._chunks, row_cost=0.5)
        out = np.empty(len(indices), dt)
        return _warm(lambda: K.sddmm(bounds, indptr, indices, a, bt, out))

    # -- gather_mm --------------------------------------------------------------------

    def _prepare_gather_mm(self, problem):
        dt = problem.dtype
        w, x = _dense(problem.inputs["w"], dt), _dense(problem.inputs["x"], dt)
        rows = _index(problem.inputs["rows"], w.shape[0])
        out = np.empty((len(rows), x.shape[1]), dt)
        if x.shape[1] == 1:
            xv, ov = x.reshape(-1), out.reshape(-1)
            run = lambda: (K.gather_mv(w, rows, xv, ov), out)[1]
        else:
            run = lambda: K.gather_mm(w, rows, x, out)
        return _warm(run)

    # -- kwta -------------------------------------------------------------------------

    def _prepare_kwta(self, problem):
        dt = problem.dtype
        x = _dense(problem.inputs["x"], dt)
        k = int(problem.params["k"])
        out = np.empty_like(x)
        # column blocks up to a cache line wide, but enough of them for every thread
        width = int(min(16, max(1, x.shape[1] // (2 * self.threads))))
        return _warm(lambda: K.kwta(x, k, width, out))

    # -- sparse_sparse -------------------------------------------------------------------

    def _prepare_sparse_sparse(self, problem):
        dt = problem.dtype
        w = problem.inputs["w"]
        m, n = w.shape[0], problem.inputs["x"].shape[1]
        # scatter form needs W by columns; X arrives compressed by columns already
        wptr, wrows, wdata = _csr(sp.csr_matrix(w).T, dt)  # CSR of W^T is CSC of W
        xptr, xrows, xdata = _csr(sp.csc_matrix(problem.inputs["x_csc"]).T, dt)
        yt = np.empty((n, m + 16), dt)
        out = np.empty((m, n), dt)
        return _warm(lambda: K.sparse_sparse(wptr, wrows, wdata, xptr, xrows, xdata, yt, out))

    # -- lif ---------------------------------------------------------------------------------

    def _prepare_lif(self, problem):
        dt = np.dtype(problem.dtype).type
        prm = problem.params
        w = sp.csr_matrix(problem.inputs["w"])
        spikes = problem.inputs["spikes"]
        steps, n_out = spikes.shape[0], w.shape[0]
        # a slice's work: its synapses times the spike rate, plus one update per neuron
        bounds = K.balanced_bounds(w.indptr, self.threads, row_cost=1.0 / max(prm["rate"], 0.01))
        # per neuron slice, the CSC of its rows of W, all sharing one row/data array
        colptr, rows, data, offset = [], [], [], 0
        for r0, r1 in zip(bounds[:-1], bounds[1:]):
            sub = w[r0:r1].tocsc()
            sub.sort_indices()
            colptr.append(sub.indptr.astype(np.int64) + offset)
            rows.append(sub.indices.astype(np.int64) + r0)
            data.append(sub.data)
            offset += sub.nnz
        largest = max(w.nnz, n_out)
        colptr = _index(np.vstack(colptr), largest)
        rows = _index(np.concatenate(rows), largest)
        data = _dense(np.concatenate(data), dt)
        # input spikes as address events per step (what an event-driven core consumes)
        ev = sp.csr_matrix(spikes)
        ev.sort_indices()
        largest = max(ev.nnz, spikes.shape[1])
        sptr, sidx, sval = _index(ev.indptr, largest), _index(ev.indices, largest), _dense(ev.data, dt)
        consts = dt(1 - prm["du"]), dt(1 - prm["dv"]), dt(prm["bias"]), dt(prm["vth"])
        raster = np.empty((steps, n_out), dt)
        return _warm(lambda: K.lif(bounds, colptr, rows, data, sptr, sidx, sval, *consts, raster))

    # -- moe ------------------------------------------------------------------------------------

    def _prepare_moe(self, problem):
        dt = problem.dtype
        x = _dense(problem.inputs["x"], dt)
        gate = _dense(problem.inputs["gate"], dt)
        experts = _dense(problem.inputs["experts"], dt)
        n_exp, m, _ = experts.shape
        n = x.shape[1]
        top_k = int(problem.params["top_k"])
        y = np.empty((m, n), dt)
        yt = np.empty((n, m), dt)

        def run():
            order, p = route(gate @ x, top_k)
            # group the (slot, token) pairs by expert with one stable sort
            flat = order.ravel()
            perm = np.argsort(flat, kind="stable")
            ends = np.cumsum(np.bincount(flat, minlength=n_exp))
            # tokens as rows: gathering and scattering a token is then one contiguous
            # row, where picking columns of x and y costs 2-3x more at large n
            xt = np.ascontiguousarray(x.T)
            yt[...] = 0
            start = 0
            for e in range(n_exp):
                pick = perm[start : ends[e]]
                start = ends[e]
                if pick.size == 0:
                    continue
                slot, tokens = np.divmod(pick, n)
                ye = xt[tokens] @ experts[e].T
                ye *= p[slot, tokens][:, None]
                yt[tokens] += ye
            np.copyto(y, yt.T)
            return y

        return _warm(run)

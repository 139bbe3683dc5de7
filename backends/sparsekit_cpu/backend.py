"""``CpuBackend``: an inspector-executor over explicit-SIMD Numba kernels and NumPy's BLAS.

``prepare`` is an inspector (MKL's ``mkl_sparse_optimize``, OSKI): for CSR SpMM and
GATHER_MM it measures the operand (``inspector.csr_facts``/``gather_facts``) next to
the machine (``machine.detect``: cache sizes, vector width and registers, threads,
calibrated limits), picks a strategy by the documented rules of ``inspector``
(or the one remembered for this machine and problem class, or, with tuning on, the
fastest of the shortlist: ``tuning``, ``wisdom``), and records it on the plan as
``plan.strategy`` (a ``sparsekit.Strategy``: name, reason, facts, and its stable
number in ``strategies.NAMES``). Formats with one way to run (BSR, N:M) and the
other kernels record theirs too. ``force`` (a strategy name) overrides the choice,
for tests and measurements.

Everything that is not the kernel happens in ``prepare``: conversion to the
layout a strategy wants (``_layout``: CSR with uint16 columns, column panels, a
merge-path split; CSC for scatters, B transposed for SDDMM, input spikes as
per-step event lists), casts, output allocation, and one warm-up call that
JIT-compiles the Numba kernel (or loads it from Numba's on-disk cache: only the
first process to meet a kernel/dtype/tile width after a change to the kernels
pays the compile, a few seconds) and faults the output's pages in.
``run`` is the kernel alone and works in the problem's dtype.

Threads
-------
Three pools can live in one process: OpenBLAS's (NumPy), Numba's and, when torch
is imported beside it (the peer measurements do), torch's OpenMP, which is its own
bundled ``libgomp``, a second copy next to the system one Numba's ``omp`` layer
uses. They are kept from fighting like this:

* Every pool is sized to the core count: the Makefile, ``asv.conf.json`` and
  ``tools/cpu_targets.py`` pin ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``,
  ``MKL_NUM_THREADS`` and ``NUMBA_NUM_THREADS`` before any library loads.
  Numba kernels use ``SPARSEKIT_NUM_THREADS`` threads when it is set, else
  ``NUMBA_NUM_THREADS``, capped at the latter, applied with
  ``numba.set_num_threads``, which holds for the calling thread, so ``prepare``
  re-applies it: run a plan in the thread that prepared it.
* One library computes at a time: no kernel of this backend runs Numba and BLAS
  concurrently, and a plan never alternates a parallel Numba kernel with BLAS. After a
  call each pool spins a while before sleeping (OpenBLAS for up to ~2^28 cycles,
  yielding; libgomp ~300k spins), so a parallel Numba kernel right before an OpenBLAS
  call finds its cores taken and vice versa: measured 2-10x slowdowns on 2 cores.
  Hence every strategy is either Numba alone (the register tiles, the dot products)
  or BLAS alone, and ``gather.copy_blas``'s row copy before its BLAS product is a
  serial Numba loop in the calling thread (``_kernels.take_rows``). Tuning idles
  between candidates for the same reason (``tuning.SETTLE``).
* Numba's threading layer is chosen deliberately: ``omp`` first (then
  ``workqueue``, then ``tbb``) unless ``NUMBA_THREADING_LAYER`` or
  ``NUMBA_THREADING_LAYER_PRIORITY`` says otherwise. Numba's own default would
  prefer ``tbb`` whenever the tbb package happens to be installed; ``omp`` wakes its
  threads fastest for the sub-100-microsecond kernels here (``workqueue`` measured
  1.5-2.5x slower on the 30 us GATHER_MM n=1 case). Its ``libgomp`` and torch's
  are separate pools of the same size and never compute at the same time, which
  the benchmark's protocol (one plan timed at a time) guarantees.
* ``versions()`` reports the thread count and the active layer with every result.
"""
from __future__ import annotations

import os

import numba
import numpy as np
import scipy
import scipy.sparse as sp

import sparsekit
from sparsekit import Plan, Strategy
from sparsekit.kernels.moe import route
from sparsekit.kernels.spmm import SpMM

from . import DTYPES, KERNELS
from . import _kernels as K
from . import _tiles as T
from . import inspector, machine, tuning, wisdom
from .machine import cpu_description
from . import strategies as S
from ._layout import CsrOperands, GatherOperands, SddmmOperands, canonical_csr, column_array, csr_arrays, dense, index_array

if not {"NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY"} & set(os.environ):
    # chosen before the first parallel kernel runs (see "Threads" above)
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "workqueue", "tbb"]


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


def _warm(run, strategy: Strategy) -> Plan:
    run()  # JIT compile or cache load, first touch of the output: never timed
    return Plan(run, strategy=strategy)


def _single(name: str, reason: str) -> Strategy:
    """The Strategy record of a kernel with one way to run."""
    return Strategy(name, reason, {}, S.code(name))


class CpuBackend(sparsekit.Backend):
    name = "cpu"
    supports = KERNELS
    dtypes = DTYPES

    def __init__(self):
        self.threads = thread_count()
        numba.set_num_threads(self.threads)
        #: a strategy name (``strategies.NAMES``) to run instead of the inspector's choice,
        #: for tests and measurements; a strategy that cannot run the problem is an error
        self.force: str | None = None
        #: time the inspector's shortlist when it cannot decide: None = ``SPARSEKIT_CPU_TUNE``
        self.tune: bool | None = None
        #: the wisdom file (None: ``wisdom.default_path()``)
        self.wisdom_path = None

    @property
    def machine(self) -> machine.Machine:
        return machine.detect(self.threads)

    def tune_strategies(self, progress=None) -> list[dict]:
        """``sparsekit calibrate --tune``: ``sparsekit_cpu.tuning.tune`` on its default problems."""
        return tuning.tune(None, progress)

    def stream(self, kind: str, n_bytes: int, passes: int = 1):
        """``read``: this backend's own threads reading a float32 array ``passes`` times per call
        (``_stream.read_plan``); copy and triad: the host default."""
        if kind != "read":
            return super().stream(kind, n_bytes, passes)
        from ._stream import read_plan

        run, out = read_plan(n_bytes, passes, self.threads, lanes=self.machine.lanes(4))
        return Plan(run, fetch=lambda _: out)

    def peak_probe(self, dtype: str = "float32"):
        """Independent FMA chains on this backend's threads (``_stream.fma_plan``)."""
        from ._stream import fma_plan

        if dtype not in ("float32", "float64"):
            return None
        itemsize = 4 if dtype == "float32" else 8
        run, flops = fma_plan(self.threads, self.machine.lanes(itemsize), np.dtype(dtype).type)
        return Plan(run), flops

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
        return inspector.PARTS_PER_THREAD * self.threads

    # -- the inspector-executor step ------------------------------------------------------

    def _decide(self, problem, choice, operands) -> Plan:
        """Run the inspector's ``choice`` (or the forced, remembered or tuned strategy) on
        ``operands``; the plan's ``strategy`` records which and why."""
        facts, mach = choice.facts, self.machine
        tuned = None
        if self.force is not None:
            why_not = self._force_error(problem.kernel, facts)
            if why_not:
                raise ValueError(f"cannot force strategy {self.force!r}: {why_not}")
            name, reason = self.force, "forced (CpuBackend.force)"
        else:
            key = wisdom.problem_class(problem.kernel, problem.dtype, facts)
            known = wisdom.Wisdom(mach, self.wisdom_path)
            tune = tuning.enabled() if self.tune is None else self.tune
            build = lambda nm: S.build(nm, operands, inspector.params_for(nm, facts, mach))  # noqa: E731
            name, reason, tuned = tuning.settle(choice, key, known, build, tune)
        params = inspector.params_for(name, facts, mach)
        record = {**{k: v for k, v in facts.items() if not isinstance(v, (list, dict))}, **params,
                  "threads": mach.threads, "vector_bytes": mach.vector_bytes, "l1d": mach.l1d, "l2": mach.l2}
        if name != choice.name:
            record["model_choice"] = choice.name
        if len(choice.candidates) > 1:
            record["candidates"] = ",".join(choice.candidates)
        run = S.build(name, operands, params)
        return _warm(run, Strategy(name, reason, record, S.code(name)))

    def _force_error(self, kernel: str, facts: dict) -> str | None:
        if self.force not in S.NAMES:
            return f"unknown strategy; known: {', '.join(S.NAMES)}"
        if S.KERNEL[self.force] != kernel:
            return f"it runs {S.KERNEL[self.force]}, not {kernel}"
        if self.force not in S.BUILDERS:
            return "it is its kernel's only strategy and chosen by format, not by the inspector"
        return inspector.applicable(self.force, facts, self.machine)

    def _fixed(self, kernel: str, name: str):
        """Check ``force`` for a kernel whose strategy follows from its format or is its only one."""
        if self.force is not None and self.force != name:
            raise ValueError(f"cannot force strategy {self.force!r} on {kernel}: this problem runs {name}")

    # -- dense ------------------------------------------------------------------

    def _prepare_dense_mm(self, problem):
        self._fixed("dense_mm", "dense.blas")
        dt = problem.dtype
        w, x = dense(problem.inputs["w"], dt), dense(problem.inputs["x"], dt)
        out = np.empty((w.shape[0], x.shape[1]), dt)
        return _warm(lambda: np.matmul(w, x, out=out), _single("dense.blas", "NumPy's BLAS"))

    # -- spmm ---------------------------------------------------------------------

    def _prepare_spmm(self, problem):
        dt = problem.dtype
        w, x = problem.inputs["w"], problem.inputs["x"]
        fmt = problem.params["format"]
        if fmt == "csr":
            op = CsrOperands(w, x, dt, self._chunks)
            facts = inspector.csr_facts(op.indptr, op.indices, op.w.shape, op.n, op.dtype.itemsize, self.machine,
                                        op.data)
            return self._decide(problem, inspector.choose_csr(facts, self.machine), op)
        x = dense(x, dt)
        n = x.shape[1]
        out = np.empty((w.shape[0], n), dt)
        vector = n == 1
        # a length-1 trailing axis is a plain vector: the dot-product kernels avoid
        # the per-nonzero loop setup of the row-combining ones
        xv, ov = x.reshape(-1), out.reshape(-1)
        lanes = self.machine.lanes(np.dtype(dt).itemsize)
        if fmt == "nm":
            vals, cols = SpMM.nm_arrays(sp.csr_matrix(w))
            vals, cols = dense(vals, dt), column_array(cols, w.shape[1])
            if vector:
                name = "nm.spmv"
                run = lambda: (K.nm_spmv(vals, cols, xv, ov), out)[1]  # noqa: E731
            else:
                # every row holds r nonzeros: the CSR register tiles over an arithmetic indptr
                name = "nm.tiles"
                r = vals.shape[1]
                indptr = index_array(np.arange(w.shape[0] + 1, dtype=np.int64) * r, max(vals.size, 1))
                flat_v, flat_c = vals.reshape(-1), cols.reshape(-1)
                bounds = np.linspace(0, w.shape[0], self._chunks + 1).astype(np.int64)
                Sv, U = T.strip_plan(n, lanes, self.machine.vector_registers)
                f = T.spmm_rows(Sv, U, lanes)
                run = lambda: f(bounds, indptr, flat_c, flat_v, x, out)  # noqa: E731
            self._fixed("spmm", name)
            return _warm(run, _single(name, "format nm: every row holds the same number of nonzeros"))
        bh, bw = problem.params["blocksize"]
        wb = canonical_csr(w).tobsr(blocksize=(bh, bw))
        wb.sort_indices()
        blocks = dense(wb.data, dt)
        largest = max(len(wb.indices), wb.shape[1])
        indptr, indices = index_array(wb.indptr, largest), index_array(wb.indices, largest)
        bounds = K.balanced_bounds(indptr, self._chunks, row_cost=2.0)
        if vector:
            name = "bsr.spmv"
            run = lambda: (K.bsr_spmv(bounds, indptr, indices, blocks, xv, ov), out)[1]  # noqa: E731
        else:
            name = "bsr.tiles"
            f = T.bsr_tiles(T.strip_plan(n, lanes, self.machine.vector_registers // 4)[0], lanes)
            run = lambda: f(bounds, indptr, indices, blocks, x, out)  # noqa: E731
        self._fixed("spmm", name)
        return _warm(run, _single(name, f"format bsr, {bh}x{bw} blocks"))

    # -- sddmm ----------------------------------------------------------------------

    def _prepare_sddmm(self, problem):
        op = SddmmOperands(problem.inputs["a"], problem.inputs["b"], problem.inputs["mask"], problem.dtype,
                           self._chunks)
        facts = inspector.sddmm_facts(op.indptr, op.shape, op.a.shape[1], op.dtype.itemsize, self.machine)
        return self._decide(problem, inspector.choose_sddmm(facts, self.machine), op)

    # -- gather_mm --------------------------------------------------------------------

    def _prepare_gather_mm(self, problem):
        op = GatherOperands(problem.inputs["w"], problem.inputs["rows"], problem.inputs["x"], problem.dtype)
        facts = inspector.gather_facts(op.rows, op.w.shape, op.n, op.dtype.itemsize, self.machine)
        return self._decide(problem, inspector.choose_gather(facts, self.machine), op)

    # -- kwta -------------------------------------------------------------------------

    def _prepare_kwta(self, problem):
        self._fixed("kwta", "kwta.select")
        dt = problem.dtype
        x = dense(problem.inputs["x"], dt)
        k = int(problem.params["k"])
        out = np.empty_like(x)
        # column blocks up to a cache line wide, but enough of them for every thread
        width = int(min(16, max(1, x.shape[1] // (2 * self.threads))))
        return _warm(lambda: K.kwta(x, k, width, out),
                     _single("kwta.select", f"banded quickselect, columns in blocks of {width}"))

    # -- sparse_sparse -------------------------------------------------------------------

    def _prepare_sparse_sparse(self, problem):
        self._fixed("sparse_sparse", "sparse_sparse.scatter")
        dt = problem.dtype
        w = problem.inputs["w"]
        m, n = w.shape[0], problem.inputs["x"].shape[1]
        # scatter form needs W by columns; X arrives compressed by columns already
        wptr, wrows, wdata = csr_arrays(sp.csr_matrix(w).T, dt)  # CSR of W^T is CSC of W
        xptr, xrows, xdata = csr_arrays(sp.csc_matrix(problem.inputs["x_csc"]).T, dt)
        yt = np.empty((n, m + 16), dt)
        out = np.empty((m, n), dt)
        return _warm(lambda: K.sparse_sparse(wptr, wrows, wdata, xptr, xrows, xdata, yt, out),
                     _single("sparse_sparse.scatter", "W and X by columns: only the effective MACs"))

    # -- lif ---------------------------------------------------------------------------------

    def _prepare_lif(self, problem):
        self._fixed("lif", "lif.events")
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
        colptr = index_array(np.vstack(colptr), largest)
        rows = index_array(np.concatenate(rows), largest)
        data = dense(np.concatenate(data), dt)
        # input spikes as address events per step (what an event-driven core consumes)
        ev = sp.csr_matrix(spikes)
        ev.sort_indices()
        largest = max(ev.nnz, spikes.shape[1])
        sptr, sidx, sval = index_array(ev.indptr, largest), index_array(ev.indices, largest), dense(ev.data, dt)
        consts = dt(1 - prm["du"]), dt(1 - prm["dv"]), dt(prm["bias"]), dt(prm["vth"])
        raster = np.empty((steps, n_out), dt)
        return _warm(lambda: K.lif(bounds, colptr, rows, data, sptr, sidx, sval, *consts, raster),
                     _single("lif.events", "input spikes as events, neuron slices in parallel"))

    # -- moe ------------------------------------------------------------------------------------

    def _prepare_moe(self, problem):
        self._fixed("moe", "moe.grouped")
        dt = problem.dtype
        x = dense(problem.inputs["x"], dt)
        gate = dense(problem.inputs["gate"], dt)
        experts = dense(problem.inputs["experts"], dt)
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

        return _warm(run, _single("moe.grouped", "tokens grouped per expert, one BLAS product each"))

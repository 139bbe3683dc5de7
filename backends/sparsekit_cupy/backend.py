"""``CupyBackend``: sparsekit's kernels on an NVIDIA GPU through CuPy.

What runs where
---------------
* dense_mm: ``cupy.matmul`` (cuBLAS GEMM). float16 is stored as half and CuPy's
  default cuBLAS compute type for it is float32 (accumulate in float, round once:
  the catalogue's half contract). TF32 (``CUPY_TF32=1``, or CuPy's float32 compute
  type set to TF32) would round float32 inputs to 10-bit mantissas and break the
  float32 bound, so every plan whose cuBLAS products run in float32 (dense_mm
  float32, moe float32 and float16) refuses to run under it, unless
  ``NVIDIA_TF32_OVERRIDE=0`` keeps the libraries in full float32
  (``_layout.tf32_requested``).
* spmm csr: cuSPARSE SpMM for float32/float64 with descriptors, workspace and
  scalars bound in prepare (``_cusparse.PreparedSpMM``: the timed call is the SpMM
  alone), X uploaded column-major as the generic API wants, the output column-major
  and zero-filled; our ``csr_spmm`` (thread per output, lanes along X's columns) /
  ``csr_spmv`` (warp per row, n = 1) for float16, which cuSPARSE through CuPy
  lacks, and for an empty W. ``force_csr`` picks a path.
* spmm bsr: our ``bsr_spmm`` (block size compiled in; CuPy has no BSR product);
  spmm nm: our ``ell_spmm`` over column-major ELL (``SpMM.nm_arrays``).
* gather_mm: our ``gather_gemm`` (output tiles from 64 x 64 down to 16 x 16, the
  largest that still gives every SM a block; ``_layout.gather_tile``) reading only
  the selected rows of W (W[rows] is never built); ``gather_gemv`` for n = 1.
* sddmm: our ``sddmm``, a warp per mask nonzero (B transposed in prepare).
* kwta: our exact-k bisection kernel ``kwta`` (32 down to 1 columns per block,
  ``_layout.kwta_launch``); columns longer than ``_layout.KWTA_BISECT_MAX_M`` go
  through ``sparsekit.xp.kwta_select`` (CuPy's argpartition, a sort). ``force_kwta`` picks.
* sparse_sparse: our ``ss_scatter``: W and X by columns, a block per (output
  column, row slice) accumulating in shared memory (or a global scratch when a
  slice does not fit, or with ``force_ss_global``); the result is produced
  transposed on the device (coalesced writes) and returned as Y.
* moe: ``sparsekit.xp.moe_forward`` with ``xp = cupy`` (the same lines the numpy
  backend runs): gate product and routing on the GPU, then per chosen expert one
  gather of its tokens and one cuBLAS GEMM; the expert counts (E integers) are the
  only data brought to the host during the call. float16: products, routing and
  the weighted sum in float32, one rounding to half at the end.

Subnormals: our kernels keep them (``_sources``: no flush-to-zero instruction,
whatever CuPy's ``-ftz=true``); moe's CuPy-generated float32 code may flush them,
declared through ``error_allowance`` (``_layout.ftz_allowance``).

Everything that is not the kernel happens in ``prepare``: layout conversion on
the host (``_layout``), upload, compilation (NVRTC through ``cupy.RawModule``,
cached per (file, dtype, defines) in the instance and by CuPy on disk), and one
warm-up call (module load, cuBLAS/cuSPARSE handles and workspaces). A plan's call
launches on resident arrays and returns after ``stream.synchronize()``.
"""
from __future__ import annotations

import cupy
import numpy as np
from cupyx import cusparse

import sparsekit
from sparsekit import Plan, Unsupported
from sparsekit.dtypes import host_dtype
from sparsekit.problem import Problem
from sparsekit.xp import kwta_select, moe_forward

from . import DTYPES, KERNELS, device_label
from . import _layout as lay
from ._cusparse import PreparedSpMM
from ._probe import probe, selected_index
from ._sources import bind, options, signatures, source

_STORAGE = {"float16": np.float16, "float32": np.float32, "float64": np.float64}
#: options every build gets (NVRTC); the dtype's and the kernel's defines follow
BASE_OPTIONS = ("--std=c++14",)


def _tf32_requested() -> bool:
    """Whether CuPy would run float32 cuBLAS products in TF32 (``_layout.tf32_requested``): CuPy's
    own answer where it can be asked (its compute type also follows ``set_compute_type``)."""
    try:
        from cupy._core import _routines_linalg as linalg

        compute_type = int(linalg.get_compute_type(np.dtype(np.float32)))
    except (ImportError, AttributeError, TypeError):  # another CuPy layout: its documented env rule
        compute_type = None
    return lay.tf32_requested(compute_type)


class CupyOutOfMemory(Unsupported, MemoryError):
    """A problem does not fit the GPU's memory: an ``Unsupported`` (n/a in a sweep), with the sizes."""


class _Launch:
    """One kernel launch with its arguments bound (checked against the kernel's signature)."""

    def __init__(self, fn, grid, block, args, shared_mem: int = 0):
        self.fn, self.grid, self.block, self.args, self.shared_mem = fn, tuple(grid), tuple(block), args, shared_mem

    def __call__(self):
        self.fn(self.grid, self.block, self.args, shared_mem=self.shared_mem)


class CupyBackend(sparsekit.Backend):
    """The ``cupy`` backend on CUDA device ``$SPARSEKIT_CUPY_DEVICE`` (default 0)."""

    name = "cupy"
    supports = KERNELS
    dtypes = DTYPES

    #: tests and measurements: force a strategy instead of the automatic choice
    force_csr = None  # "cusparse", "csr_spmm" or "csr_spmv" (see _layout.choose_csr_path)
    force_kwta = None  # "bisect" or "sort"
    force_ss_global = False  # sparse_sparse: accumulate in the global scratch even when shared fits

    def __init__(self, device: int | None = None):
        index = selected_index() if device is None else int(device)
        desc = probe() if device is None else None
        if desc is not None and not desc.get("ok"):
            raise RuntimeError(desc.get("reason") or "no usable CUDA device")
        self.cuda_device = cupy.cuda.Device(index)
        self.cuda_device.use()
        props = cupy.cuda.runtime.getDeviceProperties(index)
        self.desc = desc or {"index": index, "name": props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
                             "cc": f"{props['major']}{props['minor']}", "memory": int(props["totalGlobalMem"]),
                             "runtime": str(cupy.cuda.runtime.runtimeGetVersion()),
                             "driver": str(cupy.cuda.runtime.driverGetVersion()), "sms": props["multiProcessorCount"]}
        self.shared_per_block = min(int(props["sharedMemPerBlock"]), lay.SHARED_DEFAULT)
        self.sms = int(props["multiProcessorCount"])  # launch shapes are sized to fill them
        self.cuda_stream = cupy.cuda.get_current_stream()  # (``stream()`` is the calibration hook)
        self._modules: dict = {}
        self.builds = 0  # modules compiled by this instance (the tests check the cache)
        self.last_path = None  # the strategy the last prepare chose (csr path, kwta path ...)

    def device(self) -> str:
        return device_label(self.desc)

    def versions(self) -> dict:
        return {"cupy": cupy.__version__, "cuda_runtime": str(self.desc["runtime"]), "driver": str(self.desc["driver"]),
                "compute_capability": self.desc["cc"], "sms": self.desc.get("sms")}

    # -- prepare: dtype check, out-of-memory errors ------------------------------------------

    def prepare(self, problem):
        if isinstance(problem, Problem) and problem.kernel in self.supports and problem.dtype == "bfloat16":
            raise Unsupported("CuPy has no bfloat16 dtype (cuBLAS and our kernels here store float16, float32, float64)")
        if isinstance(problem, Problem) and lay.tf32_affects(problem.kernel, problem.dtype) and _tf32_requested():
            raise Unsupported(f"TF32 is on (CUPY_TF32 or CuPy's float32 compute type): cuBLAS would round the "
                              f"float32 products of {problem.kernel} {problem.dtype} to TF32, outside the float32 error "
                              "bound; unset CUPY_TF32 (or set NVIDIA_TF32_OVERRIDE=0) to measure it")
        try:
            with self.cuda_device:
                return super().prepare(problem)
        except cupy.cuda.memory.OutOfMemoryError as e:
            pool = cupy.get_default_memory_pool()
            free, total = cupy.cuda.runtime.memGetInfo()
            raise CupyOutOfMemory(
                f"{problem.describe()} does not fit the GPU {self.desc['name']!r}: {e}; the device has {total:,} "
                f"bytes, {free:,} free, CuPy's pool holds {pool.total_bytes():,}") from e

    # -- modules and launches --------------------------------------------------------------------

    def function(self, file: str, name: str, dtype: str, defines: dict | None = None):
        """(compiled kernel, its parsed signature) for ``name`` in ``file`` built for ``dtype``."""
        opts = BASE_OPTIONS + options(dtype, defines)
        key = (file, opts)
        entry = self._modules.get(key)
        if entry is None:
            src = source(file)
            mod = cupy.RawModule(code=src, options=opts)
            mod.compile()  # NVRTC now, in prepare, not on the first (timed) launch
            entry = (mod, signatures(src))
            self._modules[key] = entry
            self.builds += 1
        mod, sigs = entry
        return mod.get_function(name), sigs[name]

    def error_allowance(self, problem):
        """moe's CuPy-generated float32 code is built with -ftz=true: see ``_layout.ftz_allowance``."""
        return lay.ftz_allowance(problem)

    def launch(self, file, name, dtype, grid, block, defines=None, shared_mem=0, **values) -> _Launch:
        fn, sig = self.function(file, name, dtype, defines)
        return _Launch(fn, grid, block, bind(name, sig, dtype, values), shared_mem)

    def upload(self, a, dtype: str | None = None):
        """A device copy of ``a`` (in the storage type of ``dtype`` when given)."""
        a = np.asarray(a)
        if dtype is not None:
            a = a.astype(_STORAGE[dtype], copy=False)
        return cupy.asarray(np.ascontiguousarray(a))

    def make_plan(self, problem, work, out_dtype=None) -> Plan:
        """run: ``work()`` (launches or library calls, returning the device result), then synchronise;
        fetch: the result as the problem's host dtype. One warm-up call happens here."""
        stream = self.cuda_stream
        result_dtype = out_dtype or host_dtype(problem.dtype)

        def run():
            out = work()
            stream.synchronize()
            return out

        def fetch(out):
            return np.ascontiguousarray(cupy.asnumpy(out), dtype=result_dtype)

        run()  # warm-up: module load, library handles, workspaces
        return Plan(run, fetch)

    def launches_plan(self, problem, launches, out) -> Plan:
        todo = [ln for ln in launches if all(ln.grid)]  # an empty grid is an empty problem: nothing to launch

        def work():
            for ln in todo:
                ln()
            return out

        return self.make_plan(problem, work)

    # -- dense ---------------------------------------------------------------------------------

    def _prepare_dense_mm(self, p):
        dt = p.dtype
        w, x = self.upload(p.inputs["w"], dt), self.upload(p.inputs["x"], dt)
        y = cupy.empty((w.shape[0], x.shape[1]), dtype=_STORAGE[dt])
        self.last_path = "cublas"
        return self.make_plan(p, lambda: cupy.matmul(w, x, out=y))

    def _prepare_gather_mm(self, p):
        dt = p.dtype
        w, x = self.upload(p.inputs["w"], dt), self.upload(p.inputs["x"], dt)
        rows = self.upload(np.asarray(p.inputs["rows"], dtype=np.int64))
        k, n, r = w.shape[1], x.shape[1], len(rows)
        y = cupy.empty((r, n), dtype=_STORAGE[dt])
        if n == 1:
            self.last_path = "gather_gemv"
            grid, block = lay.warp_per_item_launch(r)
            ln = self.launch("dense.cu", "gather_gemv", dt, grid, block, r=r, k=k, rows=rows, w=w, x=x, y=y)
        else:
            grid, block, tile = lay.gather_gemm_launch(r, n, self.sms)
            self.last_path = f"gather_gemm[{tile['GBM']}x{tile['GBN']}]"
            ln = self.launch("dense.cu", "gather_gemm", dt, grid, block, defines=tile, r=r, n=n, k=k, rows=rows, w=w,
                             x=x, y=y)
        return self.launches_plan(p, [ln], y)

    # -- spmm ------------------------------------------------------------------------------------

    def _prepare_spmm(self, p):
        fmt = p.params["format"]
        if fmt == "csr":
            return self._spmm_csr(p)
        if fmt == "bsr":
            return self._spmm_bsr(p)
        return self._spmm_nm(p)

    def _spmm_csr(self, p):
        dt = p.dtype
        w = lay.canonical_csr(p.inputs["w"])
        (m, k), n = w.shape, p.inputs["x"].shape[1]
        path = lay.choose_csr_path(dt, w.nnz, n, self.force_csr)
        self.last_path = path
        indptr, indices = self.upload(lay.int32(w.indptr)), self.upload(lay.int32(w.indices))
        data = self.upload(w.data, dt)
        if path == "cusparse":
            if not cusparse.check_availability("spmm"):
                raise Unsupported("this CuPy/CUDA has no cuSPARSE generic SpMM (cupyx.cusparse.spmm)")
            xf = cupy.asfortranarray(self.upload(p.inputs["x"], dt))  # the generic API's layout
            c = cupy.zeros((m, n), dtype=_STORAGE[dt], order="F")  # zeros: see _cusparse
            return self.make_plan(p, PreparedSpMM(indptr, indices, data, (m, k), xf, c))
        x = self.upload(p.inputs["x"], dt)
        y = cupy.empty((m, n), dtype=_STORAGE[dt])
        if path == "csr_spmv":
            grid, block = lay.warp_per_item_launch(m)
            ln = self.launch("spmm.cu", "csr_spmv", dt, grid, block, m=m, indptr=indptr, indices=indices,
                             data=data, x=x, y=y)
        else:
            grid, block = lay.rows_by_columns_launch("csr_spmm", m, n)
            ln = self.launch("spmm.cu", "csr_spmm", dt, grid, block, m=m, n=n, indptr=indptr, indices=indices,
                             data=data, x=x, y=y)
        return self.launches_plan(p, [ln], y)

    def _spmm_bsr(self, p):
        dt = p.dtype
        bh, bw = (int(b) for b in p.params["blocksize"])
        indptr, indices, blocks = lay.bsr_arrays(p.inputs["w"], (bh, bw))
        m, n = p.inputs["w"].shape[0], p.inputs["x"].shape[1]
        x = self.upload(p.inputs["x"], dt)
        y = cupy.empty((m, n), dtype=_STORAGE[dt])
        grid, block = lay.rows_by_columns_launch("bsr_spmm", m // bh, n)
        self.last_path = "bsr_spmm"
        ln = self.launch("spmm.cu", "bsr_spmm", dt, grid, block, defines={"BH": bh, "BW": bw}, mb=m // bh, n=n,
                         indptr=self.upload(indptr), indices=self.upload(indices), blocks=self.upload(blocks, dt),
                         x=x, y=y)
        return self.launches_plan(p, [ln], y)

    def _spmm_nm(self, p):
        dt = p.dtype
        cols, vals = lay.ell_arrays(p.inputs["w"])  # r x m each
        r, m = cols.shape[0], p.inputs["w"].shape[0]
        n = p.inputs["x"].shape[1]
        x = self.upload(p.inputs["x"], dt)
        y = cupy.empty((m, n), dtype=_STORAGE[dt])
        grid, block = lay.rows_by_columns_launch("ell_spmm", m, n)
        self.last_path = "ell_spmm"
        ln = self.launch("spmm.cu", "ell_spmm", dt, grid, block, m=m, n=n, r=r, cols=self.upload(cols),
                         vals=self.upload(vals, dt), x=x, y=y)
        return self.launches_plan(p, [ln], y)

    # -- sddmm -----------------------------------------------------------------------------------

    def _prepare_sddmm(self, p):
        dt = p.dtype
        rows, cols = lay.coo_of_mask(lay.canonical_csr(p.inputs["mask"]))
        a = self.upload(p.inputs["a"], dt)
        bt = self.upload(np.ascontiguousarray(p.inputs["b"].T), dt)  # rows of B^T contiguous
        nnz, k = len(rows), a.shape[1]
        out = cupy.empty(nnz, dtype=_STORAGE[dt])
        grid, block = lay.warp_per_item_launch(nnz)
        self.last_path = "sddmm"
        ln = self.launch("sddmm.cu", "sddmm", dt, grid, block, nnz=nnz, k=k, rows=self.upload(rows),
                         cols=self.upload(cols), a=a, bt=bt, out=out)
        return self.launches_plan(p, [ln], out)

    # -- kwta ------------------------------------------------------------------------------------

    def _prepare_kwta(self, p):
        dt = p.dtype
        x = self.upload(p.inputs["x"], dt)
        m, n = x.shape
        k = int(p.params["k"])
        path = lay.choose_kwta_path(m, self.force_kwta)
        self.last_path = path
        if path == "sort":
            return self.make_plan(p, lambda: kwta_select(cupy, x, k))
        y = cupy.empty_like(x)
        grid, block = lay.kwta_launch(n, self.sms)
        self.last_path = f"bisect[{block[0]} columns/block]"
        ln = self.launch("kwta.cu", "kwta", dt, grid, block, m=m, n=n, k=k, x=x, y=y)
        return self.launches_plan(p, [ln], y)

    # -- sparse_sparse -----------------------------------------------------------------------------

    def _prepare_sparse_sparse(self, p):
        dt = p.dtype
        wptr, wrow, wval = lay.csc_arrays(lay.canonical_csr(p.inputs["w"]))
        xptr, xrow, xval = lay.csc_arrays(p.inputs["x_csc"])
        (m, k), n = p.inputs["w"].shape, p.inputs["x"].shape[1]
        acc = np.dtype(np.float64 if dt == "float64" else np.float32)
        grid, threads, shared_bytes, shared = lay.ss_launch(m, n, len(wrow), k, acc.itemsize, self.shared_per_block,
                                                            self.sms, force_global=self.force_ss_global)
        self.last_path = ("ss_shared" if shared else "ss_global") + f"[{grid[1]} slices]"
        scratch = cupy.empty(1 if shared else n * m, dtype=acc)
        yt = cupy.empty((n, m), dtype=_STORAGE[dt])  # Y transposed: each block's writes are contiguous
        ln = self.launch("sparse_sparse.cu", "ss_scatter", dt, grid, (threads,), shared_mem=shared_bytes,
                         m=m, n=n, use_shared=int(shared),
                         wptr=self.upload(wptr), wrow=self.upload(wrow), wval=self.upload(wval, dt),
                         xptr=self.upload(xptr), xrow=self.upload(xrow), xval=self.upload(xval, dt),
                         scratch=scratch, yt=yt)
        return self.launches_plan(p, [ln], yt.T)  # a view made here: the call returns it, fetch copies it

    # -- moe --------------------------------------------------------------------------------------

    def _prepare_moe(self, p):
        dt = p.dtype
        x, gate, experts = (self.upload(p.inputs[key], dt) for key in ("x", "gate", "experts"))
        top_k = int(p.params["top_k"])
        # half: products, routing and the weighted sum in float32, one rounding at the end (moe_forward)
        wide = np.float32 if dt == "float16" else None
        self.last_path = "xp.moe_forward"
        return self.make_plan(p, lambda: moe_forward(cupy, x, gate, experts, top_k, acc_dtype=wide, route_dtype=wide))

    # -- calibration hook (sparsekit.calibrate) -------------------------------------------------

    def stream(self, kind: str, n_bytes: int, passes: int = 1) -> Plan | None:
        """STREAM copy (a = b) or triad (a = b + 3 c) over float64 device arrays of ``n_bytes`` each:
        device-to-device traffic, the roof the gather kernel is compared with. The triad is one
        elementwise kernel (3 words per element, as STREAM counts), compiled by its warm-up here.
        One pass per call; ``read``: None (not measured here)."""
        if kind == "read":
            return None
        if kind not in ("copy", "triad"):
            raise ValueError(f"unknown STREAM kernel {kind!r}: choose 'copy' or 'triad'")
        n = int(n_bytes) // 8
        if n < 1:
            raise ValueError(f"n_bytes must be at least 8, got {n_bytes}")
        with self.cuda_device:
            a = cupy.zeros(n, dtype=np.float64)  # zeros: allocated and touched here, not timed
            b = cupy.full(n, 1.0, dtype=np.float64)
            if kind == "copy":
                work = lambda: cupy.copyto(a, b)  # noqa: E731 - a device-to-device cudaMemcpyAsync
            else:
                c = cupy.full(n, 2.0, dtype=np.float64)
                triad = cupy.ElementwiseKernel("float64 b, float64 c", "float64 a", "a = b + 3.0 * c", "sparsekit_triad")
                work = lambda: triad(b, c, a)  # noqa: E731
        stream = self.cuda_stream

        def run():
            work()
            stream.synchronize()

        run()  # warm-up (and the triad's compilation)
        return Plan(run, fetch=lambda out: np.empty(0))

"""``OpenCLBackend``: sparsekit's kernels in our own OpenCL C, on any OpenCL device.

What runs where
---------------
Everything that is not the kernel happens in ``prepare``: the conversion of W to
the layout a kernel wants (CSR, BSR blocks, ELL for N:M, CSC for sparse x
sparse, B transposed for SDDMM), the casts and paddings, the checks of every
buffer against the device's limits, the uploads, the program builds and one
warm-up launch (PoCL, like several drivers, compiles a kernel for a work-group
size on its first launch). A plan's call enqueues its kernel(s) on resident
buffers and waits (``queue.finish()``); fetching the result is not timed.

Programs are built once per (context, source, options) and kept in the backend
instance (the registry caches the instance), so a test run or a sweep builds each
kernel variant once per process; PyOpenCL and PoCL also keep binaries on disk.
The sources are the ``*.cl`` files next to this module (``common.cl`` is put in
front of each).

Two kernel styles
-----------------
``gpu`` (GPUs and accelerators): one output element per work-item with
neighbouring work-items on neighbouring columns (coalesced), local-memory
tiling (GEMM) and local-memory reductions (GEMV, CSR vector, SDDMM, k-WTA).
``cpu`` (CPU devices, e.g. PoCL): a work-group runs on one core and its
work-items in turn, local memory is ordinary memory and a barrier splits the
kernel into loops, so the kernels use explicit OpenCL vectors of ``SIMD_BYTES``
instead: register-blocked GEMM, rows of X read as vectors, one work-item per
column block for k-WTA and per output column for sparse x sparse. On PoCL
(2-core AMD EPYC) these run 2x (sparse x sparse) to 20-30x (GEMM, gather) faster
than the gpu style, e.g. dense_mm 4096x4096x128 in 28 ms instead of 610 ms; the
gpu style is still correct there, and the tests run it with ``style="gpu"``.

Types: float32 always; float64 when the device has cl_khr_fp64; float16 when it
has cl_khr_fp16 (stored as half, summed in float, rounded once: the catalogue's
half-precision contract); bfloat16 never. No fast-math build option is used
(FMA contraction, the OpenCL C default, is allowed by the rounding bound).

Kernels (file: kernel names)
----------------------------
* dense_mm, gather_mm (dense.cl): ``gemm`` local-memory tiled GEMM, 64x64 tiles
  with 4x4 register blocks (gpu); ``gemm_vec`` register-blocked 6 rows x 2
  vectors (cpu); ``gemv`` / ``gemv_vec`` for one column. Built with -DGATHER,
  the same kernels read W row ``rows[r]`` for output row r: only the selected
  rows are loaded, W[rows] is never built.
* spmm (spmm.cl): CSR ``csr_scalar`` / ``csr_vector`` (below), BSR ``bsr`` (block
  size compiled in), N:M ``ell`` over ``SpMM.nm_arrays`` (column-major on a GPU,
  row-major on a CPU).
* sddmm (sddmm.cl): a dot product per mask nonzero only, A and B^T rows
  contiguous: lanes + local reduction (gpu), vectors (cpu).
* kwta (kwta.cl): per column the K-th largest value by bisection on the
  order-preserving integer keys of the floats; entries above it kept, ties kept
  in row order up to exactly K.
* sparse_sparse (sparse_sparse.cl): X's columns compressed (CSC) and W by columns
  (CSC): column j of Y accumulates only the columns of W that X[:, j]'s nonzeros
  select (effective MACs only), in local memory when a column fits, else in a
  global scratch then transposed.

CSR strategy (spmm, format csr)
-------------------------------
``csr_scalar`` gives every row (and block of columns of X) to one work-item;
``csr_vector`` gives every row (and tile of columns of X) to a work-group whose
lanes split the row's nonzeros and reduce in local memory. ``choose_csr_strategy``
picks vector when the mean row length nnz / m reaches ``VECTOR_MIN_MEAN_ROW``
(gpu style) or ``VECTOR_MIN_MEAN_ROW_CPU`` (cpu style); see those constants.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pyopencl as cl
import scipy.sparse as sp

import sparsekit
from sparsekit import Plan, Unsupported
from sparsekit.dtypes import host_dtype
from sparsekit.kernels.spmm import SpMM
from sparsekit.problem import Problem

from . import KERNELS, device_label, dtypes_for
from ._probe import describe, open_device

HERE = Path(__file__).resolve().parent

#: Mean row length (nnz / m) from which spmm CSR uses the vector strategy, gpu style.
#: Not measurable on this project's hosts (no GPU OpenCL); the CSR-vector literature
#: (Bell & Garland 2009; Greathouse & Daga's CSR-adaptive 2014) puts the crossover
#: where a row fills a good part of a 32-wide warp/wavefront: 32 nonzeros.
VECTOR_MIN_MEAN_ROW = 32.0
#: The same on CPU devices: never. Measured on PoCL (2-core AMD EPYC), mean row
#: lengths 2 to 8192 and n = 1, 16, 128: the vector strategy is 1.6-7.6x slower
#: everywhere. A work-group runs on one core, so splitting a row among its lanes
#: adds a local reduction and barriers and gains no parallelism.
VECTOR_MIN_MEAN_ROW_CPU = math.inf

#: SIMD width of the cpu style's vectors (AVX2, 8 floats: PoCL's LLVM 14 fails on 16-wide ones)
SIMD_BYTES = 32
#: cpu-style spmm (csr, bsr, nm): vectors of VW columns per work-item (up to CSR_NV), and
#: independent partial sums per output (n == 1: one column, so the row is split: CSR_SPLIT_1)
CSR_NV = 4
CSR_SPLIT = 2
CSR_SPLIT_1 = 4
#: cpu-style matrix-vector product: rows per work-item, work-items per group
GEMV_RM = 4
GEMV_LOCAL = 16
#: cpu-style GEMM: rows x vectors (of VW columns) per work-item (6 x 2 = 12 accumulators: fits
#: the 16 AVX2 registers, 150 GFLOP/s on 2 cores where 8 x 2 spills and gives 80), rows of
#: work-items per group
GEMM_RM = 6
GEMM_NV = 2
GEMM_LOCAL = 8

_INT32_MAX = 2**31 - 1
_OOM_NAMES = ("MEM_OBJECT_ALLOCATION_FAILURE", "OUT_OF_RESOURCES", "OUT_OF_HOST_MEMORY")
_OOM_CODES = {getattr(cl.status_code, n) for n in _OOM_NAMES if hasattr(cl.status_code, n)}


class OpenCLBuildError(RuntimeError):
    """An OpenCL program failed to build; the message carries the compiler's build log."""

    def __init__(self, label: str, device: str, options, log: str):
        self.log = log
        self.options = list(options)
        super().__init__(f"OpenCL build of {label} failed on {device} (options: {' '.join(options) or 'none'}); "
                         f"build log:\n{log.strip() or '(empty)'}")


class OpenCLOutOfResources(Unsupported, MemoryError):
    """A problem does not fit the device (largest allocation, global memory, or the driver said so).

    An ``Unsupported``: a sweep shows the point as n/a with this reason instead of crashing."""


def _pow2ceil(x: int) -> int:
    return 1 << max(int(x) - 1, 0).bit_length()


def _pow2floor(x: int) -> int:
    return 1 << (max(int(x), 1).bit_length() - 1)


def _roundup(x: int, step: int) -> int:
    return -(-int(x) // step) * step


def _human(nbytes: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return ""  # pragma: no cover


_SOURCES: dict[str, str] = {}


def source(name: str) -> str:
    """common.cl followed by ``name`` (e.g. ``"spmm.cl"``), read once per process."""
    if name not in _SOURCES:
        _SOURCES[name] = (HERE / "common.cl").read_text() + "\n" + (HERE / name).read_text()
    return _SOURCES[name]


def choose_csr_strategy(mean_row: float, style: str) -> str:
    """``"vector"`` when rows are long enough for a work-group each (see the thresholds), else ``"scalar"``."""
    threshold = VECTOR_MIN_MEAN_ROW_CPU if style == "cpu" else VECTOR_MIN_MEAN_ROW
    return "vector" if mean_row >= threshold else "scalar"


def gemm_variant(style: str) -> str:
    """``"vec"`` (register-blocked, explicit vectors) for the cpu style, ``"tiled"`` (local memory) for gpu."""
    return "vec" if style == "cpu" else "tiled"


def kwta_vector(style: str, n: int) -> bool:
    """One work-item per block of adjacent columns (the cpu style, or a GPU with columns enough for a
    work-item each) rather than a work-group per column, whose lanes split the rows."""
    return style == "cpu" or n >= 4096


def ss_local_accumulator(accumulator_bytes: int, local_mem: int) -> bool:
    """sparse_sparse: accumulate an output column in local memory when it fits (at most half the
    device's local memory and 32 KiB); else in global memory, written transposed."""
    return accumulator_bytes <= min(local_mem // 2, 32 * 1024)


def ss_lanes(style: str, mean_col: float) -> int:
    """sparse_sparse: work-items per output column. GPU: lanes enough for a column of W; CPU: one
    (a work-group runs on one core anyway, and lanes would only add barriers: measured 1.5-2x slower)."""
    return 1 if style == "cpu" else max(1, min(128, _pow2ceil(max(int(mean_col), 1))))


def _int32(a) -> np.ndarray:
    a = np.asarray(a)
    if a.size and (a.max() > _INT32_MAX or a.min() < 0):
        raise Unsupported("an index exceeds the 32-bit range the OpenCL kernels use")
    return np.ascontiguousarray(a, dtype=np.int32)


def _canonical_csr(w) -> sp.csr_matrix:
    w = sp.csr_matrix(w)
    if not w.has_canonical_format:
        w = w.copy()
        w.sum_duplicates()
    return w


class _Launch:
    """One kernel with its arguments bound, and its global and local sizes."""

    def __init__(self, kernel, gsize, lsize, *args):
        self.kernel = kernel
        self.gsize = tuple(int(g) for g in gsize)
        self.lsize = tuple(int(s) for s in lsize) if lsize is not None else None
        kernel.set_args(*args)


class OpenCLBackend(sparsekit.Backend):
    """The ``opencl`` backend.

    ``device``: a ``SPARSEKIT_OPENCL_DEVICE``-style selection (default: that variable).
    ``style``: ``"cpu"`` or ``"gpu"`` kernels (default: ``"cpu"`` on a CPU device).
    ``allow_fp16``: run float16 even without cl_khr_fp16 (the half path uses only the
    core ``vload_half``/``vstore_half``; for the tests, which check it on PoCL).
    """

    name = "opencl"
    supports = KERNELS

    def __init__(self, device: str | None = None, style: str | None = None, allow_fp16: bool = False):
        dev, index = open_device(device)
        self.cl_device = dev
        self.desc = describe(dev, index)
        self.ctx = cl.Context([dev])
        self.queue = cl.CommandQueue(self.ctx, dev)
        self.dtypes = dtypes_for(self.desc["fp64"], self.desc["fp16"] or allow_fp16)
        self.max_alloc = int(dev.max_mem_alloc_size)
        self.global_mem = int(dev.global_mem_size)
        self.local_mem = int(dev.local_mem_size)
        self.max_wg = int(dev.max_work_group_size)
        self.max_item_sizes = [int(s) for s in dev.max_work_item_sizes]
        self.base_align_bits = int(dev.mem_base_addr_align)
        if style is None:
            style = "cpu" if dev.type & cl.device_type.CPU else "gpu"
        if style not in ("cpu", "gpu"):
            raise ValueError(f"style must be 'cpu' or 'gpu', got {style!r}")
        self.style = style
        self._programs: dict = {}
        self._asked = 0
        self.last_csr_strategy = None

    @property
    def is_cpu(self) -> bool:
        return self.style == "cpu"

    # -- description ---------------------------------------------------------------

    def device(self) -> str:
        return device_label(self.desc)

    def versions(self) -> dict:
        return {
            "pyopencl": cl.VERSION_TEXT,
            "opencl": self.desc["version"],
            "device_version": self.desc["version_string"],
            "platform": f"{self.desc['platform']} ({self.desc['platform_version']})",
            "driver": self.desc["driver"],
            "compute_units": self.desc["compute_units"],
            "kernel_style": self.style,
        }

    def _dtype_reason(self, dtype: str) -> str:
        dev = self.desc["name"]
        if dtype == "bfloat16":
            return "OpenCL C has no bfloat16 type"
        if dtype == "float16":
            return f"float16 needs the cl_khr_fp16 extension, which the OpenCL device {dev!r} does not report"
        if dtype == "float64":
            return f"float64 needs the cl_khr_fp64 extension, which the OpenCL device {dev!r} does not report"
        return f"backend 'opencl' does not do dtype {dtype}"

    # -- prepare: dtype check, resource errors ----------------------------------------

    def prepare(self, problem):
        if isinstance(problem, Problem) and problem.kernel in self.supports and problem.dtype not in self.dtypes:
            raise Unsupported(self._dtype_reason(problem.dtype))
        self._asked = 0
        try:
            return super().prepare(problem)
        except cl.MemoryError as e:
            raise self._driver_oom(problem, e) from e
        except cl.Error as e:
            code = getattr(getattr(e, "args", [None])[0], "code", None)
            if code in _OOM_CODES or any(n in str(e) for n in _OOM_NAMES):
                raise self._driver_oom(problem, e) from e
            raise

    def _driver_oom(self, problem, e) -> OpenCLOutOfResources:
        return OpenCLOutOfResources(
            f"{problem.describe()} does not fit the OpenCL device {self.desc['name']!r}: it asked for "
            f"{self._asked:,} bytes ({_human(self._asked)}) of buffers; the device's largest allocation "
            f"(CL_DEVICE_MAX_MEM_ALLOC_SIZE) is {self.max_alloc:,} bytes ({_human(self.max_alloc)}) and its global "
            f"memory {self.global_mem:,} bytes ({_human(self.global_mem)}); the driver said: {e}")

    def check_sizes(self, problem, sizes: dict) -> None:
        """Raise ``OpenCLOutOfResources`` naming the buffer, the bytes asked and the limit, before allocating."""
        dev = self.desc["name"]
        for what, nbytes in sizes.items():
            if nbytes > self.max_alloc:
                raise OpenCLOutOfResources(
                    f"{problem.describe()}: the {what} buffer needs {nbytes:,} bytes ({_human(nbytes)}), more than "
                    f"the OpenCL device {dev!r} allows in one allocation (CL_DEVICE_MAX_MEM_ALLOC_SIZE = "
                    f"{self.max_alloc:,} bytes, {_human(self.max_alloc)})")
        total = sum(sizes.values())
        if total > self.global_mem:
            raise OpenCLOutOfResources(
                f"{problem.describe()}: its buffers need {total:,} bytes ({_human(total)}) in all, more than the "
                f"global memory of the OpenCL device {dev!r} (CL_DEVICE_GLOBAL_MEM_SIZE = {self.global_mem:,} "
                f"bytes, {_human(self.global_mem)})")
        self._asked = total

    # -- programs ------------------------------------------------------------------

    def build(self, src: str, options=(), label: str = "program") -> cl.Program:
        """The built program for (this context, ``src``, ``options``), built at most once per instance.

        A build failure raises ``OpenCLBuildError`` carrying the compiler's log."""
        options = tuple(options)
        key = (self.ctx.int_ptr, src, options)
        prg = self._programs.get(key)
        if prg is not None:
            return prg
        prg = cl.Program(self.ctx, src)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", cl.CompilerWarning)
                prg.build(options=list(options), devices=[self.cl_device])
        except cl.Error as e:
            try:
                log = prg._get_prg().get_build_info(self.cl_device, cl.program_build_info.LOG)
            except Exception:  # noqa: BLE001 - the exception text carries the log too
                log = str(e)
            raise OpenCLBuildError(label, self.desc["name"], options, log) from None
        self._programs[key] = prg
        return prg

    def _dtype_options(self, dtype: str) -> tuple:
        opts = {"float32": (), "float64": ("-DUSE_FP64",), "float16": ("-DSTORE_HALF",)}[dtype]
        if self.base_align_bits < SIMD_BYTES * 8:  # buffers may start unaligned for a vector
            opts += ("-DUNALIGNED",)
        return opts

    def kernel(self, file: str, name: str, dtype: str, defines: dict | None = None) -> cl.Kernel:
        """A fresh kernel object (its own argument slots) from the cached program."""
        opts = self._dtype_options(dtype) + tuple(f"-D{k}={v}" for k, v in sorted((defines or {}).items()))
        prg = self.build(source(file), opts, label=f"{file} ({dtype}{', ' if defines else ''}"
                         f"{', '.join(f'{k}={v}' for k, v in sorted((defines or {}).items()))})")
        return cl.Kernel(prg, name)

    def _wg_limit(self, knl) -> int:
        return min(self.max_wg, int(knl.get_work_group_info(cl.kernel_work_group_info.WORK_GROUP_SIZE, self.cl_device)))

    def _fits(self, knl, local) -> bool:
        if math.prod(local) > self._wg_limit(knl):
            return False
        if any(s > lim for s, lim in zip(local, self.max_item_sizes)):
            return False
        used = int(knl.get_work_group_info(cl.kernel_work_group_info.LOCAL_MEM_SIZE, self.cl_device))
        return used <= self.local_mem

    def fixed_kernel(self, file, name, dtype, candidates):
        """The first of ``candidates`` ((defines, local size), best first) the device can run.

        For kernels whose local size is fixed at compile time (reqd_work_group_size)."""
        for defines, local in candidates:
            if math.prod(local) > self.max_wg or any(s > lim for s, lim in zip(local, self.max_item_sizes)):
                continue
            knl = self.kernel(file, name, dtype, defines)
            if self._fits(knl, local):
                return knl, defines, local
        raise Unsupported(f"no work-group size of {name} fits the OpenCL device {self.desc['name']!r} "
                          f"(max work-group size {self.max_wg}, local memory {self.local_mem} bytes)")

    def free_local(self, knl, lx: int, rows: int):
        """(lx, ly) with lx * ly within the kernel's and device's limits, ly up to ``rows`` (a power of two)."""
        limit = self._wg_limit(knl)
        lx = max(1, min(lx, limit, self.max_item_sizes[0]))
        ly = max(1, min(_pow2floor(max(limit // lx, 1)), _pow2ceil(max(rows, 1)), self.max_item_sizes[1]))
        return lx, ly

    # -- buffers and plans -------------------------------------------------------------

    def _storage(self, dtype: str) -> np.dtype:
        return np.dtype({"float16": np.float16, "float32": np.float32, "float64": np.float64}[dtype])

    def _acc(self, dtype: str) -> np.dtype:
        return np.dtype(np.float64 if dtype == "float64" else np.float32)

    def upload(self, bufs: list, a: np.ndarray):
        a = np.ascontiguousarray(a)
        if a.size == 0:  # OpenCL has no zero-size buffers
            a = np.zeros(1, a.dtype)
        buf = cl.Buffer(self.ctx, cl.mem_flags.READ_ONLY | cl.mem_flags.COPY_HOST_PTR, hostbuf=a)
        bufs.append(buf)
        return buf

    def scratch(self, bufs: list, nbytes: int):
        buf = cl.Buffer(self.ctx, cl.mem_flags.READ_WRITE, size=max(int(nbytes), 8))
        bufs.append(buf)
        return buf

    def make_plan(self, problem, launches, out, shape, bufs, cols: int | None = None) -> Plan:
        """run: enqueue every launch, wait; fetch: copy ``out`` back as the problem's host dtype
        (its first ``cols`` columns when the device buffer is padded)."""
        queue = self.queue
        storage = self._storage(problem.dtype)
        result_dtype = host_dtype(problem.dtype)
        work = [(ln.kernel, ln.gsize, ln.lsize) for ln in launches if all(ln.gsize)]

        def run():
            for knl, g, loc in work:
                cl.enqueue_nd_range_kernel(queue, knl, g, loc)
            queue.finish()
            return out

        def fetch(buf):
            host = np.empty(shape, storage)
            if host.size:
                cl.enqueue_copy(queue, host, buf, is_blocking=True)
            if cols is not None and cols != shape[1]:
                host = host[:, :cols]
            return np.ascontiguousarray(host, dtype=result_dtype)

        def close():
            for b in bufs:
                b.release()
            bufs.clear()

        run()  # warm-up: per-work-group-size compilation (PoCL) and first touch are not the kernel
        return Plan(run, fetch, close)

    def _dense(self, a, dtype) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=self._storage(dtype))

    # -- dense_mm and gather_mm -----------------------------------------------------------

    def _gemm_candidates(self, n: int):
        wide = [dict(TSM=64, TSN=64, TSK=16, WPTM=4, WPTN=4), dict(TSM=32, TSN=32, TSK=16, WPTM=4, WPTN=4),
                dict(TSM=16, TSN=16, TSK=8, WPTM=2, WPTN=2)]
        narrow = [dict(TSM=128, TSN=16, TSK=16, WPTM=8, WPTN=1), dict(TSM=64, TSN=16, TSK=16, WPTM=8, WPTN=2),
                  dict(TSM=16, TSN=16, TSK=8, WPTM=2, WPTN=2)]
        out = []
        for d in (wide if n > 32 else narrow):
            out.append((d, (d["TSN"] // d["WPTN"], d["TSM"] // d["WPTM"])))
        return out

    def _product(self, problem, w, x, rows=None):
        """Y = W @ X, or W[rows] @ X when ``rows`` is given (gather: only those rows are read)."""
        dt = problem.dtype
        k, n = x.shape
        m = len(rows) if rows is not None else w.shape[0]
        item = self._storage(dt).itemsize
        variant = gemm_variant(self.style)
        if n == 1:
            variant = "gemv_vec" if variant == "vec" else "gemv"
        npad = n
        if variant == "vec":
            # a work-item's columns are NV vectors of VW: X and Y are padded to a multiple
            vw, nv, npad = self.vec_layout(n, dt, nv=GEMM_NV)
        sizes = {"W": w.size * item, "X": k * npad * item, "Y": m * npad * item}
        if rows is not None:
            sizes["rows"] = len(rows) * 4
        self.check_sizes(problem, sizes)
        gather = {"GATHER": 1} if rows is not None else {}
        bufs: list = []
        wb, xb = self.upload(bufs, self._dense(w, dt)), self.upload(bufs, self._padded_x(x, dt, npad))
        extra = (self.upload(bufs, _int32(rows)),) if rows is not None else ()
        yb = self.scratch(bufs, m * npad * item)
        launches = []
        if m > 0:
            if variant == "gemv_vec":
                vw = SIMD_BYTES // self._acc(dt).itemsize
                knl = self.kernel("dense.cl", "gemv_vec", dt, {"VW": vw, "GEMV_RM": GEMV_RM, **gather,
                                                                 **({"K_ALIGNED": 1} if k % vw == 0 else {})})
                loc = self.free_local(knl, GEMV_LOCAL, rows=1)
                launches.append(_Launch(knl, (_roundup(-(-m // GEMV_RM), loc[0]),), loc[:1],
                                        np.int32(m), np.int32(k), wb, xb, yb, *extra))
            elif variant == "gemv":
                lanes = min(64, _pow2ceil(k))
                cands = []
                for total in (256, 128, 64, 32, 16, 8, 4, 2, 1):
                    ln = min(lanes, total)
                    cands.append(({"LANES": ln, "ROWS": total // ln, **gather}, (ln, total // ln)))
                knl, defs, loc = self.fixed_kernel("dense.cl", "gemv", dt, cands)
                launches.append(_Launch(knl, (loc[0], _roundup(m, loc[1])), loc,
                                        np.int32(m), np.int32(k), wb, xb, yb, *extra))
            elif variant == "vec":
                rm = GEMM_RM
                knl = self.kernel("dense.cl", "gemm_vec", dt, {"VW": vw, "NV": nv, "RM": rm, **gather})
                gx, gy = npad // (vw * nv), -(-m // rm)
                # the work-items sharing rows of W in one group (run back to back on a CPU: W is read once)
                loc = self.free_local(knl, min(_pow2ceil(gx), 16), rows=GEMM_LOCAL)
                launches.append(_Launch(knl, (_roundup(gx, loc[0]), _roundup(gy, loc[1])), loc,
                                        np.int32(m), np.int32(npad), np.int32(k), wb, xb, yb, *extra))
            else:
                cands = [({**d, **gather}, loc) for d, loc in self._gemm_candidates(n)]
                knl, defs, loc = self.fixed_kernel("dense.cl", "gemm", dt, cands)
                g = (_roundup(n, defs["TSN"]) // defs["WPTN"], _roundup(m, defs["TSM"]) // defs["WPTM"])
                launches.append(_Launch(knl, g, loc, np.int32(m), np.int32(n), np.int32(k), wb, xb, yb, *extra))
        return self.make_plan(problem, launches, yb, (m, npad), bufs, cols=n)

    def _prepare_dense_mm(self, problem):
        return self._product(problem, problem.inputs["w"], problem.inputs["x"])

    def _prepare_gather_mm(self, problem):
        rows = np.asarray(problem.inputs["rows"])
        return self._product(problem, problem.inputs["w"], problem.inputs["x"], rows=rows)

    # -- spmm -----------------------------------------------------------------------------

    def _prepare_spmm(self, problem):
        fmt = problem.params["format"]
        if fmt == "csr":
            return self._spmm_csr(problem)
        if fmt == "bsr":
            return self._spmm_bsr(problem)
        return self._spmm_nm(problem)

    def vec_layout(self, n: int, dtype: str, nv: int = 2) -> tuple:
        """(VW, NV, NP): vector width, vectors per work-item, padded column count (see spmm.cl).

        GPU, or a single column: (1, 1, n). CPU: VW = the SIMD width in the accumulator type
        (``SIMD_BYTES``), NV up to ``nv``, NP = n rounded up to VW x NV."""
        if not self.is_cpu or n == 1:
            return 1, 1, n
        vw = max(2, min(_pow2ceil(n), SIMD_BYTES // self._acc(dtype).itemsize))
        nv = max(1, min(nv, -(-n // vw)))
        return vw, nv, _roundup(n, vw * nv)

    def _padded_x(self, x, dtype, npad):
        k, n = x.shape
        if npad == n:
            return self._dense(x, dtype)
        xp = np.zeros((k, npad), self._storage(dtype))
        xp[:, :n] = x
        return xp

    def csr_strategy(self, w) -> str:
        return choose_csr_strategy(w.nnz / max(w.shape[0], 1), self.style)

    def _rows_launch(self, knl, m, npad, vw, nv, *args):
        """Work-items (column group, row): dimension 0 over the NP / (VW NV) column groups; up to
        128 work-items a group, but groups enough for 4 per compute unit when rows are few."""
        groups = npad // (vw * nv)
        lx = min(_pow2ceil(groups), 64)
        spread = _pow2floor(max(m // (4 * self.desc["compute_units"]), 1))
        loc = self.free_local(knl, lx, rows=max(min(128 // lx, spread), 1))
        return _Launch(knl, (_roundup(groups, loc[0]), _roundup(m, loc[1])), loc, *args)

    def _spmm_csr(self, problem, strategy: str | None = None):
        dt = problem.dtype
        w = _canonical_csr(problem.inputs["w"])
        x = problem.inputs["x"]
        m, (k, n) = w.shape[0], x.shape
        strategy = strategy or self.csr_strategy(w)
        self.last_csr_strategy = strategy
        if strategy == "vector":
            vw, nv, npad = self.vec_layout(n, dt, nv=1)
        else:
            vw, nv, npad = self.vec_layout(n, dt, nv=CSR_NV)
        item = self._storage(dt).itemsize
        self.check_sizes(problem, {"W values": w.nnz * item, "W indices": w.nnz * 4, "W row pointers": (m + 1) * 4,
                                   "X": k * npad * item, "Y": m * npad * item})
        bufs: list = []
        ptr, idx = self.upload(bufs, _int32(w.indptr)), self.upload(bufs, _int32(w.indices))
        val, xb = self.upload(bufs, self._dense(w.data, dt)), self.upload(bufs, self._padded_x(x, dt, npad))
        yb = self.scratch(bufs, m * npad * item)
        args = (np.int32(m), np.int32(npad), ptr, idx, val, xb, yb)
        if strategy == "vector":
            tn = min(_pow2ceil(npad // vw), 32)
            mean_row = w.nnz / max(m, 1)
            cands = []
            for total in (256, 128, 64, 32, 16, 8, 4, 2):
                t = min(tn, total // 2)
                lanes = max(2, min(total // t, _pow2ceil(max(int(mean_row), 1))))
                if ({"TN": t, "VLANES": lanes, "VW": vw}, (t, lanes)) not in cands:
                    cands.append(({"TN": t, "VLANES": lanes, "VW": vw}, (t, lanes)))
            knl, defs, loc = self.fixed_kernel("spmm.cl", "csr_vector", dt, cands)
            launch = _Launch(knl, (_roundup(npad // vw, loc[0]), m * loc[1]), loc, *args)
        else:
            split = CSR_SPLIT_1 if n == 1 else CSR_SPLIT
            knl = self.kernel("spmm.cl", "csr_scalar", dt, {"VW": vw, "NV": nv, "SPLIT": split})
            launch = self._rows_launch(knl, m, npad, vw, nv, *args)
        return self.make_plan(problem, [launch], yb, (m, npad), bufs, cols=n)

    def _spmm_bsr(self, problem):
        dt = problem.dtype
        bh, bw = (int(b) for b in problem.params["blocksize"])
        wb = _canonical_csr(problem.inputs["w"]).tobsr(blocksize=(bh, bw))
        wb.sort_indices()
        x = problem.inputs["x"]
        m, (k, n) = wb.shape[0], x.shape
        vw, nv, npad = self.vec_layout(n, dt, nv=CSR_NV)
        item = self._storage(dt).itemsize
        nnzb = len(wb.indices)
        self.check_sizes(problem, {"W blocks": nnzb * bh * bw * item, "W block indices": nnzb * 4,
                                   "W block-row pointers": (m // bh + 1) * 4, "X": k * npad * item,
                                   "Y": m * npad * item})
        bufs: list = []
        ptr, idx = self.upload(bufs, _int32(wb.indptr)), self.upload(bufs, _int32(wb.indices))
        blocks, xb = self.upload(bufs, self._dense(wb.data, dt)), self.upload(bufs, self._padded_x(x, dt, npad))
        yb = self.scratch(bufs, m * npad * item)
        knl = self.kernel("spmm.cl", "bsr", dt, {"BH": bh, "BW": bw, "VW": vw, "NV": nv})
        launch = self._rows_launch(knl, m, npad, vw, nv, np.int32(m), np.int32(npad), ptr, idx, blocks, xb, yb)
        return self.make_plan(problem, [launch], yb, (m, npad), bufs, cols=n)

    def _spmm_nm(self, problem):
        dt = problem.dtype
        vals, cols = SpMM.nm_arrays(_canonical_csr(problem.inputs["w"]))
        x = problem.inputs["x"]
        m, r = vals.shape
        k, n = x.shape
        vw, nv, npad = self.vec_layout(n, dt, nv=CSR_NV)
        item = self._storage(dt).itemsize
        self.check_sizes(problem, {"W values": vals.size * item, "W columns": cols.size * 4,
                                   "X": k * npad * item, "Y": m * npad * item})
        bufs: list = []
        # column-major ELL (R x M) on a GPU: coalesced across rows; row-major (M x R) on a CPU
        layout = (lambda a: a) if self.is_cpu else (lambda a: a.T)
        cb = self.upload(bufs, _int32(np.ascontiguousarray(layout(cols))))
        vb = self.upload(bufs, self._dense(layout(vals), dt))
        xb = self.upload(bufs, self._padded_x(x, dt, npad))
        yb = self.scratch(bufs, m * npad * item)
        split = CSR_SPLIT_1 if n == 1 else CSR_SPLIT
        knl = self.kernel("spmm.cl", "ell", dt, {"VW": vw, "NV": nv, "SPLIT": split,
                                                **({"ELL_ROWMAJOR": 1} if self.is_cpu else {})})
        launch = self._rows_launch(knl, m, npad, vw, nv, np.int32(m), np.int32(npad), np.int32(r), cb, vb, xb, yb)
        return self.make_plan(problem, [launch], yb, (m, npad), bufs, cols=n)

    # -- sddmm --------------------------------------------------------------------------------

    def _prepare_sddmm(self, problem):
        dt = problem.dtype
        a_in, b_in = problem.inputs["a"], problem.inputs["b"]
        mask = _canonical_csr(problem.inputs["mask"])
        m, k = a_in.shape
        nnz = mask.nnz
        # vectors along K on a CPU: rows of A and B^T padded with zeros to KP (exact: 0 * 0 adds +0)
        vw = SIMD_BYTES // self._acc(dt).itemsize if self.is_cpu else 1
        kp = _roundup(k, vw)
        a = np.zeros((m, kp), self._storage(dt))
        a[:, :k] = a_in
        bt = np.zeros((b_in.shape[1], kp), self._storage(dt))  # B's layout is ours: rows of B^T are contiguous
        bt[:, :k] = b_in.T
        rows = np.repeat(np.arange(m, dtype=np.int64), np.diff(mask.indptr))
        item = self._storage(dt).itemsize
        self.check_sizes(problem, {"A": a.size * item, "B": bt.size * item, "mask rows": nnz * 4,
                                   "mask columns": nnz * 4, "out": nnz * item})
        bufs: list = []
        ab, bb = self.upload(bufs, a), self.upload(bufs, bt)
        rb, cb = self.upload(bufs, _int32(rows)), self.upload(bufs, _int32(mask.indices))
        ob = self.scratch(bufs, nnz * item)
        args = (np.int32(nnz), np.int32(kp), rb, cb, ab, bb, ob)
        if self.is_cpu:
            knl = self.kernel("sddmm.cl", "sddmm_vec", dt, {"VW": vw})
            loc = self.free_local(knl, 64, rows=1)
            launch = _Launch(knl, (_roundup(nnz, loc[0]),), loc[:1], *args)
        else:
            lanes = min(_pow2ceil(k), 32)
            cands = [({"LANES": min(lanes, t), "SLOTS": t // min(lanes, t)}, (min(lanes, t), t // min(lanes, t)))
                     for t in (128, 64, 32, 16, 8, 4, 2, 1)]
            knl, defs, loc = self.fixed_kernel("sddmm.cl", "sddmm", dt, cands)
            launch = _Launch(knl, (loc[0], _roundup(nnz, loc[1])), loc, *args)
        return self.make_plan(problem, [launch], ob, (nnz,), bufs)

    # -- kwta -----------------------------------------------------------------------------------

    def _prepare_kwta(self, problem):
        dt = problem.dtype
        x = problem.inputs["x"]
        m, n = x.shape
        k = int(problem.params["k"])
        item = self._storage(dt).itemsize
        # CPU: explicit vectors over VW adjacent columns; GPU: the work-group kernel (lanes split
        # the rows) unless there are columns enough for one work-item each
        vector = kwta_vector(self.style, n)
        vw = (SIMD_BYTES // self._acc(dt).itemsize if self.is_cpu else 1) if vector else 1
        npad = _roundup(n, vw) if vw > 1 else n
        self.check_sizes(problem, {"X": m * npad * item, "Y": m * npad * item})
        bufs: list = []
        xb = self.upload(bufs, self._padded_x(x, dt, npad))
        yb = self.scratch(bufs, m * npad * item)
        if vector:
            knl = self.kernel("kwta.cl", "kwta_vec", dt, {"VW": vw})
            groups = npad // vw
            # one work-item per group: a CPU runs work-groups in parallel, work-items in turn
            loc = (1,) if self.is_cpu else self.free_local(knl, min(_pow2ceil(groups), 64), rows=1)[:1]
            launch = _Launch(knl, (_roundup(groups, loc[0]),), loc, np.int32(m), np.int32(npad), np.int32(k), xb, yb)
        else:
            cx = min(_pow2ceil(n), 16)
            cands = []
            for total in (256, 128, 64, 32, 16, 8, 4, 2, 1):
                c = min(cx, total)
                kl = max(1, min(total // c, _pow2floor(max(m // 16, 1))))
                if ({"CX": c, "KL": kl}, (c, kl)) not in cands:
                    cands.append(({"CX": c, "KL": kl}, (c, kl)))
            knl, defs, loc = self.fixed_kernel("kwta.cl", "kwta", dt, cands)
            chunk = -(-m // loc[1])
            launch = _Launch(knl, (_roundup(n, loc[0]), loc[1]), loc,
                             np.int32(m), np.int32(n), np.int32(k), np.int32(chunk), xb, yb)
        return self.make_plan(problem, [launch], yb, (m, npad), bufs, cols=n)

    # -- sparse_sparse -------------------------------------------------------------------------------

    def _prepare_sparse_sparse(self, problem):
        dt = problem.dtype
        w = _canonical_csr(problem.inputs["w"]).tocsc()  # W by columns: the scatter form
        w.sort_indices()
        xc = sp.csc_matrix(problem.inputs["x_csc"])
        if not xc.has_canonical_format:
            xc = xc.copy()
            xc.sum_duplicates()
        m, n = w.shape[0], xc.shape[1]
        item = self._storage(dt).itemsize
        acc = self._acc(dt).itemsize
        # the output column in local memory when it fits (sized to a power of two: few program variants)
        local_m = max(64, _pow2ceil(m))
        local_ok = ss_local_accumulator(local_m * acc, self.local_mem)
        sizes = {"W values": w.nnz * item, "W rows": w.nnz * 4, "W column pointers": (w.shape[1] + 1) * 4,
                 "X values": xc.nnz * item, "X rows": xc.nnz * 4, "X column pointers": (n + 1) * 4, "Y": m * n * item}
        if not local_ok:
            sizes["Y accumulator"] = m * n * acc
        self.check_sizes(problem, sizes)
        bufs: list = []
        wptr, wrow = self.upload(bufs, _int32(w.indptr)), self.upload(bufs, _int32(w.indices))
        wval = self.upload(bufs, self._dense(w.data, dt))
        xptr, xrow = self.upload(bufs, _int32(xc.indptr)), self.upload(bufs, _int32(xc.indices))
        xval = self.upload(bufs, self._dense(xc.data, dt))
        yb = self.scratch(bufs, m * n * item)
        mean_col = w.nnz / max(w.shape[1], 1)
        sl0 = ss_lanes(self.style, mean_col)
        defs = {"LOCAL_M": local_m} if local_ok else {}
        cands = [({**defs, "SL": s}, (s,)) for s in sorted({sl0, 64, 32, 16, 8, 4, 2, 1}, reverse=True) if s <= sl0]
        knl, defs, loc = self.fixed_kernel("sparse_sparse.cl", "ss_scatter", dt, cands)
        args = (np.int32(m), np.int32(n), wptr, wrow, wval, xptr, xrow, xval)
        if local_ok:
            launches = [_Launch(knl, (n * loc[0],), loc, *args, yb)]
        else:
            yt = self.scratch(bufs, m * n * acc)
            tk, tdefs, tloc = self.fixed_kernel("sparse_sparse.cl", "store_transposed", dt,
                                                [({"TT": t}, (t, t)) for t in (16, 8, 4, 2, 1)])
            tt = tdefs["TT"]
            launches = [_Launch(knl, (n * loc[0],), loc, *args, yt),
                        _Launch(tk, (_roundup(m, tt), _roundup(n, tt)), tloc, np.int32(m), np.int32(n), yt, yb)]
        return self.make_plan(problem, launches, yb, (m, n), bufs)

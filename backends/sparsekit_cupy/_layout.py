"""Host-side layouts and launch decisions of the ``cupy`` backend (NumPy/SciPy only, no CuPy).

Everything here runs in ``prepare`` on the host before the upload, and is what
the tests check on a machine without a GPU: the conversions (CSR canonical form,
BSR blocks, N:M as column-major ELL, CSC for sparse x sparse, SDDMM's COO), the
strategy each kernel picks, the launch geometry each kernel's index arithmetic
expects, and the arithmetic policies (TF32, flush-to-zero allowance).

Launch geometry follows two rules. Rows of an output go on ``gridDim.x`` (up to
2**31 - 1 blocks; y and z stop at 65535). And a launch should give every SM at
least one block at the suite's shapes (132 SMs on an H200): where a kernel's
natural unit of work is too coarse for that (k-WTA's 32 columns per block, one
block per output column in sparse x sparse, 64 x 64 gather tiles) the unit
shrinks with the problem, down to a floor that keeps reads coalesced. The
thresholds are a model (blocks >= SMs), not measurements: ``tools/gpu_check``
records the geometry each timed plan used (``last_path``).
"""
from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp

from sparsekit import Unsupported
from sparsekit.kernels.spmm import SpMM

INT32_MAX = 2**31 - 1
#: a CUDA grid's x extent, and its y and z extents
GRID_X_MAX = 2**31 - 1
GRID_YZ_MAX = 65535
#: SMs assumed when the device's count is not given (an H200, the GPU this suite is lent)
DEFAULT_SMS = 132
#: dynamic shared memory a block may use without opting in (all CUDA GPUs since sm_20)
SHARED_DEFAULT = 48 * 1024
#: k-WTA: above this many rows per column, sort (CuPy's argpartition) instead of bisection. The
#: bisection kernel reads each column 32 (float64: 64) times; that stays cheap while a block's
#: 32 columns stay in L1/L2 (m x 32 x 4 bytes, 8 MiB at this m). A guess from the cache sizes,
#: not measured: no GPU was available when it was written.
KWTA_BISECT_MAX_M = 1 << 16


def int32(a) -> np.ndarray:
    """``a`` as contiguous int32, or ``Unsupported`` when an index does not fit the kernels' int."""
    a = np.asarray(a)
    if a.size and (a.max() > INT32_MAX or a.min() < 0):
        raise Unsupported("an index exceeds the 32-bit range the CUDA kernels use")
    return np.ascontiguousarray(a, dtype=np.int32)


def canonical_csr(w) -> sp.csr_matrix:
    """CSR with sorted, summed duplicate indices (user CSR may hold either), never the caller's object."""
    w = sp.csr_matrix(w, copy=True)
    if not w.has_canonical_format:
        w.sum_duplicates()
    return w


def bsr_arrays(w, blocksize) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(block-row pointers, block columns, blocks nnzb x bh x bw) of W in BSR; ``ValueError`` if the
    block size does not divide the shape."""
    bh, bw = (int(b) for b in blocksize)
    if bh < 1 or bw < 1 or w.shape[0] % bh or w.shape[1] % bw:
        raise ValueError(f"blocksize {bh}x{bw} must divide the shape {w.shape}")
    b = canonical_csr(w).tobsr(blocksize=(bh, bw))
    b.sort_indices()
    return int32(b.indptr), int32(b.indices), np.ascontiguousarray(b.data)


def ell_arrays(w) -> tuple[np.ndarray, np.ndarray]:
    """(columns, values) of an N:M W as column-major ELL, each r x m: entry q of row i at [q, i]."""
    vals, cols = SpMM.nm_arrays(canonical_csr(w))
    return int32(np.ascontiguousarray(cols.T)), np.ascontiguousarray(vals.T)


def csc_arrays(a) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(column pointers, row indices, values) of ``a`` by columns, canonical (sorted, no duplicates)."""
    c = sp.csc_matrix(a, copy=True)
    if not c.has_canonical_format:
        c.sum_duplicates()
    return int32(c.indptr), int32(c.indices), np.ascontiguousarray(c.data)


def coo_of_mask(mask) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the mask's nonzeros in its CSR order: SDDMM's output order."""
    mask = sp.csr_matrix(mask)
    rows = np.repeat(np.arange(mask.shape[0], dtype=np.int64), np.diff(mask.indptr))
    return int32(rows), int32(mask.indices)


# -- strategies -----------------------------------------------------------------------------------

CSR_PATHS = ("cusparse", "csr_spmm", "csr_spmv")


def choose_csr_path(dtype: str, nnz: int, n: int, force: str | None = None) -> str:
    """How spmm/csr runs: ``cusparse`` (cuSPARSE SpMM through cupyx) for float32/float64 with
    nonzeros; our kernels otherwise: cuSPARSE through CuPy has no float16, and an empty W needs
    no library call. ``force`` picks a path (tests, and measuring our kernel against cuSPARSE);
    ``csr_spmv`` only for one column."""
    if force is not None:
        if force not in CSR_PATHS:
            raise ValueError(f"unknown CSR path {force!r}: choose one of {', '.join(CSR_PATHS)}")
        if force == "csr_spmv" and n != 1:
            raise ValueError("the csr_spmv kernel computes one column (n == 1)")
        if force == "cusparse" and dtype == "float16":
            raise Unsupported("cuSPARSE through CuPy has no float16 CSR")
        return force
    if dtype in ("float32", "float64") and nnz > 0:
        return "cusparse"
    return "csr_spmv" if n == 1 else "csr_spmm"


def choose_kwta_path(m: int, force: str | None = None) -> str:
    """``bisect`` (our exact-k kernel) unless columns are longer than ``KWTA_BISECT_MAX_M``: ``sort``
    (``sparsekit.xp.kwta_select`` on CuPy: argpartition)."""
    if force is not None:
        if force not in ("bisect", "sort"):
            raise ValueError(f"unknown k-WTA path {force!r}: choose bisect or sort")
        return force
    return "sort" if m > KWTA_BISECT_MAX_M else "bisect"


def ss_threads(w_nnz: int, k: int) -> int:
    """Threads per output column of sparse_sparse: enough for a mean column of W, 32 to 256."""
    mean_col = w_nnz / max(k, 1)
    t = 32
    while t < 256 and t < mean_col:
        t *= 2
    return t


# -- launch geometry (grid, block), as each kernel's index arithmetic expects --------------------

def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _check_grid(kernel: str, grid) -> tuple:
    if grid[0] > GRID_X_MAX or any(g > GRID_YZ_MAX for g in grid[1:]):
        raise Unsupported(f"{kernel}: the problem needs a grid of {tuple(grid)}, beyond CUDA's {GRID_X_MAX} in x "
                          f"and {GRID_YZ_MAX} in y and z")
    return tuple(int(g) for g in grid)


#: gather_gemm output tiles (rows x columns), largest first: 256 threads as 16 x 16, each thread
#: (rows / 16) x (columns / 16) outputs. Must match the GBM/GBN defines dense.cu is built with.
GATHER_TILES = ((64, 64), (32, 64), (32, 32), (16, 32), (16, 16))


def gather_tile(r: int, n: int, sms: int = DEFAULT_SMS) -> tuple[int, int]:
    """The largest tile whose grid still gives every SM a block; the smallest when none does
    (at 2048 x 2048 x 64 and half the rows selected, 64 x 64 tiles are 16 blocks, 16 x 16 are 256)."""
    for bm, bn in GATHER_TILES:
        if _cdiv(r, bm) * _cdiv(n, bn) >= sms:
            return bm, bn
    return GATHER_TILES[-1]


def gather_gemm_launch(r: int, n: int, sms: int = DEFAULT_SMS):
    """(grid, block, defines) of gather_gemm: selected rows on x, columns on y."""
    bm, bn = gather_tile(r, n, sms)
    return _check_grid("gather_gemm", (_cdiv(r, bm), _cdiv(n, bn))), (16, 16), {"GBM": bm, "GBN": bn}


def warp_per_item_launch(items: int, warps_per_block: int = 8):
    """Kernels with a warp per row / nonzero (gather_gemv, csr_spmv, sddmm)."""
    return _check_grid("warp-per-item", (_cdiv(items, warps_per_block),)), (32 * warps_per_block,)


def rows_by_columns_launch(kernel: str, rows: int, n: int):
    """Kernels with a thread per (row, column of X) (csr_spmm, bsr_spmm over block rows, ell_spmm):
    rows on x, columns on y; threadIdx.x along columns, and with few columns the block is
    reshaped to keep 256 threads."""
    bx = 32 if n >= 32 else (16 if n >= 16 else (8 if n >= 8 else (4 if n >= 4 else (2 if n >= 2 else 1))))
    by = 256 // bx
    return _check_grid(kernel, (_cdiv(rows, by), _cdiv(n, bx))), (bx, by)


#: k-WTA threads per block (CX columns x KL threads per column); kwta.cu sizes its counters for it
KWTA_THREADS = 256


def kwta_launch(n: int, sms: int = DEFAULT_SMS):
    """(grid, block) of kwta: CX columns per block, KL = 256 / CX threads per column. CX starts at
    32 (a row's 32 values, one 128-byte line per warp) and halves while the grid would leave SMs
    idle, down to one column per block (64 blocks at n = 64, where CX = 32 gave 2). A column's
    32 re-reads then come from L1, so the narrower runs cost little."""
    cx = 32
    while cx > 1 and _cdiv(n, cx) < sms:
        cx //= 2
    return _check_grid("kwta", (_cdiv(n, cx),)), (cx, KWTA_THREADS // cx)


def ss_launch(m: int, n: int, w_nnz: int, k: int, acc_itemsize: int, shared_limit: int = SHARED_DEFAULT,
              sms: int = DEFAULT_SMS, force_global: bool = False):
    """(grid, threads, shared bytes, use_shared) of ss_scatter: n output columns on x, each cut into
    ``slices`` row slices on y, enough that the grid has a block per SM (one block per column
    left SMs idle at n = 64) and that a slice's m / slices accumulators fit shared memory. The
    kernel derives each slice's rows as ceil(m / gridDim.y) per slice."""
    slices = max(1, _cdiv(m * acc_itemsize, shared_limit), _cdiv(sms, max(n, 1)))
    slices = max(1, min(slices, m, GRID_YZ_MAX))
    span = _cdiv(m, slices)
    use_shared = span * acc_itemsize <= shared_limit and not force_global
    threads = ss_threads(w_nnz // slices, k)
    return _check_grid("ss_scatter", (n, slices)), threads, (span * acc_itemsize if use_shared else 0), use_shared


# -- arithmetic policies ----------------------------------------------------------------------------

#: CuPy's COMPUTE_TYPE_TF32 (cupy._core._routines_linalg)
CUPY_COMPUTE_TYPE_TF32 = 7


def tf32_requested(compute_type: int | None, env=None) -> bool:
    """Whether cuBLAS float32 products would run in TF32: CuPy's float32 compute type says TF32
    (``compute_type``; None when CuPy could not be asked, then CuPy's own rule on ``CUPY_TF32``
    is applied), unless ``NVIDIA_TF32_OVERRIDE=0``, which makes every NVIDIA library keep full
    float32 (any other value of it changes nothing, so it never turns TF32 on)."""
    env = os.environ if env is None else env
    if compute_type is None:
        try:
            requested = int(env.get("CUPY_TF32", "0") or "0") > 0
        except ValueError:
            requested = False  # CuPy would raise on it; our kernels do not care
    else:
        requested = compute_type == CUPY_COMPUTE_TYPE_TF32
    return requested and env.get("NVIDIA_TF32_OVERRIDE", "").strip() != "0"


def tf32_affects(kernel: str, dtype: str) -> bool:
    """The plans whose cuBLAS products run in float32: dense_mm in float32, moe in float32 and in
    float16 (whose expert products are widened to float32, see ``sparsekit.xp.moe_forward``)."""
    return (kernel == "dense_mm" and dtype == "float32") or (kernel == "moe" and dtype in ("float32", "float16"))


#: the smallest normal float32: a flushed subnormal operand, product or sum is off by less
FLT_MIN = float(np.finfo(np.float32).tiny)


def ftz_allowance(problem):
    """Extra |Y - Yref| for the float32 arithmetic CuPy compiles itself with ``-ftz=true``.

    Our kernels are immune (``_sources``), and cuBLAS/cuSPARSE are not built by CuPy; what
    remains is moe's routing and weighted sum (CuPy elementwise kernels: softmax, ``part *
    weight``, ``y += ...``). Each of its top_k terms per output goes through at most four
    float32 operations whose flushed operand or result is off by less than FLT_MIN times the
    other operand (at most 1 for a weight, ``max|E_e| @ |x|`` for an expert's output), so
    ``4 (top_k + 1) FLT_MIN (1 + max|E||x|)`` bounds it. None for float64 (no flush) and for
    every other kernel."""
    if problem.kernel != "moe" or problem.dtype == "float64":
        return None
    x = np.abs(problem.inputs["x"].astype(np.float64))
    experts = np.abs(problem.inputs["experts"].astype(np.float64))
    biggest = max((float((e @ x).max()) for e in experts), default=0.0)
    return 4.0 * (problem.params["top_k"] + 1) * FLT_MIN * (1.0 + biggest)

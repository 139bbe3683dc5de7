"""Host-side layouts and launch decisions of the ``cupy`` backend (NumPy/SciPy only, no CuPy).

Everything here runs in ``prepare`` on the host before the upload, and is what
the tests check on a machine without a GPU: the conversions (CSR canonical form,
BSR blocks, N:M as column-major ELL, CSC for sparse x sparse, SDDMM's COO), the
strategy each kernel picks, and the launch geometry each kernel's index
arithmetic expects.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sparsekit import Unsupported
from sparsekit.kernels.spmm import SpMM

INT32_MAX = 2**31 - 1
#: a CUDA grid's y and z extents
GRID_YZ_MAX = 65535
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


def ss_use_shared(m: int, acc_itemsize: int, shared_limit: int = SHARED_DEFAULT) -> bool:
    """Whether sparse_sparse's output column (m accumulators) fits the block's shared memory."""
    return m * acc_itemsize <= shared_limit


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
    if any(g > GRID_YZ_MAX for g in grid[1:]):
        raise Unsupported(f"{kernel}: the problem needs a grid of {grid}, beyond CUDA's {GRID_YZ_MAX} in y and z")
    return tuple(int(g) for g in grid)


def gather_gemm_launch(r: int, n: int):
    return _check_grid("gather_gemm", (_cdiv(n, 64), _cdiv(r, 64))), (16, 16)


def warp_per_item_launch(items: int, warps_per_block: int = 8):
    """Kernels with a warp per row / nonzero (gather_gemv, csr_spmv, sddmm)."""
    return (_cdiv(items, warps_per_block),), (32 * warps_per_block,)


def rows_by_columns_launch(kernel: str, rows: int, n: int):
    """Kernels with a thread per (row, column of X) (csr_spmm, bsr_spmm over block rows, ell_spmm):
    x over columns, y over rows; with few columns the block is reshaped to keep 256 threads."""
    bx = 32 if n >= 32 else (16 if n >= 16 else (8 if n >= 8 else (4 if n >= 4 else (2 if n >= 2 else 1))))
    by = 256 // bx
    return _check_grid(kernel, (_cdiv(n, bx), _cdiv(rows, by))), (bx, by)


def kwta_launch(n: int):
    """32 columns per block (CX), 8 threads per column (KL): must match kwta.cu."""
    return (_cdiv(n, 32),), (32, 8)

"""Operand layouts of the ``cpu`` backend: how ``prepare`` stores W and its indices.

Index arrays are as small as their values allow (``index_array``: uint32, else int64;
``column_array``: uint16 CSR column indices when W has at most 65536 columns), since
SpMV streams values and indices and nothing else, and an unsigned index spares
Numba its negative-index wraparound test on every access.
"""
from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp


def index_array(a, largest: int) -> np.ndarray:
    """Index array as uint32 when every value fits, else int64 (four bytes halve the
    index traffic; unsigned: SpMV ran ~1.5x faster without the wraparound test)."""
    return np.ascontiguousarray(a, dtype=np.uint32 if largest < 2**32 - 1 else np.int64)


def column_array(indices, n_cols: int) -> np.ndarray:
    """CSR column indices as uint16 when the matrix has at most 65536 columns, else as
    ``index_array`` stores them: SpMV then streams 6 bytes a nonzero instead of 8."""
    if n_cols <= 2**16:
        return np.ascontiguousarray(indices, dtype=np.uint16)
    return index_array(indices, n_cols)


def dense(a, dtype) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=dtype)


def canonical_csr(w) -> sp.csr_matrix:
    """W as a CSR with sorted, summed indices (the layout every CSR kernel assumes)."""
    w = sp.csr_matrix(w)
    if not w.has_canonical_format:
        w = w.copy()
        w.sum_duplicates()
    return w


def csr_arrays(w, dtype, compact: bool = False):
    """(indptr, indices, data) of a canonical CSR, cast and made contiguous;
    ``compact``: column indices as small as ``column_array`` makes them."""
    w = canonical_csr(w)
    largest = max(w.nnz, w.shape[1])
    indices = column_array(w.indices, w.shape[1]) if compact else index_array(w.indices, largest)
    return index_array(w.indptr, largest), indices, dense(w.data, dtype)


def column_panels(w, width: int, dtype):
    """(panel_ptr, indices, data, starts) of W cut into column panels ``width`` wide;
    indices local to their panel (so uint16 for panels up to 65536 wide), panels stored
    one after another, ``panel_ptr[q]`` the row pointers of panel q into the shared arrays."""
    w = canonical_csr(w)
    k = w.shape[1]
    starts = np.append(np.arange(0, k, width), k) if k else np.array([0, 0])
    ptrs, idx, vals, offset = [], [], [], 0
    for a, b in zip(starts[:-1], starts[1:]):
        sub = w[:, a:b].tocsr()
        sub.sort_indices()
        ptrs.append(sub.indptr.astype(np.int64) + offset)
        idx.append(sub.indices)
        vals.append(sub.data)
        offset += sub.nnz
    ptr = index_array(np.vstack(ptrs), max(offset, 1))
    cols = column_array(np.concatenate(idx), width)
    return ptr, cols, dense(np.concatenate(vals), dtype), starts.astype(np.int64)


def bitmap(w, lanes: int, dtype):
    """(masks, rowptr, values) of W as a bitmap: ``masks[i, j]`` has bit b set when
    W[i, lanes * j + b] is stored (uint16 masks for 16 lanes, uint8 for 8), ``values``
    the row-major nonzeros followed by ``lanes`` zeros (a chunk's contiguous load may
    run past the last one)."""
    w = canonical_csr(w)
    m, k = w.shape
    chunks = -(-k // lanes)
    masks = np.zeros((m, max(chunks, 1)), {16: np.uint16, 8: np.uint8}[lanes])
    if w.nnz:
        rows = np.repeat(np.arange(m, dtype=np.int64), np.diff(w.indptr))
        key = rows * masks.shape[1] + w.indices // lanes
        bits = np.left_shift(1, w.indices % lanes).astype(np.int64)
        # one (row, chunk) per run of equal keys (indices are sorted): the run's bits summed
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        masks.reshape(-1)[key[starts]] = np.add.reduceat(bits, starts).astype(masks.dtype)
    values = dense(np.concatenate([w.data, np.zeros(lanes, w.data.dtype)]), dtype)
    return masks, index_array(w.indptr, max(w.nnz, 1)), values


class CsrOperands:
    """W (CSR) and X of one product, with the derived layouts strategies ask for built once.

    ``x`` is 2-D (k x n); ``out`` (m x n) is allocated here, so every strategy writes
    the same array."""

    def __init__(self, w, x, dtype, parts: int):
        self.w = canonical_csr(w)
        self.dtype = np.dtype(dtype)
        self.indptr, self.indices, self.data = csr_arrays(self.w, dtype, compact=True)
        self.x = dense(x, dtype)
        self.m, self.k = self.w.shape
        self.n = self.x.shape[1]
        self.out = np.empty((self.m, self.n), dtype)
        self.parts = parts
        self._panels = {}

    @functools.cached_property
    def bounds(self):
        from ._kernels import balanced_bounds

        return balanced_bounds(self.indptr, self.parts, row_cost=2.0)

    @functools.cached_property
    def split(self):
        """(rows, pos) of the merge-path partition (``_tiles.split_points``)."""
        from ._tiles import split_points

        rows, pos = split_points(self.indptr, self.parts, row_cost=2.0)
        return rows, pos

    def bitmap(self, lanes: int):
        """``bitmap`` of W, and x padded with zeros to whole chunks of ``lanes``."""
        key = ("bitmap", lanes)
        if key not in self._panels:
            masks, rowptr, values = bitmap(self.w, lanes, self.dtype)
            xp = np.zeros(masks.shape[1] * lanes, self.dtype)
            xp[: self.k] = self.x[:, 0]
            self._panels[key] = masks, rowptr, values, xp
        return self._panels[key]

    def panels(self, width: int):
        """``column_panels`` of W, ``width`` columns each (built once per width)."""
        if width not in self._panels:
            self._panels[width] = column_panels(self.w, width, self.dtype)
        return self._panels[width]


class SddmmOperands:
    """A (m x k), B transposed (n x k: both operands of every dot product contiguous; B's
    layout is the backend's choice, like W's format), the mask's CSR pattern, the output."""

    def __init__(self, a, b, mask, dtype, parts: int):
        self.a = dense(a, dtype)
        self.bt = dense(np.asarray(b).T, dtype)
        self.indptr, self.indices, _ = csr_arrays(mask, dtype)
        self.dtype = np.dtype(dtype)
        self.shape = (self.a.shape[0], self.bt.shape[0])
        self.out = np.empty(len(self.indices), dtype)
        self.parts = parts

    @functools.cached_property
    def bounds(self):
        from ._kernels import balanced_bounds

        return balanced_bounds(self.indptr, self.parts, row_cost=0.5)

    def cuts(self, width):
        return row_cuts(self.indptr, self.indices, self.shape[1], width)


class GatherOperands:
    """W (dense, m x k), the selected rows and X (k x n) of one GATHER_MM, and its output."""

    def __init__(self, w, rows, x, dtype):
        self.w = dense(w, dtype)
        self.rows = index_array(rows, self.w.shape[0])
        self.x = dense(x, dtype)
        self.dtype = np.dtype(dtype)
        self.n = self.x.shape[1]
        self.out = np.empty((len(self.rows), self.n), dtype)


def row_cuts(indptr, indices, n_cols: int, width: int | None) -> np.ndarray:
    """(panels + 1) x m positions splitting each CSR row at the column panels ``width``
    wide (rows are sorted, so a panel's part of a row is contiguous); None: one panel."""
    ptr = np.asarray(indptr, dtype=np.int64)
    m = len(ptr) - 1
    if width is None or width >= n_cols:
        return np.vstack([ptr[:-1], ptr[1:]])
    rows = np.repeat(np.arange(m, dtype=np.int64), np.diff(ptr))
    key = rows * n_cols + np.asarray(indices, dtype=np.int64)
    starts = np.append(np.arange(0, n_cols, width), n_cols)
    return np.searchsorted(key, np.arange(m, dtype=np.int64)[None, :] * n_cols + starts[:, None]).astype(np.int64)

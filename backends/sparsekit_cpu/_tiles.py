"""Explicit-SIMD kernels of the ``cpu`` backend: register-tiled SpMM across the columns
of X (CSR, BSR), GATHER_MM reading the selected rows of W in place, the merge-path
split for skewed rows, and the bitmap SpMV.

An output tile lives in registers for a whole sparse loop (``_simd``): a strip of
``S`` columns of one output row is one ``<S x T>`` value, and each nonzero w[i, l]
adds ``w[i, l] * X[l, j0:j0+S]`` to it with S / lanes FMAs whose X operand comes
straight from memory. S is a power of two (LLVM splits those into registers
cleanly and scalarises other widths); the columns past the last full strip go in
one half strip, single vectors of ``L`` lanes (a register) and a last masked one,
so no n needs a scalar tail and nothing past X's row is read. When a strip spans
fewer registers than the FMA pipes need in flight (latency x pipes, about 8),
``U`` partial tiles take alternate nonzeros and are summed at the end
(reassociation: the checker's bound holds for any order).

S, U and L are compile-time constants: ``spmm_rows(S, U, L)`` and the other
factories build (and memoise) one kernel per combination, which Numba caches on
disk keyed by those constants; the inspector chooses them from the machine's
vector width and register count (``strip_plan``, ``machine.Machine``).

Row-parallel kernels take ``bounds`` (row ranges of equal work, several per
thread; see ``_kernels.balanced_bounds``). The nnz-split kernel (``spmm_split``)
takes a merge-path partition instead (``split_points``): equal shares of
(rows + nonzeros), a row cut where a share ends, its partial tiles summed after
the parallel loop -- the schedule of Merrill & Garland (2016) for rows so long
that no row partition balances.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import njit, prange

from ._kernels import _DOT, _sparse_dot
from ._simd import popcount, vadd, vcompress, vfma, vload, vload_n, vstore, vstore_n, vsum, vzero

_PARALLEL = dict(parallel=True, cache=True, fastmath=False, nogil=True)
_PARALLEL_DOT = dict(parallel=True, cache=True, fastmath=_DOT, nogil=True)
_INLINE = dict(inline="always", cache=True, fastmath=False, nogil=True)


def split_points(indptr: np.ndarray, parts: int, row_cost: float = 1.0):
    """Merge-path partition of a CSR into ``parts`` shares of equal (nonzeros + row_cost x rows).

    Returns (rows, pos), each parts + 1 long: share c covers nonzero positions
    pos[c]:pos[c+1], starting in row rows[c] and ending before row rows[c+1] or inside
    it (rows[-1] = m). A boundary never sits at a row's end: it moves to the start of
    the next row that has nonzeros (the first share excepted: it starts at row 0), so
    empty rows lie inside a share, never on a cut."""
    m = len(indptr) - 1
    ptr = np.asarray(indptr, dtype=np.int64)
    cost = ptr.astype(np.float64) + row_cost * np.arange(m + 1)
    targets = np.linspace(0.0, cost[-1], parts + 1)
    rows = np.clip(np.searchsorted(cost, targets, side="right") - 1, 0, m).astype(np.int64)
    nxt = np.minimum(rows + 1, m)
    pos = np.minimum(ptr[rows] + np.clip(np.round(targets - cost[rows]).astype(np.int64), 0, None), ptr[nxt])
    rows[0], pos[0], rows[-1], pos[-1] = 0, 0, m, ptr[-1]
    pos = np.maximum.accumulate(pos)
    # at a row's end (or an empty row's start): the last row starting at that position
    at_end = (rows < m) & (pos == ptr[np.minimum(rows + 1, m)])
    rows = np.where(at_end, np.searchsorted(ptr, pos, side="right") - 1, rows)
    rows = np.minimum(np.maximum.accumulate(rows), m)
    rows[0], rows[-1] = 0, m  # the first share starts at row 0 even when that row is empty
    return rows, pos


# -- one output row strip over a range of nonzeros -----------------------------------------------


@njit(**_INLINE)
def _strip(acc, data, indices, lo, hi, x, col, S, U):
    """acc + sum over p in [lo, hi) of data[p] * x[indices[p], col:col+S], with U partial tiles."""
    n = x.shape[1]
    if U == 1:
        for p in range(lo, hi):
            acc = vfma(vload(x, np.int64(indices[p]) * n + col, S), data[p], acc)
        return acc
    a1 = vzero(x, S)
    p = lo
    if U == 2:
        while p + 2 <= hi:
            acc = vfma(vload(x, np.int64(indices[p]) * n + col, S), data[p], acc)
            a1 = vfma(vload(x, np.int64(indices[p + 1]) * n + col, S), data[p + 1], a1)
            p += 2
    else:
        a2 = vzero(x, S)
        a3 = vzero(x, S)
        while p + 4 <= hi:
            acc = vfma(vload(x, np.int64(indices[p]) * n + col, S), data[p], acc)
            a1 = vfma(vload(x, np.int64(indices[p + 1]) * n + col, S), data[p + 1], a1)
            a2 = vfma(vload(x, np.int64(indices[p + 2]) * n + col, S), data[p + 2], a2)
            a3 = vfma(vload(x, np.int64(indices[p + 3]) * n + col, S), data[p + 3], a3)
            p += 4
        a1 = vadd(a1, vadd(a2, a3))
    for q in range(p, hi):
        acc = vfma(vload(x, np.int64(indices[q]) * n + col, S), data[q], acc)
    return vadd(acc, a1)


@njit(**_INLINE)
def _strip_n(acc, data, indices, lo, hi, x, col, L, count):
    """``_strip`` for the last ``count`` (< L) columns: one masked vector."""
    n = x.shape[1]
    for p in range(lo, hi):
        acc = vfma(vload_n(x, np.int64(indices[p]) * n + col, L, count), data[p], acc)
    return acc


@njit(**_INLINE)
def _piece(out, base, col, data, indices, lo, hi, x, T, U, add):
    """One strip of T columns of output row ``base // n``: (out +) the product over [lo, hi)."""
    acc = vload(out, base + col, T) if add else vzero(out, T)
    vstore(out, base + col, _strip(acc, data, indices, lo, hi, x, col, T, U))


@njit(**_INLINE)
def _row(out, i, data, indices, lo, hi, x, S, U, H, UH, L, add):
    """out[i] (+)= the row's product over nonzeros [lo, hi). Strips of S columns, one of
    H = S / 2 (U, UH partial tiles), then one vector (L lanes, four partial tiles) at a
    time and a last masked vector: power-of-two widths only, which LLVM splits into
    registers cleanly (other widths it scalarises). A full ladder of halvings ran ~10%
    faster on some n and doubled the compile time. ``add``: accumulate onto what out[i]
    holds (column panels, cut rows)."""
    n = x.shape[1]
    base = np.int64(i) * n
    col = 0
    while col + S <= n:
        _piece(out, base, col, data, indices, lo, hi, x, S, U, add)
        col += S
    if H > L and col + H <= n:
        _piece(out, base, col, data, indices, lo, hi, x, H, UH, add)
        col += H
    if S > L:
        while col + L <= n:
            _piece(out, base, col, data, indices, lo, hi, x, L, 4, add)
            col += L
    if col < n:
        count = n - col
        acc = vload_n(out, base + col, L, count) if add else vzero(out, L)
        vstore_n(out, base + col, _strip_n(acc, data, indices, lo, hi, x, col, L, count), count)


def _partials(vectors: int) -> int:
    """Partial tiles that keep about eight FMAs in flight (four cycles' latency, two pipes)."""
    return 1 if vectors >= 8 else 2 if vectors >= 4 else 4


def _half(S: int, L: int) -> tuple[int, int]:
    """(H, UH): the half strip of ``_row`` and its partial tiles."""
    H = S // 2
    return H, _partials(max(1, H // L))


def strip_plan(n: int, lanes: int, registers: int) -> tuple[int, int]:
    """(S, U) for an X of n columns: the widest power-of-two strip of at most n columns that
    fits half the vector registers (the other half holds X operands and partial tiles),
    and the partial tiles U that keep about eight FMAs in flight (four cycles' latency on
    two pipes). ``lanes``: values per vector register."""
    widest = lanes * max(1, registers // 2)
    S = lanes
    while S * 2 <= min(n, widest):
        S *= 2
    return S, _partials(S // lanes)


# -- SpMM strategies ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def spmm_rows(S: int, U: int, L: int):
    """out = W @ x, W in CSR; row ranges in parallel, each output row built strip by strip."""
    H, UH = _half(S, L)

    @njit(**_PARALLEL)
    def kernel(bounds, indptr, indices, data, x, out):
        for c in prange(len(bounds) - 1):
            for i in range(bounds[c], bounds[c + 1]):
                _row(out, i, data, indices, np.int64(indptr[i]), np.int64(indptr[i + 1]), x, S, U, H, UH, L, False)
        return out

    return kernel


@functools.lru_cache(maxsize=None)
def spmm_panels(S: int, U: int, L: int):
    """out = W @ x with W cut into column panels (``_layout.column_panels``): a thread takes its
    row range through one panel after another, so the rows of x that panel selects stay
    in L2 while it is in use; panel q > 0 adds onto the tiles the previous panels left."""
    H, UH = _half(S, L)

    @njit(**_PARALLEL)
    def kernel(bounds, panel_ptr, indices, data, starts, x, out):
        for c in prange(len(bounds) - 1):
            for q in range(panel_ptr.shape[0]):
                xs = x[starts[q] : starts[q + 1]]
                ptr = panel_ptr[q]
                for i in range(bounds[c], bounds[c + 1]):
                    _row(out, i, data, indices, np.int64(ptr[i]), np.int64(ptr[i + 1]), xs, S, U, H, UH, L, q > 0)
        return out

    return kernel


@functools.lru_cache(maxsize=None)
def spmm_split(S: int, U: int, L: int):
    """out = W @ x on a merge-path partition (``split_points``): share c computes the rows it
    holds whole straight into ``out`` and the (at most two) rows cut at its ends into
    ``carry[c, 0]`` / ``carry[c, 1]``; after the parallel loop the cut rows are summed from
    their carries in share order. Every share does equal work however long one row is."""
    H, UH = _half(S, L)

    @njit(**_PARALLEL)
    def kernel(rows, pos, indptr, indices, data, x, out, carry):
        parts = len(rows) - 1
        for c in prange(parts):
            for i in range(rows[c], _last_row(c, rows, pos, indptr) + 1):
                lo, hi = np.int64(indptr[i]), np.int64(indptr[i + 1])
                a, b = max(lo, pos[c]), min(hi, pos[c + 1])
                if a == lo and b == hi:
                    target, row = out, i
                elif a < b:
                    target, row = carry[c, 0 if i == rows[c] else 1], 0
                else:
                    continue
                # one call site: the row kernel inlined once (twice doubled the compile time)
                _row(target, row, data, indices, a, b, x, S, U, H, UH, L, False)
        _sum_cut_rows(rows, pos, indptr, out, carry[:, :, 0])
        return out

    return kernel


@njit(**_PARALLEL_DOT)
def spmv_split(rows, pos, indptr, indices, data, x, out, carry):
    """out = W @ x for a vector x on a merge-path partition (``spmm_split``'s schedule,
    with scalar carries)."""
    parts = len(rows) - 1
    for c in prange(parts):
        for i in range(rows[c], _last_row(c, rows, pos, indptr) + 1):
            lo, hi = np.int64(indptr[i]), np.int64(indptr[i + 1])
            a, b = max(lo, pos[c]), min(hi, pos[c + 1])
            s = _sparse_dot(data, indices, a, b, x)
            if a == lo and b == hi:
                out[i] = s
            elif a < b:
                carry[c, 0 if i == rows[c] else 1] = s
    _sum_cut_rows(rows, pos, indptr, out, carry)
    return out


@functools.lru_cache(maxsize=None)
def spmv_bitmap(L: int):
    """out = W @ x with W as a bitmap (``_layout.bitmap``): per row, one L-bit mask per
    L-column chunk and the row's values packed. A chunk's mask picks its x values with one
    register ``vcompress`` (packed to the front, zeros after) to meet the next values
    loaded contiguously: no gather and no index, one bit of mask per column. The load
    reads up to L - 1 values past the chunk's own, which the zeros of the compressed x
    cancel (they are finite: the inspector checks; the values array and x are padded to
    whole chunks). AVX-512 only (``vcompress``); four chunks per step, four partial sums."""

    @njit(**_PARALLEL_DOT)
    def kernel(bounds, masks, rowptr, vals, x, out):
        kc = masks.shape[1]
        for c in prange(len(bounds) - 1):
            for i in range(bounds[c], bounds[c + 1]):
                p = np.int64(rowptr[i])
                a0 = vzero(x, L)
                a1 = vzero(x, L)
                a2 = vzero(x, L)
                a3 = vzero(x, L)
                j = 0
                while j + 4 <= kc:
                    m0, m1, m2, m3 = masks[i, j], masks[i, j + 1], masks[i, j + 2], masks[i, j + 3]
                    p1 = p + popcount(m0)
                    p2 = p1 + popcount(m1)
                    p3 = p2 + popcount(m2)
                    a0 = vfma(vcompress(vload(x, L * j, L), m0), vload(vals, p, L), a0)
                    a1 = vfma(vcompress(vload(x, L * j + L, L), m1), vload(vals, p1, L), a1)
                    a2 = vfma(vcompress(vload(x, L * j + 2 * L, L), m2), vload(vals, p2, L), a2)
                    a3 = vfma(vcompress(vload(x, L * j + 3 * L, L), m3), vload(vals, p3, L), a3)
                    p = p3 + popcount(m3)
                    j += 4
                while j < kc:
                    m0 = masks[i, j]
                    a0 = vfma(vcompress(vload(x, L * j, L), m0), vload(vals, p, L), a0)
                    p += popcount(m0)
                    j += 1
                out[i] = vsum(vadd(vadd(a0, a1), vadd(a2, a3)))
        return out

    return kernel


@njit(inline="always", cache=True, nogil=True)
def _sum_cut_rows(rows, pos, indptr, out, carry):
    """After the parallel loop: each row a share cut is the sum of its shares' carries
    (``carry[c, s]``: share c's first/last row, a scalar or a row), zeroed first since a
    long row may span many shares."""
    parts = len(rows) - 1
    for c in range(parts):
        for s in range(2):
            i = _cut_row(c, s, rows, pos, indptr)
            if i >= 0:
                out[i] = 0
    for c in range(parts):
        for s in range(2):
            i = _cut_row(c, s, rows, pos, indptr)
            if i >= 0:
                out[i] += carry[c, s]


@njit(inline="always", cache=True, nogil=True)
def _last_row(c, rows, pos, indptr):
    """The last row share c touches: rows[c+1] if the share ends inside it, else the one before."""
    r1 = rows[c + 1]
    return r1 if pos[c + 1] > np.int64(indptr[r1]) else r1 - 1


@njit(inline="always", cache=True, nogil=True)
def _cut_row(c, s, rows, pos, indptr):
    """The row share c left in carry slot s (0: its first row, 1: its last), or -1: a row
    share c holds only part of (a nonempty part; empty parts leave no carry)."""
    last = _last_row(c, rows, pos, indptr)
    i = rows[c] if s == 0 else last
    if i > last or (s == 1 and last == rows[c]):
        return -1
    lo, hi = np.int64(indptr[i]), np.int64(indptr[i + 1])
    a, b = max(lo, pos[c]), min(hi, pos[c + 1])
    return i if (a < b and (a != lo or b != hi)) else -1


# -- GATHER_MM: W[rows] @ X with the selected rows read in place ------------------------------------


# The gather tiles sum a whole row of w (k terms) per output: one running sum has an error
# growing with k (u*k worst case), BLAS's k-blocked GEMM about u*(kc + k/kc). Summing in blocks
# of K_BLOCK, then the blocks, gives the same two-level bound at one load+add per block.
K_BLOCK = 256


@njit(**_INLINE)
def _gather4(w, rows, i0, x, out, col, S, masked, count):
    """out[i0:i0+4, col:col+S] = w[rows[i0:i0+4]] @ x[:, col:col+S] as a 4 x S register tile:
    each strip of x loaded once feeds four rows (``masked``: only ``count`` < S columns)."""
    k, n = x.shape
    w0, w1, w2, w3 = w[rows[i0]], w[rows[i0 + 1]], w[rows[i0 + 2]], w[rows[i0 + 3]]
    o = np.int64(i0) * n + col
    for k0 in range(0, k, K_BLOCK):
        a0 = vzero(out, S)
        a1 = vzero(out, S)
        a2 = vzero(out, S)
        a3 = vzero(out, S)
        for l in range(k0, min(k0 + K_BLOCK, k)):
            xs = vload_n(x, l * n + col, S, count) if masked else vload(x, l * n + col, S)
            a0 = vfma(xs, w0[l], a0)
            a1 = vfma(xs, w1[l], a1)
            a2 = vfma(xs, w2[l], a2)
            a3 = vfma(xs, w3[l], a3)
        _add_tile_row(out, o, a0, S, masked, count, k0 > 0)
        _add_tile_row(out, o + n, a1, S, masked, count, k0 > 0)
        _add_tile_row(out, o + 2 * n, a2, S, masked, count, k0 > 0)
        _add_tile_row(out, o + 3 * n, a3, S, masked, count, k0 > 0)


@njit(**_INLINE)
def _add_tile_row(out, o, a, S, masked, count, accumulate):
    """out[o:o+S] = a (first k block) or out[o:o+S] + a (later ones)."""
    if accumulate:
        a = vadd(a, vload_n(out, o, S, count) if masked else vload(out, o, S))
    if masked:
        vstore_n(out, o, a, count)
    else:
        vstore(out, o, a)


@njit(**_INLINE)
def _gather1(w, rows, i, x, out, col, S, masked, count):
    """One selected row of ``_gather4`` (the last rows of a selection not a multiple of 4)."""
    k, n = x.shape
    wi = w[rows[i]]
    for k0 in range(0, k, K_BLOCK):
        a0 = vzero(out, S)
        for l in range(k0, min(k0 + K_BLOCK, k)):
            xs = vload_n(x, l * n + col, S, count) if masked else vload(x, l * n + col, S)
            a0 = vfma(xs, wi[l], a0)
        _add_tile_row(out, np.int64(i) * n + col, a0, S, masked, count, k0 > 0)


@njit(**_INLINE)
def _gather_rows(w, rows, i0, nr, x, out, S, L):
    """Output rows i0 .. i0+nr (nr = 4, or 1 for the last rows) of w[rows] @ x, in strips
    of S columns, then one vector of L lanes at a time and a masked last vector."""
    n = x.shape[1]
    col = 0
    while col + S <= n:
        _gather_piece(w, rows, i0, nr, x, out, col, S, False, S)
        col += S
    while S > L and col + L <= n:
        _gather_piece(w, rows, i0, nr, x, out, col, L, False, L)
        col += L
    if col < n:
        _gather_piece(w, rows, i0, nr, x, out, col, L, True, n - col)


@njit(**_INLINE)
def _gather_piece(w, rows, i0, nr, x, out, col, S, masked, count):
    if nr == 4:
        _gather4(w, rows, i0, x, out, col, S, masked, count)
    else:
        for i in range(i0, i0 + nr):
            _gather1(w, rows, i, x, out, col, S, masked, count)


@functools.lru_cache(maxsize=None)
def gather_tiles(S: int, L: int):
    """out = w[rows] @ x, reading each selected row of w where it lies (w[rows] is never
    built): blocks of four selected rows in parallel, each through 4 x S register tiles."""

    @njit(**_PARALLEL)
    def kernel(w, rows, x, out):
        r = len(rows)
        for b in prange((r + 3) // 4):
            i0 = 4 * b
            _gather_rows(w, rows, i0, 4 if i0 + 4 <= r else r - i0, x, out, S, L)
        return out

    return kernel


# -- BSR: OSKI's register blocks ----------------------------------------------------------------


@njit(**_INLINE)
def _bsr_piece(indptr, indices, blocks, bi, r, nr, x, out, col, S, masked, count):
    """Rows r .. r+nr (nr = 4 or 1) of block row bi, columns col:col+S: a register tile
    fed by one x strip per block column, shared by the nr rows."""
    bh, bw = blocks.shape[1], blocks.shape[2]
    n = x.shape[1]
    a0 = vzero(out, S)
    a1 = vzero(out, S)
    a2 = vzero(out, S)
    a3 = vzero(out, S)
    for p in range(np.int64(indptr[bi]), np.int64(indptr[bi + 1])):
        c0 = np.int64(indices[p]) * bw
        blk = blocks[p]
        for cc in range(bw):
            off = (c0 + cc) * n + col
            xs = vload_n(x, off, S, count) if masked else vload(x, off, S)
            a0 = vfma(xs, blk[r, cc], a0)
            if nr == 4:
                a1 = vfma(xs, blk[r + 1, cc], a1)
                a2 = vfma(xs, blk[r + 2, cc], a2)
                a3 = vfma(xs, blk[r + 3, cc], a3)
    o = (np.int64(bi) * bh + r) * n + col
    if masked:
        vstore_n(out, o, a0, count)
        if nr == 4:
            vstore_n(out, o + n, a1, count)
            vstore_n(out, o + 2 * n, a2, count)
            vstore_n(out, o + 3 * n, a3, count)
    else:
        vstore(out, o, a0)
        if nr == 4:
            vstore(out, o + n, a1)
            vstore(out, o + 2 * n, a2)
            vstore(out, o + 3 * n, a3)


@functools.lru_cache(maxsize=None)
def bsr_tiles(S: int, L: int):
    """out = W @ x, W in BSR (``blocks``: nblocks x bh x bw), ``bounds`` over block rows:
    each group of four rows of a block row is a 4 x S register tile (OSKI's register
    blocking: the block's columns are consecutive rows of x, each loaded once for four
    rows), strips of S columns and a masked last vector as in ``_row``."""

    @njit(**_PARALLEL)
    def kernel(bounds, indptr, indices, blocks, x, out):
        bh = blocks.shape[1]
        n = x.shape[1]
        for c in prange(len(bounds) - 1):
            for bi in range(bounds[c], bounds[c + 1]):
                r = 0
                while r < bh:
                    nr = 4 if r + 4 <= bh else 1
                    col = 0
                    while col + S <= n:
                        _bsr_piece(indptr, indices, blocks, bi, r, nr, x, out, col, S, False, S)
                        col += S
                    while S > L and col + L <= n:
                        _bsr_piece(indptr, indices, blocks, bi, r, nr, x, out, col, L, False, L)
                        col += L
                    if col < n:
                        _bsr_piece(indptr, indices, blocks, bi, r, nr, x, out, col, L, True, n - col)
                    r += nr
        return out

    return kernel


# -- SDDMM: a row of A held in registers against the selected rows of B^T -------------------------


@njit(**_INLINE)
def _row_dot(a, ia, bt, jb, k, av, S, L):
    """a.flat[ia:ia+k] . bt.flat[jb:jb+k], the first S terms against ``av`` (those values of a,
    already in registers), the rest a vector at a time and a masked last one."""
    s = a.dtype.type(0)
    col = 0
    if S <= k:
        s = vsum(vfma(vload(bt, jb, S), av, vzero(a, S)))
        col = S
    acc = vzero(a, L)
    while col + L <= k:
        acc = vfma(vload(bt, jb + col, L), vload(a, ia + col, L), acc)
        col += L
    if col < k:
        acc = vfma(vload_n(bt, jb + col, L, k - col), vload_n(a, ia + col, L, k - col), acc)
    return s + vsum(acc)


@functools.lru_cache(maxsize=None)
def sddmm_tiles(S: int, L: int):
    """out[p] = a[i] . bt[j] for each mask nonzero p = (i, j) in CSR order. A's row stays in
    registers (its first S values) across the row's nonzeros; ``cuts`` (panels + 1 x m)
    split each row's positions by column panels of B^T (``cuts[q, i]`` .. ``cuts[q+1, i]``),
    taken one after another so the rows of B^T a panel selects stay in L2 (one panel:
    ``cuts`` = the row pointers' starts and ends)."""

    @njit(**_PARALLEL_DOT)
    def kernel(bounds, cuts, indices, a, bt, out):
        k = a.shape[1]
        for c in prange(len(bounds) - 1):
            for q in range(cuts.shape[0] - 1):
                for i in range(bounds[c], bounds[c + 1]):
                    ia = np.int64(i) * k
                    av = vload(a, ia, S) if S <= k else vzero(a, S)
                    for p in range(np.int64(cuts[q, i]), np.int64(cuts[q + 1, i])):
                        out[p] = _row_dot(a, ia, bt, np.int64(indices[p]) * k, k, av, S, L)
        return out

    return kernel

"""Numba kernels of the ``cpu`` backend that LLVM vectorises by itself (the explicit-SIMD
ones are in ``_tiles``): SpMV with gathers, the one-column gather, BSR/N:M SpMV,
SDDMM's auto-vectorised dots, k-WTA, sparse x sparse, LIF.

Every kernel writes into an output the caller allocated and works in the dtype
of its inputs: accumulators start from ``out.dtype.type(0)`` because a bare
``0.0`` would make Numba promote float32 sums to float64.

``fastmath=False`` keeps IEEE semantics (no reassociation, no FMA contraction)
where the order matters or gains nothing: LIF reproduces the oracle's operation
order. The dot products -- SpMV (``csr_spmv``,
``nm_spmv``), GATHER_MM with one column and SDDMM -- are serial sums, which LLVM
vectorises (AVX-512 gathers for SpMV) only if reassociation is allowed, so those
kernels alone carry ``_DOT`` = {reassoc, contract}: reassociation and FMA
contraction, nothing else (no approximations, no NaN/Inf assumptions). The
sum's order then depends on the vector width, which the checker's gamma_K bound
allows (it holds for any summation order, and an FMA rounds once where a
multiply-add rounds twice). Measured on a 2-core Zen 4: SpMV 1.3-1.6x faster
than the strict four-partial-sum loop it replaced.

Index arrays are uint32 (or int64 when too large; see ``_layout.index_array``), CSR
column indices uint16 when the matrix has at most 65536 columns (see
``_layout.column_array``: SpMV streams 6 instead of 8 bytes per nonzero);
values read from them that bound loops are widened to int64 first, since
arithmetic that mixes uint32 loop counters and int64 defeats LLVM's
vectorisation of the unrolled loops (~25% slower SpMV).

Row-parallel kernels take ``bounds``: row ranges balanced by nonzeros (see
``balanced_bounds``), several per thread. Numba's ``prange`` hands each thread
an equal count of iterations, so equal-work iterations give equal-work threads
even when row lengths follow a power law.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

_PARALLEL = dict(parallel=True, cache=True, fastmath=False, nogil=True)
#: fast-math flags of the dot-product kernels: reassociation and FMA contraction
#: only (no approximations, no NaN/Inf assumptions; see the module doc)
_DOT = {"reassoc", "contract"}
_PARALLEL_DOT = dict(parallel=True, cache=True, fastmath=_DOT, nogil=True)
_SERIAL = dict(cache=True, fastmath=False, nogil=True)


def balanced_bounds(indptr: np.ndarray, parts: int, row_cost: float = 1.0) -> np.ndarray:
    """``parts`` + 1 row boundaries splitting rows so each range holds about equal work
    (nonzeros plus ``row_cost`` per row, for the per-row overhead)."""
    m = len(indptr) - 1
    cost = indptr.astype(np.float64) + row_cost * np.arange(m + 1)
    b = np.searchsorted(cost, np.linspace(0.0, cost[-1], parts + 1), side="left").astype(np.int64)
    b[0], b[-1] = 0, m
    return np.maximum.accumulate(b)


@njit(fastmath=_DOT, cache=True, nogil=True)
def _dot(a, b):
    """a . b for contiguous vectors. Reassociation lets LLVM vectorise the sum (see
    the module doc), 4-5x faster than any strict formulation we tried
    (interleaved partial sums, blocked or pairwise)."""
    s = a.dtype.type(0)
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


@njit(inline="always", **_SERIAL)
def _sparse_dot(vals, cols, lo, hi, x):
    """sum over p in [lo, hi) of vals[p] * x[cols[p]].

    A plain loop on purpose: inlined into a kernel compiled with ``_DOT`` flags,
    LLVM vectorises it with gathers and several vector accumulators; hand-unrolled
    partial sums defeat that and run 1.3-3x slower."""
    s = x.dtype.type(0)
    for p in range(lo, hi):
        s += vals[p] * x[cols[p]]
    return s


# -- spmm ---------------------------------------------------------------------


@njit(**_PARALLEL_DOT)
def csr_spmv(bounds, indptr, indices, data, x, out):
    """out = W @ x for a vector x: one gathered dot product per row."""
    for c in prange(len(bounds) - 1):
        for i in range(bounds[c], bounds[c + 1]):
            out[i] = _sparse_dot(data, indices, np.int64(indptr[i]), np.int64(indptr[i + 1]), x)
    return out


@njit(**_PARALLEL_DOT)
def csr_spmv_panels(bounds, panel_ptr, indices, data, starts, x, out):
    """out = W @ x with W cut into column panels: panel q holds columns
    starts[q]:starts[q+1] as its own CSR (row pointers ``panel_ptr[q]`` into the
    shared ``indices``, local to the panel, and ``data``). A thread takes its row
    range through one panel after another, so the slice of x its gathers hit
    stays in L1; gathers from L2 run at 60% of that rate (see
    ``inspector``: two thirds of the L1d)."""
    for c in prange(len(bounds) - 1):
        r0, r1 = bounds[c], bounds[c + 1]
        for i in range(r0, r1):
            out[i] = 0
        for q in range(panel_ptr.shape[0]):
            xs = x[starts[q] : starts[q + 1]]
            ptr = panel_ptr[q]
            for i in range(r0, r1):
                out[i] += _sparse_dot(data, indices, np.int64(ptr[i]), np.int64(ptr[i + 1]), xs)
    return out


@njit(**_PARALLEL)
def bsr_spmv(bounds, indptr, indices, blocks, x, out):
    """out = W @ x for a vector x, W in BSR: each block is a small dense
    mat-vec against a contiguous slice of x, summed into the block row's bh outputs."""
    bh, bw = blocks.shape[1], blocks.shape[2]
    for c in prange(len(bounds) - 1):
        acc = np.empty(bh, out.dtype)
        for bi in range(bounds[c], bounds[c + 1]):
            acc[:] = 0
            for p in range(np.int64(indptr[bi]), np.int64(indptr[bi + 1])):
                xs = x[indices[p] * bw : indices[p] * bw + bw]
                blk = blocks[p]
                for r in range(bh):
                    s = acc[r]
                    for cc in range(bw):
                        s += blk[r, cc] * xs[cc]
                    acc[r] = s
            out[bi * bh : bi * bh + bh] = acc
    return out


@njit(**_PARALLEL_DOT)
def nm_spmv(vals, cols, x, out):
    """out = W @ x for a vector x, W as in ``nm_spmm``."""
    m, r = vals.shape
    for i in prange(m):
        out[i] = _sparse_dot(vals[i], cols[i], 0, r, x)
    return out


# -- gather_mm ------------------------------------------------------------------


@njit(**_PARALLEL_DOT)
def gather_mv(w, rows, x, out):
    """out = w[rows] @ x for a vector x: contiguous dot products, eight selected
    rows per pass. The rows are scattered through w, so each is a fresh stream
    the prefetcher must pick up; eight at once keep eight streams in flight and
    read x once per eight rows (one core: 1.5x the time of the dense product with
    one row per iteration, 1.23x with four, 1.12x with eight)."""
    r = len(rows)
    for c in prange((r + 7) // 8):
        i0 = 8 * c
        if i0 + 8 <= r:
            w0, w1, w2, w3 = w[rows[i0]], w[rows[i0 + 1]], w[rows[i0 + 2]], w[rows[i0 + 3]]
            w4, w5, w6, w7 = w[rows[i0 + 4]], w[rows[i0 + 5]], w[rows[i0 + 6]], w[rows[i0 + 7]]
            z = x.dtype.type(0)
            s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = z
            for l in range(x.shape[0]):
                xv = x[l]
                s0 += w0[l] * xv
                s1 += w1[l] * xv
                s2 += w2[l] * xv
                s3 += w3[l] * xv
                s4 += w4[l] * xv
                s5 += w5[l] * xv
                s6 += w6[l] * xv
                s7 += w7[l] * xv
            out[i0], out[i0 + 1], out[i0 + 2], out[i0 + 3] = s0, s1, s2, s3
            out[i0 + 4], out[i0 + 5], out[i0 + 6], out[i0 + 7] = s4, s5, s6, s7
        else:
            for i in range(i0, r):
                wi = w[rows[i]]
                s = x.dtype.type(0)
                for l in range(x.shape[0]):
                    s += wi[l] * x[l]
                out[i] = s
    return out


@njit(**_SERIAL)
def take_rows(w, rows, buf):
    """buf[i] = w[rows[i]], serially in the calling thread.

    Serial on purpose: it runs right before an OpenBLAS product, and a Numba
    parallel copy there leaves its pool spinning on the cores OpenBLAS's pool is
    about to use (2-10x slower on two cores). One thread copies the selected rows
    at ~30 GB/s, a few percent of the product that follows."""
    for i in range(len(rows)):
        src, dst = w[rows[i]], buf[i]
        for l in range(src.shape[0]):
            dst[l] = src[l]
    return buf


# -- sddmm ----------------------------------------------------------------------


@njit(**_PARALLEL_DOT)
def sddmm(bounds, indptr, indices, a, bt, out):
    """out[p] = a[i] . b[:, j] for each mask nonzero p = (i, j), in CSR order.
    ``bt`` is B transposed so both operands of every dot product are contiguous."""
    for c in prange(len(bounds) - 1):
        for i in range(bounds[c], bounds[c + 1]):
            ar = a[i]
            for p in range(np.int64(indptr[i]), np.int64(indptr[i + 1])):
                out[p] = _dot(ar, bt[indices[p]])
    return out


# -- kwta -----------------------------------------------------------------------


@njit(**_SERIAL)
def _select(a, kth):
    """Reorder ``a`` in place so a[kth] is its kth smallest value; return that value
    (Hoare quickselect with a median-of-three pivot)."""
    lo, hi = 0, a.shape[0] - 1
    while hi > lo:
        mid = (lo + hi) // 2
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if kth <= j:
            hi = j
        elif kth >= i:
            lo = i
        else:
            break
    return a[kth]


@njit(**_SERIAL)
def _kth_largest(col, k, buf, sample):
    """The k-th largest value of ``col`` (1 <= k <= m), leaving ``col`` as it is.

    Quickselect on random data mispredicts about every other comparison, so it
    runs only on a narrow band: a strided sample brackets the k-th largest
    (three standard deviations of its rank either side), one branch-free pass
    counts the values above and inside the bracket, a second compacts the band,
    and the selection runs on that (10-20% of the column). If the bracket missed,
    the whole column is selected instead."""
    m, ns = col.shape[0], sample.shape[0]
    if m <= 4 * ns:
        buf[:m] = col
        return _select(buf[:m], m - k)
    step = m // ns
    for q in range(ns):
        sample[q] = col[q * step]
    frac = k / m
    centre = ns - frac * ns
    margin = 3.0 * np.sqrt(ns * frac * (1.0 - frac)) + 3.0
    lo_q = int(max(0.0, centre - margin))
    hi_q = int(min(ns - 1.0, centre + margin))
    hi_t = _select(sample, hi_q)
    lo_t = _select(sample[: hi_q + 1], lo_q)
    if hi_q == ns - 1:
        hi_t = np.inf
    if lo_q == 0:
        lo_t = -np.inf
    above = 0
    band = 0
    for i in range(m):
        v = col[i]
        above += v > hi_t
        band += (v >= lo_t) & (v <= hi_t)
    if above < k <= above + band:
        nb = 0
        for i in range(m):
            v = col[i]
            buf[nb] = v
            nb += (v >= lo_t) & (v <= hi_t)
        return _select(buf[:nb], nb - (k - above))
    buf[:m] = col
    return _select(buf[:m], m - k)


@njit(**_PARALLEL)
def kwta(x, k, width, out):
    """Keep the k largest entries of each column of x, exactly k: entries equal to the
    threshold are kept top-down until k are in. Columns go in blocks of ``width``
    copied into contiguous rows of a scratch tile, so the row-major input and
    output are read and written a cache line at a time."""
    m, n = x.shape
    ns = min(1024, max(64, int(4.0 * np.sqrt(m))))
    for c in prange((n + width - 1) // width):
        j0 = c * width
        wj = min(width, n - j0)
        # rows of the tile padded off a power-of-two stride, which would map a
        # tile column's entries to one cache set (2x slower copies)
        tile = np.empty((wj, m + 16), x.dtype)
        if k == 0:
            tile[:] = 0
        else:
            for i in range(m):
                for jj in range(wj):
                    tile[jj, i] = x[i, j0 + jj]
            buf = np.empty(m, x.dtype)
            sample = np.empty(ns, x.dtype)
            for jj in range(wj):
                col = tile[jj, :m]
                thr = _kth_largest(col, k, buf, sample)
                ties = k
                for i in range(m):
                    ties -= col[i] > thr
                for i in range(m):
                    v = col[i]
                    if v == thr and ties > 0:
                        ties -= 1
                    elif not v > thr:
                        col[i] = 0
        for i in range(m):
            for jj in range(wj):
                out[i, j0 + jj] = tile[jj, i]
    return out


# -- sparse_sparse ----------------------------------------------------------------


@njit(**_PARALLEL)
def sparse_sparse(wptr, wrows, wdata, xptr, xrows, xdata, yt, out):
    """out = W @ X from W in CSC and X in CSC: column j of the product adds
    x[l, j] * W[:, l] for the nonzeros of X's column j only, so the work is exactly
    the effective MACs. Columns are built as contiguous rows of the scratch ``yt``
    (n x m, private to one thread: scattering into row-major ``out`` would hit a
    different cache line per entry and share lines between threads), then
    transposed into ``out`` in tiles. ``yt`` has a few columns more than m, so that
    its rows are not a power-of-two stride apart: the transpose reads down its
    columns, and such a stride maps them all to one cache set."""
    m, n = out.shape
    for j in prange(n):
        yr = yt[j, :m]
        yr[:] = 0
        for q in range(np.int64(xptr[j]), np.int64(xptr[j + 1])):
            l, xv = xrows[q], xdata[q]
            for p in range(np.int64(wptr[l]), np.int64(wptr[l + 1])):
                yr[wrows[p]] += wdata[p] * xv
    tile = 32
    for b in prange((m + tile - 1) // tile):
        i0 = b * tile
        i1 = min(i0 + tile, m)
        for j0 in range(0, n, tile):
            for i in range(i0, i1):
                for j in range(j0, min(j0 + tile, n)):
                    out[i, j] = yt[j, i]
    return out


# -- lif ----------------------------------------------------------------------------


@njit(**_PARALLEL)
def lif(bounds, colptr, wrows, wdata, sptr, sidx, sval, one_du, one_dv, bias, vth, raster):
    """Event-driven LIF (see ``sparsekit.kernels.lif.simulate``), one neuron slice per
    prange iteration: the input spikes are given, so slices never interact and each
    runs all steps on its own (no barrier per step).

    ``colptr[s]`` is the CSC column pointer of W restricted to slice s (rows
    bounds[s]:bounds[s+1]); ``sptr``/``sidx``/``sval`` are the input events per step.
    Each spike adds its synapses in ascending input order, the order of the
    oracle's CSR row sums, and the updates are the oracle's, operation for operation.
    """
    steps = raster.shape[0]
    for s in prange(len(bounds) - 1):
        r0, r1 = bounds[s], bounds[s + 1]
        u = np.zeros(r1 - r0, raster.dtype)
        v = np.zeros(r1 - r0, raster.dtype)
        a = np.empty(r1 - r0, raster.dtype)
        for t in range(steps):
            a[:] = 0
            if t > 0:
                for q in range(np.int64(sptr[t - 1]), np.int64(sptr[t])):
                    l, sv = sidx[q], sval[q]
                    for p in range(np.int64(colptr[s, l]), np.int64(colptr[s, l + 1])):
                        a[wrows[p] - r0] += wdata[p] * sv
            for i in range(r1 - r0):
                ui = u[i] * one_du + a[i]
                vi = v[i] * one_dv + ui + bias
                u[i] = ui
                if vi > vth:
                    raster[t, r0 + i] = 1
                    v[i] = 0
                else:
                    raster[t, r0 + i] = 0
                    v[i] = vi
    return raster

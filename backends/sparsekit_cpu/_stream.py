"""The cpu backend's read probe for ``sparsekit calibrate``: its own threads reading memory.

A roofline ceiling must be at least what any kernel reaches. NumPy reaches a small working
set only through a Python call per pass (its overhead hides an L1 or L2 cache's speed) or a
compute-bound sum; this kernel reads the working set ``passes`` times inside one parallel
call, each thread summing its own contiguous slice with explicit vector loads into four
independent accumulators (``_simd``: what the register-tiled kernels use), so the figure
is the caches' and memory's, not the interpreter's.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import njit, prange

from ._simd import vadd, vfma, vload, vsplat, vsum, vzero


@functools.lru_cache(maxsize=None)
def read_kernel(L: int):
    """The read kernel for vectors of ``L`` float32 lanes (a compile-time constant)."""

    @njit(parallel=True, cache=True, nogil=True)
    def kernel(a, passes, parts, out):  # pragma: no cover - compiled
        n = a.shape[0]
        for t in prange(parts):
            lo = n * t // parts
            hi = n * (t + 1) // parts
            total = np.float32(0.0)
            for _ in range(passes):
                a0 = vzero(a, L)
                a1 = vzero(a, L)
                a2 = vzero(a, L)
                a3 = vzero(a, L)
                i = lo
                while i + 4 * L <= hi:
                    a0 = vadd(a0, vload(a, i, L))
                    a1 = vadd(a1, vload(a, i + L, L))
                    a2 = vadd(a2, vload(a, i + 2 * L, L))
                    a3 = vadd(a3, vload(a, i + 3 * L, L))
                    i += 4 * L
                s = vsum(vadd(vadd(a0, a1), vadd(a2, a3)))
                while i < hi:
                    s += a[i]
                    i += 1
                total += s
            out[t] = total

    return kernel


def read_plan(n_bytes: int, passes: int, threads: int, lanes: int = 16):
    """(run, result array) reading a float32 array of ``n_bytes`` ``passes`` times per call."""
    n = max(int(n_bytes) // 4, threads)
    a = np.ones(n, dtype=np.float32)  # filled: the pages are touched here, not in the timed call
    out = np.zeros(threads, dtype=np.float32)
    kernel = read_kernel(int(lanes))
    parts, p = np.int64(threads), np.int64(max(1, int(passes)))

    def run():
        kernel(a, p, parts, out)
        return out

    run()  # compile or load from Numba's cache: never timed
    return run, out


#: independent accumulators of the FMA probe: enough to cover an FMA's latency on every pipe
#: (4-cycle latency x 2 pipes needs 8; 12 leaves room)
FMA_CHAINS = 12


@functools.lru_cache(maxsize=None)
def fma_kernel(L: int, dtype):
    """The peak probe for vectors of ``L`` lanes of ``dtype``: FMA_CHAINS independent chains
    ``acc = acc * m + c`` held in registers, ``iters`` rounds per thread."""
    one = dtype(0.9999999) if dtype is np.float32 else dtype(0.999999999999)

    @njit(parallel=True, cache=True, nogil=True)
    def kernel(iters, parts, out):  # pragma: no cover - compiled
        for t in prange(parts):
            c = vsplat(dtype(0.001 * (t + 1)), L)
            a0 = vsplat(dtype(1.0), L)
            a1, a2, a3, a4, a5 = a0, a0, a0, a0, a0
            a6, a7, a8, a9, a10, a11 = a0, a0, a0, a0, a0, a0
            for _ in range(iters):
                a0 = vfma(a0, one, c)
                a1 = vfma(a1, one, c)
                a2 = vfma(a2, one, c)
                a3 = vfma(a3, one, c)
                a4 = vfma(a4, one, c)
                a5 = vfma(a5, one, c)
                a6 = vfma(a6, one, c)
                a7 = vfma(a7, one, c)
                a8 = vfma(a8, one, c)
                a9 = vfma(a9, one, c)
                a10 = vfma(a10, one, c)
                a11 = vfma(a11, one, c)
            s = vadd(vadd(vadd(a0, a1), vadd(a2, a3)), vadd(vadd(a4, a5), vadd(a6, a7)))
            out[t] = vsum(vadd(s, vadd(vadd(a8, a9), vadd(a10, a11))))

    return kernel


def fma_plan(threads: int, lanes: int, dtype=np.float32, iters: int = 2_000_000):
    """(run, flops per call): the FMA peak probe on ``threads`` threads."""
    dtype = np.dtype(dtype).type
    kernel = fma_kernel(int(lanes), dtype)
    out = np.zeros(threads, dtype=dtype)
    parts, n = np.int64(threads), np.int64(iters)

    def run():
        kernel(n, parts, out)
        return out

    run()  # compile or load from Numba's cache: never timed
    return run, 2.0 * lanes * FMA_CHAINS * iters * threads

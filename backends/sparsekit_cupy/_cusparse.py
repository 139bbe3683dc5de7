"""cuSPARSE SpMM bound once: descriptors, workspace and scalars are made in ``prepare``, so that
the timed call is ``cusparseSpMM`` alone.

``cupyx.cusparse.spmm`` builds three descriptors, asks for the workspace size and allocates the
workspace on every call: host work and a device allocation inside the timed region, where our
own kernels launch with their arguments already bound, which would skew cuSPARSE's side of the
break-even. Here the generic API is driven through CuPy's low-level bindings
(``cupy_backends.cuda.libs.cusparse``), as ``cupyx.cusparse.spmm`` itself does: column-major B
and C (the layout every cuSPARSE version takes for CSR SpMM), 32-bit indices, the default
algorithm, compute type = the values' type. The bindings set the handle's stream to the
current stream on each call.

C is zero-filled once here: with beta = 0 cuSPARSE is not meant to read it, but a NaN left in
freshly allocated memory would survive any implementation that scales C instead of skipping
it; CuPy's own ``spmm`` hands cuSPARSE zeros too, and the zeros cost nothing outside the call.
"""
from __future__ import annotations

import weakref

import cupy
import numpy as np
from cupy_backends.cuda.libs import cusparse as _cs

#: cudaDataType of the value types cuSPARSE SpMM is used for here (ABI-stable enum values)
CUDA_R = {np.dtype(np.float32): 0, np.dtype(np.float64): 1}


def _const(name: str, value: int) -> int:
    """A cuSPARSE enum value from the bindings, else its ABI value (older CuPy exports fewer names)."""
    return int(getattr(_cs, name, value))


def _destroy(mat_a, mat_b, mat_c) -> None:
    _cs.destroySpMat(mat_a)
    _cs.destroyDnMat(mat_b)
    _cs.destroyDnMat(mat_c)


class PreparedSpMM:
    """``C = A @ B`` with A an m x k CSR (device arrays indptr, indices, data; int32 indices) and B
    (k x n), C (m x n) column-major device arrays of A's value type. Calling it enqueues the SpMM
    on the current stream and returns C; the caller synchronises."""

    def __init__(self, indptr, indices, data, shape, b, c):
        m, k = (int(d) for d in shape)
        dt = np.dtype(data.dtype)
        if dt not in CUDA_R:
            raise TypeError(f"cuSPARSE SpMM is used for float32 and float64, not {dt}")
        for name, arr, rows in (("B", b, k), ("C", c, m)):
            if arr.dtype != dt or not arr.flags.f_contiguous or arr.shape[0] != rows:
                raise ValueError(f"{name} must be a column-major {dt} array with {rows} rows, got {arr.dtype} {arr.shape}")
        n = int(b.shape[1])
        self.cuda_dtype = CUDA_R[dt]
        self.op = _const("CUSPARSE_OPERATION_NON_TRANSPOSE", 0)
        self.alg = _const("CUSPARSE_MM_ALG_DEFAULT", 0)
        col_major = _const("CUSPARSE_ORDER_COL", 1)
        idx32 = _const("CUSPARSE_INDEX_32I", 2)
        self.handle = cupy.cuda.device.get_cusparse_handle()
        self.mat_a = _cs.createCsr(m, k, int(data.size), indptr.data.ptr, indices.data.ptr, data.data.ptr, idx32, idx32,
                                   _const("CUSPARSE_INDEX_BASE_ZERO", 0), self.cuda_dtype)
        self.mat_b = _cs.createDnMat(k, n, max(k, 1), b.data.ptr, self.cuda_dtype, col_major)
        self.mat_c = _cs.createDnMat(m, n, max(m, 1), c.data.ptr, self.cuda_dtype, col_major)
        self._finalizer = weakref.finalize(self, _destroy, self.mat_a, self.mat_b, self.mat_c)
        self._finalizer.atexit = False  # host-side handles: nothing to free once the process ends
        # host scalars (CUSPARSE_POINTER_MODE_HOST, the handle's default), kept alive with the plan
        self.alpha = np.ones((), dtype=dt)
        self.beta = np.zeros((), dtype=dt)
        size = _cs.spMM_bufferSize(self.handle, self.op, self.op, self.alpha.ctypes.data, self.mat_a, self.mat_b,
                                   self.beta.ctypes.data, self.mat_c, self.cuda_dtype, self.alg)
        self.buffer = cupy.empty(max(int(size), 1), dtype=np.int8)
        self._arrays = (indptr, indices, data, b, c)  # the descriptors point into these
        self.c = c

    def __call__(self):
        _cs.spMM(self.handle, self.op, self.op, self.alpha.ctypes.data, self.mat_a, self.mat_b, self.beta.ctypes.data,
                 self.mat_c, self.cuda_dtype, self.alg, self.buffer.data.ptr)
        return self.c

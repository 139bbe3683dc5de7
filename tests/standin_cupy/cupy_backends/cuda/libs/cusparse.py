"""Stand-in for CuPy's low-level cuSPARSE bindings: the generic SpMM, computed in NumPy.

``calls`` counts every binding called, so a test can see what a timed call does. ``spMM``
computes C = alpha A B + beta C literally -- it scales C instead of skipping it when beta
is 0 -- so a NaN left in C shows in the result, which a plan must prevent.
"""
import collections
import ctypes
import itertools

import numpy as np
import scipy.sparse as sp

import cupy

CUSPARSE_OPERATION_NON_TRANSPOSE = 0
CUSPARSE_INDEX_BASE_ZERO = 0
CUSPARSE_ORDER_COL = 1
CUSPARSE_INDEX_32I = 2
CUSPARSE_MM_ALG_DEFAULT = 0
_DTYPES = {0: np.float32, 1: np.float64}

calls = collections.Counter()
_descriptors = {}
_ids = itertools.count(1)


def _new(kind, **spec):
    handle = next(_ids)
    _descriptors[handle] = (kind, spec)
    return handle


def createCsr(rows, cols, nnz, indptr, indices, values, indptr_type, index_type, base, value_type):
    calls["createCsr"] += 1
    assert indptr_type == index_type == CUSPARSE_INDEX_32I and base == CUSPARSE_INDEX_BASE_ZERO
    arrays = [cupy.array_at(p) for p in (indptr, indices, values)]
    assert arrays[2].dtype == _DTYPES[value_type] and arrays[2].size == nnz and arrays[0].size == rows + 1
    return _new("csr", shape=(rows, cols), arrays=arrays)


def createDnMat(rows, cols, ld, values, value_type, order):
    calls["createDnMat"] += 1
    a = cupy.array_at(values)
    assert order == CUSPARSE_ORDER_COL and a.flags.f_contiguous and a.shape == (rows, cols) and ld == max(rows, 1)
    assert a.dtype == _DTYPES[value_type]
    return _new("dense", array=a)


def destroySpMat(desc):
    calls["destroySpMat"] += 1
    _descriptors.pop(desc)


def destroyDnMat(desc):
    calls["destroyDnMat"] += 1
    _descriptors.pop(desc)


def spMM_bufferSize(handle, op_a, op_b, alpha, mat_a, mat_b, beta, mat_c, compute_type, alg):
    calls["spMM_bufferSize"] += 1
    return 1024


def _scalar(ptr, dtype):
    """The host scalar at ``ptr`` (CUSPARSE_POINTER_MODE_HOST)."""
    return (ctypes.c_float if dtype == np.float32 else ctypes.c_double).from_address(ptr).value


def spMM(handle, op_a, op_b, alpha, mat_a, mat_b, beta, mat_c, compute_type, alg, buffer):
    calls["spMM"] += 1
    assert op_a == op_b == CUSPARSE_OPERATION_NON_TRANSPOSE
    dtype = _DTYPES[compute_type]
    (_, a), (_, b), (_, c) = (_descriptors[d] for d in (mat_a, mat_b, mat_c))
    indptr, indices, values = a["arrays"]
    w = sp.csr_matrix((np.asarray(values), np.asarray(indices), np.asarray(indptr)), shape=a["shape"])
    out = c["array"]
    out[...] = _scalar(alpha, dtype) * (w @ np.asarray(b["array"])) + _scalar(beta, dtype) * np.asarray(out)

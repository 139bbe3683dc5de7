"""The ``cpu`` backend's strategies: named ways to run a kernel, each a separately tested unit.

``NAMES`` is the stable registry: append only, never reorder, so that a
strategy's number (``code(name)``) means the same in every stored result (asv
keeps numbers, not strings). ``KERNEL`` says which catalogue kernel each serves.

A builder turns prepared operands and the inspector's parameters into the call
that ``Plan`` times; builders for one kernel take the same operands object, so
tuning can build several candidates over one set of arrays (``_layout``).
"""
from __future__ import annotations

import numpy as np

from . import _kernels as K
from . import _tiles as T

#: every strategy, in a fixed order (append new ones at the end)
NAMES = (
    "dense.blas",           # dense_mm: NumPy's BLAS
    "spmv.rows",            # CSR x vector: one gathered dot product per row, row ranges in parallel
    "spmv.panels",          # ... with W cut into column panels whose slice of x stays in L1
    "spmv.split",           # ... on a merge-path (nonzero) split, for rows too long to balance
    "spmm.rows",            # CSR x X: register tiles across X's columns, row ranges in parallel
    "spmm.panels",          # ... with column panels whose rows of X stay in L2
    "spmm.split",           # ... on a merge-path (nonzero) split
    "bsr.tiles",            # BSR x X: 4-row register tiles per block row (OSKI)
    "bsr.spmv",             # BSR x vector: a small dense mat-vec per block
    "nm.tiles",             # N:M x X: the CSR register tiles on the equal-length rows
    "nm.spmv",              # N:M x vector: gathered dot products
    "gather.dot",           # W[rows] @ x, one column: eight selected rows' dot products at once
    "gather.tiles",         # W[rows] @ X: 4-row register tiles reading the rows in place
    "gather.copy_blas",     # W[rows] copied into a buffer, then BLAS
    "gather.strided_blas",  # rows equally spaced: BLAS reads them in place through a strided view
    "sddmm.dots",           # mask-only SDDMM, contiguous dot products (B transposed), auto-vectorised
    "kwta.select",          # banded quickselect per column
    "sparse_sparse.scatter",  # CSC x CSC: scatter only the effective MACs
    "lif.events",           # event-driven LIF, neuron slices in parallel
    "moe.grouped",          # routed tokens grouped per expert, one BLAS product each
    "spmv.bitmap",          # CSR x vector, dense enough: a bit per column, values packed, no gather (AVX-512)
    "sddmm.tiles",          # mask-only SDDMM, A's row held in registers across the row's nonzeros
    "sddmm.panels",         # ... with B^T in column panels that stay in L2
)

KERNEL = {name: {"dense": "dense_mm", "spmv": "spmm", "spmm": "spmm", "bsr": "spmm", "nm": "spmm",
                 "gather": "gather_mm", "sddmm": "sddmm", "kwta": "kwta", "sparse_sparse": "sparse_sparse",
                 "lif": "lif", "moe": "moe"}[name.split(".")[0]] for name in NAMES}


def code(name: str) -> int:
    """The stable number of a strategy (its place in ``NAMES``)."""
    try:
        return NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown cpu strategy {name!r}; known: {', '.join(NAMES)}") from None


# -- CSR products (operands: _layout.CsrOperands) ---------------------------------------------------


def _spmv_rows(op, p):
    xv, ov = op.x.reshape(-1), op.out.reshape(-1)
    b, ip, ix, d = op.bounds, op.indptr, op.indices, op.data
    return lambda: (K.csr_spmv(b, ip, ix, d, xv, ov), op.out)[1]


def _spmv_panels(op, p):
    xv, ov = op.x.reshape(-1), op.out.reshape(-1)
    b = op.bounds
    pptr, pidx, pdata, starts = op.panels(p["panel_width"])
    return lambda: (K.csr_spmv_panels(b, pptr, pidx, pdata, starts, xv, ov), op.out)[1]


def _spmv_split(op, p):
    xv, ov = op.x.reshape(-1), op.out.reshape(-1)
    rows, pos = op.split
    carry = np.zeros((len(rows) - 1, 2), op.dtype)
    ip, ix, d = op.indptr, op.indices, op.data
    return lambda: (T.spmv_split(rows, pos, ip, ix, d, xv, ov, carry), op.out)[1]


def _spmv_bitmap(op, p):
    f = T.spmv_bitmap(p["L"])
    masks, rowptr, values, xp = op.bitmap(p["L"])
    b, ov = op.bounds, op.out.reshape(-1)
    return lambda: (f(b, masks, rowptr, values, xp, ov), op.out)[1]


def _spmm_rows(op, p):
    f = T.spmm_rows(p["S"], p["U"], p["L"])
    b, ip, ix, d, x, out = op.bounds, op.indptr, op.indices, op.data, op.x, op.out
    return lambda: f(b, ip, ix, d, x, out)


def _spmm_panels(op, p):
    f = T.spmm_panels(p["S"], p["U"], p["L"])
    pptr, pidx, pdata, starts = op.panels(p["panel_rows"])
    b, x, out = op.bounds, op.x, op.out
    return lambda: f(b, pptr, pidx, pdata, starts, x, out)


def _spmm_split(op, p):
    f = T.spmm_split(p["S"], p["U"], p["L"])
    rows, pos = op.split
    carry = np.zeros((len(rows) - 1, 2, 1, op.n), op.dtype)
    ip, ix, d, x, out = op.indptr, op.indices, op.data, op.x, op.out
    return lambda: f(rows, pos, ip, ix, d, x, out, carry)


# -- GATHER_MM (operands: _layout.GatherOperands) ---------------------------------------------------


def _gather_dot(op, p):
    w, rows, xv, ov = op.w, op.rows, op.x.reshape(-1), op.out.reshape(-1)
    return lambda: (K.gather_mv(w, rows, xv, ov), op.out)[1]


def _gather_tiles(op, p):
    f = T.gather_tiles(p["S"], p["L"])
    w, rows, x, out = op.w, op.rows, op.x, op.out
    return lambda: f(w, rows, x, out)


def _gather_copy_blas(op, p):
    w, rows, x, out = op.w, op.rows, op.x, op.out
    buf = np.empty((len(rows), w.shape[1]), w.dtype)
    return lambda: np.matmul(K.take_rows(w, rows, buf), x, out=out)


def _gather_strided_blas(op, p):
    # rows[0], rows[0] + s, ...: a strided view BLAS reads in place (lda = s * k)
    first, step = int(op.rows[0]), int(p["stride"])
    view = op.w[first : first + step * (len(op.rows) - 1) + 1 : step]
    x, out = op.x, op.out
    return lambda: np.matmul(view, x, out=out)


# -- SDDMM (operands: _layout.SddmmOperands) --------------------------------------------------------


def _sddmm_dots(op, p):
    b, ip, ix, a, bt, out = op.bounds, op.indptr, op.indices, op.a, op.bt, op.out
    return lambda: K.sddmm(b, ip, ix, a, bt, out)


def _sddmm_tiles(op, p):
    f = T.sddmm_tiles(p["S"], p["L"])
    b, cuts, ix, a, bt, out = op.bounds, op.cuts(p.get("panel_rows")), op.indices, op.a, op.bt, op.out
    return lambda: f(b, cuts, ix, a, bt, out)


BUILDERS = {
    "spmv.rows": _spmv_rows, "spmv.panels": _spmv_panels, "spmv.split": _spmv_split, "spmv.bitmap": _spmv_bitmap,
    "spmm.rows": _spmm_rows, "spmm.panels": _spmm_panels, "spmm.split": _spmm_split,
    "gather.dot": _gather_dot, "gather.tiles": _gather_tiles, "gather.copy_blas": _gather_copy_blas,
    "gather.strided_blas": _gather_strided_blas,
    "sddmm.dots": _sddmm_dots, "sddmm.tiles": _sddmm_tiles, "sddmm.panels": _sddmm_tiles,
}


def build(name: str, operands, params: dict):
    """The call that runs strategy ``name`` on ``operands`` (a no-argument function
    returning the result array)."""
    try:
        builder = BUILDERS[name]
    except KeyError:
        raise ValueError(f"strategy {name!r} has no builder (choose one of {', '.join(BUILDERS)})") from None
    return builder(operands, params)


def streamed_bytes(strategy) -> int | None:
    """Bytes a CSR SpMV strategy streams from memory per call, from its ``Plan.strategy``:
    values, column indices at the width ``_layout`` stores them (uint16 up to 65536
    columns, or per panel), the row pointers once per panel, x and y once. None for
    strategies this model does not cover."""
    f, name = strategy.facts, strategy.name
    if name not in ("spmv.rows", "spmv.panels", "spmv.split", "spmv.bitmap"):
        return None
    m, k, nnz, item = f["m"], f["k"], f["nnz"], f["itemsize"]
    ptr = 4 if max(nnz, k) < 2**32 - 1 else 8
    if name == "spmv.bitmap":  # values, one bit per column, row pointers, x and y
        lanes = f["L"]
        return nnz * item + m * -(-k // lanes) * (lanes // 8) + (m + 1) * ptr + (k + m) * item
    width = f["panel_width"] if name == "spmv.panels" else k
    panels = -(-k // width) if name == "spmv.panels" else 1
    index = 2 if width <= 2**16 else 4 if max(nnz, k) < 2**32 - 1 else 8
    return nnz * (item + index) + panels * (m + 1) * ptr + (k + m) * item

"""The ``numpy`` backend: every kernel in straight NumPy, in the problem's dtype.

It is the loopback backend (it exercises the dispatch machinery with nothing but
NumPy installed) and the dense baseline (``dense_mm`` is NumPy's BLAS matmul).
This module stays import-light: ``info()`` is read by ``sparsekit backends``.
"""
from __future__ import annotations

KERNELS = {
    "dense_mm": ("dense",),
    "spmm": ("csr", "bsr", "nm"),
    "sddmm": ("dense",),
    "gather_mm": ("dense",),
    "kwta": ("dense",),
    "sparse_sparse": ("dense",),
    "lif": ("dense",),
    "moe": ("dense",),
}
DTYPES = ("float32", "float64")


def _device() -> str:
    from sparsekit.host import cpu_description

    return cpu_description()


def info() -> dict:
    return {
        "name": "numpy",
        "device": _device(),
        "kernels": KERNELS,
        "dtypes": DTYPES,
        "requires": ("numpy",),
        "load": "sparsekit_numpy.backend:NumpyBackend",
    }

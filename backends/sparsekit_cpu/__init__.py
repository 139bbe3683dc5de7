"""The ``cpu`` backend: SciPy CSR/BSR where they are good, multithreaded Numba kernels elsewhere.

Import-light on purpose: ``info()`` is read by ``sparsekit backends`` without
importing Numba; the kernels live in ``sparsekit_cpu.backend``.
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


def info() -> dict:
    from sparsekit._sysinfo import cpu_description

    return {
        "name": "cpu",
        "device": cpu_description(),
        "kernels": KERNELS,
        "dtypes": DTYPES,
        "requires": ("scipy", "numba"),
        "load": "sparsekit_cpu.backend:CpuBackend",
    }

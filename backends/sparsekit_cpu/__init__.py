"""The ``cpu`` backend: SciPy CSR/BSR where they are good, multithreaded Numba kernels elsewhere.

Import-light on purpose: ``info()`` is read by ``sparsekit backends`` without
importing Numba; the kernels live in ``sparsekit_cpu.backend``.

Threads: Numba kernels use ``SPARSEKIT_NUM_THREADS`` threads if set, else
``NUMBA_NUM_THREADS`` (all cores by default), on Numba's ``omp`` threading layer
unless ``NUMBA_THREADING_LAYER[_PRIORITY]`` says otherwise; NumPy's BLAS keeps the
count ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` gave it at import. How the
pools are kept from fighting: ``sparsekit_cpu.backend``'s docstring. Compiled kernels
are cached on disk by Numba (``__pycache__`` next to ``_kernels.py``), so only the
first process after a change to the kernels pays the JIT compile.
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
    from .machine import cpu_description

    return {
        "name": "cpu",
        "device": cpu_description(),
        "kernels": KERNELS,
        "dtypes": DTYPES,
        "requires": ("scipy", "numba"),
        "load": "sparsekit_cpu.backend:CpuBackend",
    }

"""The ``cpu`` backend: an inspector-executor over multithreaded, explicit-SIMD Numba kernels.

``prepare`` inspects each sparse operand and the machine and picks a strategy (see
``sparsekit_cpu.backend`` and ``sparsekit_cpu.inspector``); ``plan.strategy`` says which
and why. ``tune()`` times the choices the model leaves open on this machine and remembers
them (``sparsekit_cpu.wisdom``); ``SPARSEKIT_CPU_TUNE=1`` does so during ``prepare``.

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
    from sparsekit.host import cpu_description

    return {
        "name": "cpu",
        "device": cpu_description(),
        "kernels": KERNELS,
        "dtypes": DTYPES,
        "requires": ("scipy", "numba"),
        "load": "sparsekit_cpu.backend:CpuBackend",
    }


def tune(problems=None, progress=print):
    """Time the strategies the inspector cannot decide between on ``problems`` (``make_problem``
    keyword dicts with a ``kernel``; default: the suite's CSR SpMM grid, DLMC masks and the
    selector) and remember the winners for this machine (``sparsekit calibrate --tune``).
    See ``sparsekit_cpu.tuning.tune``."""
    from .tuning import tune as _tune

    return _tune(problems, progress)

"""``sparsekit-scipy``: SciPy's sparse formats as a sparsekit backend (an out-of-tree example).

``info()`` is what sparsekit reads to list the backend (``sparsekit backends``): it must
stay cheap, so it imports neither SciPy nor sparsekit's heavy parts. The backend class
lives in ``sparsekit_scipy.backend`` and is imported only when the backend is used.
"""
from __future__ import annotations

#: kernel -> storage formats this backend implements ("dense": the kernel has no format choice)
KERNELS = {
    "dense_mm": ("dense",),
    "spmm": ("csr", "bsr", "nm"),
    "sparse_sparse": ("dense",),
}
#: scipy.sparse has no half-precision arithmetic
DTYPES = ("float32", "float64")


def info() -> dict:
    from sparsekit.host import cpu_description  # sparsekit's public host module: stdlib only

    return {
        "name": "scipy",
        "device": f"{cpu_description()} (SciPy sparse)",
        "kernels": KERNELS,
        "dtypes": DTYPES,
        "requires": ("scipy",),
        "load": "sparsekit_scipy.backend:ScipyBackend",
    }

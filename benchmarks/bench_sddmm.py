"""SDDMM: out = mask * (A @ B), computed only at the output mask's nonzeros.

``shape`` is m x k x n of A @ B (mask m x n, reduction k): the dense equivalent is
the full product.
"""
from .common import BACKENDS, KernelBenchmark, dims, grid, shape

SHAPES = grid([shape(1024, 64, 1024)], [shape(1024, 64, 1024), shape(2048, 64, 2048), shape(4096, 128, 4096)])
PATTERNS = grid(["uniform"], ["uniform", "block"])
SPARSITIES = grid([0.5, 0.8, 0.9, 0.95, 0.98, 0.99], [0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995])


def dense_shapes() -> list[str]:
    return list(SHAPES)


class SDDMM(KernelBenchmark):
    kernel = "sddmm"
    param_names = ["backend", "pattern", "shape", "sparsity"]
    params = [BACKENDS, PATTERNS, SHAPES, SPARSITIES]

    def problem_params(self, pattern, shape, sparsity):
        m, k, n = dims(shape)
        return {"m": m, "k": k, "n": n, "sparsity": sparsity, "pattern": pattern}

    def time_sddmm(self, backend, pattern, shape, sparsity):
        self.plan()

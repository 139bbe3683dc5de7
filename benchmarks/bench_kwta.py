"""KWTA: keep the k largest entries of every column (dynamic activation sparsity).

``shape`` is m x n (units x batch); ``sparsity`` = 1 - k/m. No dense equivalent:
the report lists no break-even for it.
"""
from .common import BACKENDS, KernelBenchmark, dims, grid, shape

SHAPES = grid([shape(2048, 64)], [shape(2048, 64), shape(4096, 256), shape(16384, 64)])
SPARSITIES = grid([0.5, 0.9, 0.95, 0.99], [0.5, 0.8, 0.9, 0.95, 0.98, 0.99])


class KWTA(KernelBenchmark):
    kernel = "kwta"
    param_names = ["backend", "shape", "sparsity"]
    params = [BACKENDS, SHAPES, SPARSITIES]

    def problem_params(self, shape, sparsity):
        m, n = dims(shape)
        return {"m": m, "n": n, "sparsity": sparsity}

    def time_kwta(self, backend, shape, sparsity):
        self.plan()

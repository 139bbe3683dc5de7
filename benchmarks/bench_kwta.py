"""KWTA: keep the k largest entries of every column (dynamic activation sparsity).

``shape`` is m x n (units x batch); ``sparsity`` = 1 - k/m. No dense equivalent:
the report lists no break-even for it. Grid: the kwta spec's ``benchmarks``.
"""
from .common import KernelBenchmark


class KWTA(KernelBenchmark):
    kernel = "kwta"
    grid_name = "KWTA"

    def time_kwta(self, backend, shape, sparsity):
        self.plan()

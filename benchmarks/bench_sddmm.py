"""SDDMM: out = mask * (A @ B), computed only at the output mask's nonzeros.

``shape`` is m x k x n of A @ B (mask m x n, reduction k): the dense equivalent is
the full product. Grid: the sddmm spec's ``benchmarks``.
"""
from .common import KernelBenchmark


class SDDMM(KernelBenchmark):
    kernel = "sddmm"
    grid_name = "SDDMM"

    def time_sddmm(self, backend, pattern, shape, sparsity):
        self.plan()

"""MoE: a top-k gate, then only the chosen experts' matmuls (conditional computation).

``shape`` is experts x m x k x n (n tokens); ``top_k`` experts run per token, so
the sparsity exploited is 1 - top_k/experts. The dense equivalent runs all
experts: an (experts*m) x k x n product. Grid: the moe spec's ``benchmarks``.
"""
from .common import KernelBenchmark


class MoE(KernelBenchmark):
    kernel = "moe"
    grid_name = "MoE"

    def problem_params(self, shape, top_k):
        kw = self._grid_problem_params(shape, top_k)
        if top_k > kw["experts"]:
            raise NotImplementedError(f"top_k={top_k} > experts={kw['experts']}")
        return kw

    def time_moe(self, backend, shape, top_k):
        self.plan()

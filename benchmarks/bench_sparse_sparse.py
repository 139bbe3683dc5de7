"""SparseSparse: W sparse @ X whose columns are k-WTA sparse (weights and activations).

``sparsity`` is the weight sparsity (the swept figure), ``act_sparsity`` the
activations'; the dense equivalent is the m x k x n product. Grid: the
sparse_sparse spec's ``benchmarks``.
"""
from .common import KernelBenchmark


class SparseSparse(KernelBenchmark):
    kernel = "sparse_sparse"
    grid_name = "SparseSparse"

    def time_sparse_sparse(self, backend, act_sparsity, shape, sparsity):
        self.plan()

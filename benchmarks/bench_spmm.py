"""SpMM: Y = W @ X with W stored sparse.

The grids are the spmm spec's (``sparsekit.kernels.spmm.SpMM.benchmarks``):

* ``SpMM``: CSR over generated patterns (uniform; full grid adds block and
  power-law rows) x shape x weight sparsity.
* ``SpMMFormats``: structured formats, BSR (block pattern, square blocks) and N:M.
* ``SpMMDLMC``: real pruned masks (DLMC, magnitude pruning) at every vendored
  level, with N of the original SC20 benchmark.
"""
from .common import KernelBenchmark


class SpMM(KernelBenchmark):
    kernel = "spmm"
    grid_name = "SpMM"

    def time_spmm(self, backend, pattern, shape, sparsity):
        self.plan()


class SpMMFormats(KernelBenchmark):
    kernel = "spmm"
    grid_name = "SpMMFormats"

    def time_spmm(self, backend, fmt, shape, sparsity):
        self.plan()


class SpMMDLMC(KernelBenchmark):
    kernel = "spmm"
    grid_name = "SpMMDLMC"

    def time_spmm(self, backend, matrix, sparsity):
        self.plan()

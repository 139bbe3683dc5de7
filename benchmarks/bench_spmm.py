"""SpMM: Y = W @ X with W stored sparse.

* ``SpMM``: CSR over generated patterns (uniform; full grid adds block and
  power-law rows) x shape x weight sparsity.
* ``SpMMFormats``: structured formats, BSR (block pattern, square blocks) and N:M.
* ``SpMMDLMC``: real pruned masks (DLMC, magnitude pruning) at every vendored
  level, with N of the original SC20 benchmark.
"""
from sparsekit import io

from .common import BACKENDS, SPARSITIES, SPARSITIES_FULL, KernelBenchmark, dims, dlmc_shape, grid, shape

SHAPES = grid(
    [shape(2048, 2048, 1), shape(2048, 2048, 64)],
    [shape(2048, 2048, n) for n in (1, 64, 128, 256)] + [shape(4096, 4096, n) for n in (1, 64, 128, 256)],
)
PATTERNS = grid(["uniform"], ["uniform", "block", "powerlaw"])

#: format label -> make_problem keywords; N:M sparsities are those N:M can express
FORMATS = {
    "bsr4x4": {"format": "bsr", "pattern": "block", "blocksize": (4, 4)},
    "bsr16x16": {"format": "bsr", "pattern": "block", "blocksize": (16, 16)},
    "nm": {"format": "nm", "pattern": "nm"},
}
FORMAT_NAMES = grid(["bsr4x4", "nm"], list(FORMATS))
FORMAT_SHAPES = grid([shape(2048, 2048, 64)], [shape(2048, 2048, 64), shape(4096, 4096, 64), shape(4096, 4096, 256)])
#: 2:4, 1:4, 1:8, 1:16, 1:32 (and 1:64) -- block patterns take the same levels
FORMAT_SPARSITIES = grid([0.5, 0.75, 0.875, 0.9375, 0.96875], [0.5, 0.75, 0.875, 0.9375, 0.96875, 0.984375])

DLMC_NAMES = list(io.DLMC_MATRICES)
DLMC_LEVELS = list(io.DLMC_LEVELS)


def dense_shapes() -> list[str]:
    return list(dict.fromkeys(SHAPES + FORMAT_SHAPES + [dlmc_shape(name) for name in DLMC_NAMES]))


class SpMM(KernelBenchmark):
    kernel = "spmm"
    format = "csr"
    param_names = ["backend", "pattern", "shape", "sparsity"]
    params = [BACKENDS, PATTERNS, SHAPES, grid(SPARSITIES, SPARSITIES_FULL)]

    def problem_params(self, pattern, shape, sparsity):
        m, k, n = dims(shape)
        return {"m": m, "k": k, "n": n, "sparsity": sparsity, "pattern": pattern, "format": "csr"}

    def time_spmm(self, backend, pattern, shape, sparsity):
        self.plan()


class SpMMFormats(KernelBenchmark):
    kernel = "spmm"
    param_names = ["backend", "format", "shape", "sparsity"]
    params = [BACKENDS, FORMAT_NAMES, FORMAT_SHAPES, FORMAT_SPARSITIES]

    def fmt(self, fmt, shape, sparsity):
        return FORMATS[fmt]["format"]

    def problem_params(self, fmt, shape, sparsity):
        m, k, n = dims(shape)
        return {"m": m, "k": k, "n": n, "sparsity": sparsity, **FORMATS[fmt]}

    def time_spmm(self, backend, fmt, shape, sparsity):
        self.plan()


class SpMMDLMC(KernelBenchmark):
    kernel = "spmm"
    format = "csr"
    param_names = ["backend", "matrix", "sparsity"]
    params = [BACKENDS, DLMC_NAMES, DLMC_LEVELS]

    def problem_params(self, matrix, sparsity):
        return {"matrix": matrix, "sparsity": sparsity, "n": io.DLMC_MATRICES[matrix][1], "format": "csr"}

    def time_spmm(self, backend, matrix, sparsity):
        self.plan()

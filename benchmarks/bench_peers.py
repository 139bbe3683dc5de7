"""Peers: one representative problem per kernel family, every backend side by side.

The sweeps in the other modules answer "where does sparse beat dense on this
backend"; this view answers "who is ahead": the backend (torch, the peer users
pick today, included) is the only axis that matters, at one or two shapes per
family, so the published history shows each backend's line beside torch's.

* ``PeersDenseMM``: 4096 x 4096 weights, batch 1 and 128 (the dense equivalent of
  ``PeersSpMM``).
* ``PeersSpMM``: CSR, uniform 90% sparse 4096 x 4096 weights, batch 1 and 128.
* ``PeersGatherMM``: 1000 of 20000 rows of a 20000 x 1000 W, batch 1 and 64.
* ``PeersSDDMM``: 2048 x 2048 output mask at 90%, reduction 64.
* ``PeersKWTA``: 10% winners of 4096 units, batch 64.

Parameters are fixed (never what is installed); an unavailable backend is n/a.
"""
from .common import BACKENDS, KernelBenchmark, dims, shape

SPMM_SHAPES = [shape(4096, 4096, 1), shape(4096, 4096, 128)]
SPMM_SPARSITY = 0.9
GATHER_SHAPES = [shape(20000, 1000, 1), shape(20000, 1000, 64)]
GATHER_ROWS = 1000
SDDMM_SHAPE = shape(2048, 64, 2048)
KWTA_SHAPE = shape(4096, 64)


class PeersDenseMM(KernelBenchmark):
    kernel = "dense_mm"
    param_names = ["backend", "shape"]
    params = [BACKENDS, SPMM_SHAPES]

    def problem_params(self, shape):
        m, k, n = dims(shape)
        return {"m": m, "k": k, "n": n}

    def time_dense_mm(self, backend, shape):
        self.plan()


class PeersSpMM(KernelBenchmark):
    kernel = "spmm"
    format = "csr"
    param_names = ["backend", "shape"]
    params = [BACKENDS, SPMM_SHAPES]

    def problem_params(self, shape):
        m, k, n = dims(shape)
        return {"m": m, "k": k, "n": n, "sparsity": SPMM_SPARSITY, "pattern": "uniform", "format": "csr"}

    def time_spmm(self, backend, shape):
        self.plan()


class PeersGatherMM(KernelBenchmark):
    kernel = "gather_mm"
    param_names = ["backend", "shape"]
    params = [BACKENDS, GATHER_SHAPES]

    def problem_params(self, shape):
        m, k, n = dims(shape)
        return {"m": m, "k": k, "n": n, "rows": GATHER_ROWS}

    def time_gather_mm(self, backend, shape):
        self.plan()


class PeersSDDMM(KernelBenchmark):
    kernel = "sddmm"
    param_names = ["backend", "shape"]
    params = [BACKENDS, [SDDMM_SHAPE]]

    def problem_params(self, shape):
        m, k, n = dims(shape)
        return {"m": m, "k": k, "n": n, "sparsity": 0.9, "pattern": "uniform"}

    def time_sddmm(self, backend, shape):
        self.plan()


class PeersKWTA(KernelBenchmark):
    kernel = "kwta"
    param_names = ["backend", "shape"]
    params = [BACKENDS, [KWTA_SHAPE]]

    def problem_params(self, shape):
        m, n = dims(shape)
        return {"m": m, "n": n, "sparsity": 0.9}

    def time_kwta(self, backend, shape):
        self.plan()

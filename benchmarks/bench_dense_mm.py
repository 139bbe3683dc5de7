"""DenseMM: Y = W @ X with W dense -- every backend's baseline for break-even.

``shape`` covers every dense-equivalent m x k x n of the kernels' benchmark grids
(``common.dense_shapes``: spmm, its formats and DLMC masks, sddmm, gather_mm,
sparse_sparse, moe, and any kernel a package registers), so the report can compute
speedup = time(dense_mm) / time(sparse), and pick the fastest dense product of the
machine at each shape.
"""
from .common import BACKENDS, KernelBenchmark, dense_shapes, dims


class DenseMM(KernelBenchmark):
    kernel = "dense_mm"
    param_names = ["backend", "shape"]
    params = [BACKENDS, dense_shapes()]

    def problem_params(self, shape):
        m, k, n = dims(shape)
        return {"m": m, "k": k, "n": n}

    def time_dense_mm(self, backend, shape):
        self.plan()

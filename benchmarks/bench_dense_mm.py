"""DenseMM: Y = W @ X with W dense -- every backend's baseline for break-even.

``shape`` covers every dense-equivalent m x k x n that the sparse benchmarks use
(spmm, spmm formats, DLMC, sddmm, gather_mm, sparse_sparse, moe), so the report
can compute speedup = time(dense_mm) / time(sparse) on the same backend.
"""
from . import bench_gather_mm, bench_moe, bench_sddmm, bench_sparse_sparse, bench_spmm
from .common import BACKENDS, KernelBenchmark, dims


def dense_shapes() -> list[str]:
    """The union of the sparse benchmarks' dense-equivalent shapes, in first-seen order."""
    out: list[str] = []
    for mod in (bench_spmm, bench_sddmm, bench_gather_mm, bench_sparse_sparse, bench_moe):
        for s in mod.dense_shapes():
            if s not in out:
                out.append(s)
    return out


class DenseMM(KernelBenchmark):
    kernel = "dense_mm"
    param_names = ["backend", "shape"]
    params = [BACKENDS, dense_shapes()]

    def problem_params(self, shape):
        m, k, n = dims(shape)
        return {"m": m, "k": k, "n": n}

    def time_dense_mm(self, backend, shape):
        self.plan()

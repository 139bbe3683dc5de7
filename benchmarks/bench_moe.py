"""MoE: a top-k gate, then only the chosen experts' matmuls (conditional computation).

``shape`` is experts x m x k x n (n tokens); ``top_k`` experts run per token, so
the sparsity exploited is 1 - top_k/experts. The dense equivalent runs all
experts: an (experts*m) x k x n product.
"""
from .common import BACKENDS, KernelBenchmark, dims, grid, shape

SHAPES = grid([shape(8, 512, 512, 64)], [shape(8, 512, 512, 64), shape(8, 1024, 1024, 256), shape(64, 256, 512, 64)])
TOP_K = grid([1, 2, 4], [1, 2, 4, 8])


def dense_shapes() -> list[str]:
    out = []
    for s in SHAPES:
        e, m, k, n = dims(s)
        out.append(shape(e * m, k, n))
    return out


class MoE(KernelBenchmark):
    kernel = "moe"
    param_names = ["backend", "shape", "top_k"]
    params = [BACKENDS, SHAPES, TOP_K]

    def problem_params(self, shape, top_k):
        e, m, k, n = dims(shape)
        if top_k > e:
            raise NotImplementedError(f"top_k={top_k} > experts={e}")
        return {"m": m, "k": k, "n": n, "experts": e, "top_k": top_k}

    def time_moe(self, backend, shape, top_k):
        self.plan()

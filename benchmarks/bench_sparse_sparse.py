"""SparseSparse: W sparse @ X whose columns are k-WTA sparse (weights and activations).

``sparsity`` is the weight sparsity (the swept figure), ``act_sparsity`` the
activations'; the dense equivalent is the m x k x n product.
"""
from .common import BACKENDS, SPARSITIES, SPARSITIES_FULL, KernelBenchmark, dims, grid, shape

SHAPES = grid([shape(2048, 2048, 64)], [shape(2048, 2048, 64), shape(4096, 4096, 64), shape(4096, 4096, 256)])
ACT_SPARSITIES = grid([0.9], [0.5, 0.9, 0.98])


def dense_shapes() -> list[str]:
    return list(SHAPES)


class SparseSparse(KernelBenchmark):
    kernel = "sparse_sparse"
    param_names = ["backend", "act_sparsity", "shape", "sparsity"]
    params = [BACKENDS, ACT_SPARSITIES, SHAPES, grid(SPARSITIES, SPARSITIES_FULL)]

    def problem_params(self, act_sparsity, shape, sparsity):
        m, k, n = dims(shape)
        return {"m": m, "k": k, "n": n, "sparsity": sparsity, "act_sparsity": act_sparsity}

    def time_sparse_sparse(self, backend, act_sparsity, shape, sparsity):
        self.plan()

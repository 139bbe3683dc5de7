"""GatherMM: Y = W[rows] @ X, the rows chosen per call (a selector's output selection).

``sparsity`` is the unselected fraction of W's rows; the dense equivalent is the
whole m x k x n product. ``peakmem_gather_mm`` is asv's whole-process peak RSS
(setup included); ``track_call_alloc`` is the host memory one call allocates
(tracemalloc), the figure that shows whether a backend materialises W[rows].
"""
from .common import BACKENDS, KernelBenchmark, dims, grid, shape

SHAPES = grid(
    [shape(2048, 2048, 64)],
    [shape(2048, 2048, 1), shape(2048, 2048, 64), shape(4096, 4096, 1), shape(4096, 4096, 64)],
)
SPARSITIES = grid([0.5, 0.75, 0.9, 0.95, 0.99], [0.5, 0.75, 0.875, 0.9, 0.95, 0.98, 0.99])


def dense_shapes() -> list[str]:
    return list(SHAPES)


class GatherMM(KernelBenchmark):
    kernel = "gather_mm"
    param_names = ["backend", "shape", "sparsity"]
    params = [BACKENDS, SHAPES, SPARSITIES]

    def problem_params(self, shape, sparsity):
        m, k, n = dims(shape)
        return {"m": m, "k": k, "n": n, "sparsity": sparsity}

    def time_gather_mm(self, backend, shape, sparsity):
        self.plan()

    def peakmem_gather_mm(self, backend, shape, sparsity):
        self.plan()

    def track_call_alloc(self, backend, shape, sparsity):
        """Peak host bytes allocated during one call (Python/NumPy allocations)."""
        import tracemalloc

        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            self.plan()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    track_call_alloc.unit = "bytes"

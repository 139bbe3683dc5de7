"""GatherMM: Y = W[rows] @ X, the rows chosen per call (a selector's output selection).

``sparsity`` is the unselected fraction of W's rows; the dense equivalent is the
whole m x k x n product. ``peakmem_gather_mm`` is asv's whole-process peak RSS
(setup included); ``track_call_alloc`` is the host memory one call allocates
(tracemalloc), the figure that shows whether a backend materialises W[rows].
Grid: the gather_mm spec's ``benchmarks``.
"""
from .common import KernelBenchmark


class GatherMM(KernelBenchmark):
    kernel = "gather_mm"
    grid_name = "GatherMM"

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

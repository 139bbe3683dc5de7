"""LIF: T steps of leaky integrate-and-fire neurons driven through sparse synapses.

``shape`` is n_out x n_in x steps; ``sparsity`` is the synapses'. Besides time
and the raster mismatch (``track_error``: fraction of raster entries that
differ), ``track_synops`` records the workload's synaptic operations
(NeuroBench effective ACs: delivered spikes x fan-out).
"""
from .common import BACKENDS, KernelBenchmark, dims, grid, shape

SHAPES = grid([shape(1024, 1024, 100)], [shape(1024, 1024, 100), shape(4096, 4096, 100), shape(1024, 1024, 1000)])
SPARSITIES = grid([0.5, 0.9, 0.99], [0.5, 0.8, 0.9, 0.95, 0.98, 0.99])
RATES = grid([0.1], [0.02, 0.1])


class LIF(KernelBenchmark):
    kernel = "lif"
    param_names = ["backend", "rate", "shape", "sparsity"]
    params = [BACKENDS, RATES, SHAPES, SPARSITIES]

    def problem_params(self, rate, shape, sparsity):
        n_out, n_in, steps = dims(shape)
        return {"n_out": n_out, "n_in": n_in, "steps": steps, "sparsity": sparsity, "rate": rate}

    def time_lif(self, backend, rate, shape, sparsity):
        self.plan()

    def track_synops(self, backend, rate, shape, sparsity):
        import sparsekit

        return sparsekit.ops(self.problem).effective

    track_synops.unit = "synaptic ops"

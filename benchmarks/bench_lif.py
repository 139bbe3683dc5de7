"""LIF: T steps of leaky integrate-and-fire neurons driven through sparse synapses.

``shape`` is n_in x n_out x steps (the lif spec's ``shape_axes``, as ``sparsekit run
lif --shape`` takes it); ``sparsity`` is the synapses'. Besides time and the raster
mismatch (``track_error``: fraction of raster entries that differ), ``track_synops``
records the workload's synaptic operations (spikes delivered x fan-out; with 0/1
spikes these are NeuroBench's effective accumulates). Grid: the lif spec's ``benchmarks``.
"""
from .common import KernelBenchmark


class LIF(KernelBenchmark):
    kernel = "lif"
    grid_name = "LIF"

    def time_lif(self, backend, rate, shape, sparsity):
        self.plan()

    def track_synops(self, backend, rate, shape, sparsity):
        import sparsekit

        return sparsekit.ops(self.problem).effective

    track_synops.unit = "synaptic ops"

"""Lava: what event-driven execution costs, per timestep and per synaptic operation.

* ``LavaSpMM``: a 1000 x 1000 synapse layer (CSR weights at 90% and 99% sparsity)
  fed n = 100 columns of X as graded spikes: one call is n + 1 timesteps.
* ``LavaLIF``: the catalogue's LIF network, 1000 inputs -> 1000 LIF neurons, 100 steps.

``time_*`` is asv's time of one whole call. The ``track_*`` figures normalise it
(each measures the median of ``CALLS`` calls of the prepared plan itself):
seconds per timestep, per synaptic operation (NeuroBench: delivered spike x
fan-out; effective MACs for the graded spikes of LavaSpMM, effective ACs for the
binary spikes of LavaLIF), the synaptic ops and input and output spikes of one
call, and ``track_energy_loihi1_estimate_uJ``: an energy ESTIMATE in microjoules
from Loihi 1 *pre-silicon* per-op energies (``sparsekit_lava.metrics``: Davies et
al. 2018, Table 2 -- 23.6 pJ per synaptic op, the minimum; 81 / 52 pJ per active /
inactive neuron update; 1.7 pJ per output spike, within-tile) -- a property of the
workload, the same on every backend, not a measurement. (It replaces
``track_energy_estimate_uJ``, which charged 52 pJ for every neuron update and no
spike, under a label that did not say Loihi 1 or pre-silicon.) ``track_error``
(from ``KernelBenchmark``) records the error against the float64 oracle: rounding
for ``lava``, the fixed-point error for ``lava-fixed``. The backend axis is the
usual one, so the cpu backend's time on the very same problem sits beside Lava's.
"""
from .common import BACKENDS, KernelBenchmark, dims, shape

SPMM_SHAPES = [shape(1000, 1000, 100)]
LIF_SHAPES = [shape(1000, 1000, 100)]
SPARSITIES = [0.9, 0.99]
#: calls timed by the track_time_* figures (median)
CALLS = 5


def _median_call_s(plan, calls=CALLS) -> float:
    """Median of ``calls`` single calls (setup made the warm-up call): the suite's timing primitive."""
    from sparsekit.timing import time_calls

    return time_calls(plan, calls, number=1, warmup=False, max_time=float("inf")).median


def _counts(problem):
    # the counting is pure NumPy; imported lazily so a process without Lava still loads the module
    from sparsekit_lava import metrics

    return metrics.counts(problem)


class _LavaFigures(KernelBenchmark):
    """Shared track_ figures; subclasses define kernel, params and time_<kernel>."""

    timeout = 300

    def track_time_per_step(self, *params):
        return _median_call_s(self.plan) / _counts(self.problem).timesteps

    track_time_per_step.unit = "seconds per timestep"

    def track_time_per_synop(self, *params):
        c = _counts(self.problem)
        return _median_call_s(self.plan) / max(c.synops, 1)

    track_time_per_synop.unit = "seconds per synaptic op"

    def track_synops(self, *params):
        return _counts(self.problem).synops

    track_synops.unit = "synaptic ops per call (NeuroBench effective MACs if graded, ACs if binary)"

    def track_input_spikes(self, *params):
        return _counts(self.problem).input_spikes

    track_input_spikes.unit = "input spikes per call"

    def track_output_spikes(self, *params):
        return _counts(self.problem).output_spikes

    track_output_spikes.unit = "output spikes per call"

    def track_energy_loihi1_estimate_uJ(self, *params):
        from sparsekit_lava import metrics

        return metrics.energy_estimate_j(_counts(self.problem)) * 1e6

    track_energy_loihi1_estimate_uJ.unit = ("uJ per call, ESTIMATE from Loihi 1 pre-silicon minimum per-op "
                                            "energies (Davies et al. 2018, Table 2)")


class LavaSpMM(_LavaFigures):
    kernel = "spmm"
    format = "csr"
    param_names = ["backend", "shape", "sparsity"]
    params = [BACKENDS, SPMM_SHAPES, SPARSITIES]

    def problem_params(self, shape, sparsity):
        m, k, n = dims(shape)
        return {"m": m, "k": k, "n": n, "sparsity": sparsity, "format": "csr"}

    def time_spmm(self, backend, shape, sparsity):
        self.plan()


class LavaLIF(_LavaFigures):
    kernel = "lif"
    param_names = ["backend", "shape", "sparsity"]
    params = [BACKENDS, LIF_SHAPES, SPARSITIES]

    def problem_params(self, shape, sparsity):
        import sparsekit

        # shape in the lif spec's order (n_in x n_out x steps), as LIF and `sparsekit run lif` take it
        return {**sparsekit.get_kernel("lif").params_from_shape(dims(shape)), "sparsity": sparsity, "rate": 0.1}

    def time_lif(self, backend, shape, sparsity):
        self.plan()

"""Workload metrics of a Lava run: synaptic operations, spikes, timesteps, an energy ESTIMATE.

Definitions (NeuroBench): a synaptic operation is one delivered spike reaching one
synapse, so synops = sum over input neurons of (spikes it sent) x (its fan-out, the
nonzero weights in its column of W): the kernel's effective ops
(``sparsekit.ops(problem).effective``). For the products each nonzero entry of X
is one graded spike; for ``lif`` the last step's spikes are never delivered.

Energy: an **estimate**, not a measurement -- nothing here runs on a chip. It
multiplies the counts by per-operation energies published for Loihi (the first
chip; Intel has not published a per-op table for Loihi 2):

    Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip
    Learning", IEEE Micro 38(1), 2018, Table 2: 23.6 pJ per synaptic spike
    operation (minimum), 52 pJ per neuron update.

Graded spikes (Loihi 2) are charged as binary synaptic ops, idle-time, routing
(tile hops) and static power are left out, so the figure is a lower-bound style
estimate meant for comparing workloads, not chips.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

import sparsekit

#: J per synaptic spike op and per neuron update (Davies et al. 2018, Table 2)
PJ_PER_SYNOP = 23.6
PJ_PER_NEURON_UPDATE = 52.0
ENERGY_SOURCE = "estimate from Loihi per-op energies (Davies et al., IEEE Micro 38(1) 2018, Table 2: 23.6 pJ/synop, 52 pJ/neuron update)"


@dataclass(frozen=True)
class SpikeCounts:
    timesteps: int  # timesteps one call runs
    input_spikes: int  # spikes (events) injected per call
    output_spikes: int  # lif: spikes in the raster; products: 0 (no neurons fire)
    synops: int  # delivered spike x fan-out (NeuroBench effective ACs)
    neuron_updates: int  # lif: steps x n_out; products: 0 (outputs are read as currents)

    def as_dict(self) -> dict:
        return asdict(self)


def timesteps(problem) -> int:
    """Timesteps of one call: n + 1 for a product (the synaptic delay), ``steps`` for lif."""
    if problem.kernel == "lif":
        return int(problem.params["steps"])
    return int(problem.inputs["x"].shape[1]) + 1


def counts(problem, result=None) -> SpikeCounts:
    """Spike and synaptic-operation counts of one call (``result``: the lif raster, for output spikes)."""
    synops = int(sparsekit.ops(problem).effective)
    if problem.kernel == "lif":
        s = problem.inputs["spikes"]
        raster = sparsekit.reference(problem) if result is None else np.asarray(result)
        return SpikeCounts(timesteps(problem), int(np.count_nonzero(s[:-1])), int(np.count_nonzero(raster)),
                           synops, int(s.shape[0]) * int(problem.inputs["w"].shape[0]))
    return SpikeCounts(timesteps(problem), int(np.count_nonzero(problem.inputs["x"])), 0, synops, 0)


def energy_estimate_j(c: SpikeCounts) -> float:
    """Joules per call, ESTIMATED from published per-op energies (see the module doc)."""
    return (c.synops * PJ_PER_SYNOP + c.neuron_updates * PJ_PER_NEURON_UPDATE) * 1e-12


def per_step(seconds: float, c: SpikeCounts) -> dict:
    """Time per timestep, per synaptic op, and timesteps per second of a call lasting ``seconds``."""
    return {
        "s_per_step": seconds / max(c.timesteps, 1),
        "s_per_synop": seconds / c.synops if c.synops else float("nan"),
        "steps_per_s": c.timesteps / seconds if seconds > 0 else float("inf"),
    }

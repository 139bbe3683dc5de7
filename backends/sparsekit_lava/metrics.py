"""Workload metrics of a Lava run: synaptic operations, spikes, neuron updates, timesteps,
and an energy ESTIMATE from published Loihi 1 per-operation figures.

Counts (what one call of the workload does; counted on the problem and its float64
oracle, so they are the same on every backend):

* ``synops``: one delivered spike reaching one synapse (NeuroBench's synaptic
  operation): the sum over input neurons of (spikes it sent) x (its fan-out, the
  nonzero weights in its column of W) -- the kernel's effective ops
  (``sparsekit.ops(problem).effective``). For ``lif`` the spikes are binary, so these
  are NeuroBench *effective ACs*; for the products every nonzero entry of X is one
  *graded* spike whose payload multiplies the weight, so NeuroBench counts them as
  *effective MACs* (``SpikeCounts.graded``).
* ``input_spikes``: spike events injected (delivered ones, for ``lif``: its last
  step's spikes never arrive).
* ``output_spikes``: spikes emitted by the network's neurons (``lif``'s raster;
  the products have no neurons -- their outputs are read as currents).
* ``neuron_updates_active`` / ``_inactive`` (``lif``; steps x n_out in all): an
  update is *active* when the neuron is not at rest -- it receives at least one
  synaptic event in that step, or its voltage before the threshold test is nonzero
  (current or voltage carried over, or a bias); *inactive* when nothing arrives and
  u = v = 0, the update every neuron still gets every step. This mapping onto the
  table's "active/inactive" rows is ours: the definition in the paper could not be
  checked (see below). On the float64 oracle a decaying state reaches exactly zero
  only by underflow, so after its first input a neuron stays active for the rest of
  a run (Loihi's integer state decays to zero sooner): an upper bound on the active
  share.

Energy: an **estimate**, not a measurement -- nothing here runs on a chip, and the
backend simulates Loihi 2 while the per-operation table used is for **Loihi 1**
(we found none published for Loihi 2), and **pre-silicon**:

    Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip
    Learning", IEEE Micro 38(1):82-99, 2018, Table 2 (pre-silicon, from SDF and
    SPICE simulation of the 14 nm design).

Charged (``energy_estimate``):

* each synaptic op at 23.6 pJ, the table's *minimum* energy per synaptic spike op.
  A graded (Loihi 2) synop multiplies a payload; it is charged as Loihi 1's binary
  op, so this term is a lower bound;
* each active neuron update at 81 pJ, each inactive one at 52 pJ;
* each output spike at 1.7 pJ, the table's within-tile spike energy: the minimum
  a spike costs, as if its destination core shared the source's tile. The 3.0 pJ
  (east-west) / 4.0 pJ (north-south) per tile hop are not charged: they need a
  placement of the network on the mesh, which nothing here decides. Input spikes
  come from the host (Lava's source process, Loihi's embedded x86 cores), for which
  the table has no figure, so they are not charged either.

Not charged: tile hops, host I/O, learning, idle and static (leakage) power, the
barrier synchronisation of each timestep. With every charged figure a minimum or a
pre-silicon value, the total is an optimistic, lower-bound style estimate for
comparing workloads, not chips.

Checked against the paper: the figures could not be read in Davies et al. 2018
itself with the sources available when this was written; 23.6 pJ (min), 81 / 52 pJ,
1.7 pJ and 3.0 / 4.0 pJ match a third-party code base that quotes Table 2 row by
row (it also notes the paper does not define "active/inactive"); 23.6 and 81 pJ
also appear as Loihi constants elsewhere. One simulator's Loihi description (citing
the same paper) has 4.2 pJ, not 4.0 pJ, per north-south hop -- a figure not charged
here. Treat every constant as unverified against the primary source.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

import sparsekit

#: picojoules, Loihi 1, pre-silicon (Davies et al. 2018, Table 2; see the module doc)
PJ_PER_SYNOP_MIN = 23.6
PJ_PER_NEURON_UPDATE_ACTIVE = 81.0
PJ_PER_NEURON_UPDATE_INACTIVE = 52.0
PJ_PER_SPIKE_WITHIN_TILE = 1.7
#: per tile hop, east-west / north-south: published, not charged (placement unknown)
PJ_PER_TILE_HOP_EW = 3.0
PJ_PER_TILE_HOP_NS = 4.0

ENERGY_SOURCE = (
    "ESTIMATE, not a measurement: Loihi 1 pre-silicon per-op energies (Davies et al., IEEE Micro 38(1) 2018, "
    "Table 2): 23.6 pJ per synaptic op (minimum; graded synops charged as binary ones), 81 / 52 pJ per active / "
    "inactive neuron update, 1.7 pJ per output spike (within-tile minimum); tile hops, host I/O and static "
    "power not charged"
)


@dataclass(frozen=True)
class SpikeCounts:
    timesteps: int  # timesteps one call runs
    input_spikes: int  # spike events injected per call (lif: the delivered ones)
    output_spikes: int  # lif: spikes in the raster; products: 0 (no neurons fire)
    synops: int  # delivered spike x fan-out (NeuroBench effective ACs, or effective MACs when graded)
    graded: bool  # spikes carry a payload (products) rather than 0/1 (lif)
    neuron_updates_active: int  # lif: updates of neurons not at rest; products: 0
    neuron_updates_inactive: int  # lif: updates of neurons at rest with nothing arriving; products: 0

    @property
    def neuron_updates(self) -> int:
        return self.neuron_updates_active + self.neuron_updates_inactive

    def as_dict(self) -> dict:
        return {**asdict(self), "neuron_updates": self.neuron_updates}


@dataclass(frozen=True)
class EnergyEstimate:
    """Joules per call by term (see the module doc for what each charges); an estimate."""

    synops_j: float
    neuron_updates_active_j: float
    neuron_updates_inactive_j: float
    output_spikes_j: float
    source: str = ENERGY_SOURCE

    @property
    def total_j(self) -> float:
        return self.synops_j + self.neuron_updates_active_j + self.neuron_updates_inactive_j + self.output_spikes_j


def timesteps(problem) -> int:
    """Timesteps of one call: n + 1 for a product (the synaptic delay), ``steps`` for lif."""
    if problem.kernel == "lif":
        return int(problem.params["steps"])
    return int(problem.inputs["x"].shape[1]) + 1


def _lif_counts(problem) -> SpikeCounts:
    from sparsekit.kernels.lif import simulate

    s, w = problem.inputs["spikes"], problem.inputs["w"]
    prm = problem.params
    raster, v_pre, _ = simulate(s, w, prm["du"], prm["dv"], prm["vth"], prm["bias"])
    # events reaching each neuron at each step: step t delivers the spikes of step t-1
    events = np.zeros(raster.shape, dtype=np.int64)
    events[1:] = (abs(w) != 0).astype(np.int64).dot(np.asarray(s[:-1] != 0, dtype=np.int64).T).T
    active = int(np.count_nonzero((events > 0) | (v_pre != 0)))
    return SpikeCounts(
        timesteps=timesteps(problem),
        input_spikes=int(np.count_nonzero(s[:-1])),
        output_spikes=int(np.count_nonzero(raster)),
        synops=int(sparsekit.ops(problem).effective),
        graded=False,
        neuron_updates_active=active,
        neuron_updates_inactive=raster.size - active,
    )


def counts(problem) -> SpikeCounts:
    """Spike, synaptic-operation and neuron-update counts of one call (memoised on the problem)."""
    if problem.kernel == "lif":
        return problem.cached("lava spike counts", lambda: _lif_counts(problem))
    if problem.kernel not in ("spmm", "dense_mm", "sparse_sparse"):
        raise ValueError(f"no spike counts for kernel {problem.kernel!r} (lava runs spmm, dense_mm, sparse_sparse, lif)")
    return SpikeCounts(
        timesteps=timesteps(problem),
        input_spikes=int(np.count_nonzero(problem.inputs["x"])),
        output_spikes=0,
        synops=int(sparsekit.ops(problem).effective),
        graded=True,
        neuron_updates_active=0,
        neuron_updates_inactive=0,
    )


def energy_estimate(c: SpikeCounts) -> EnergyEstimate:
    """Joules per call by term, ESTIMATED from Loihi 1 pre-silicon per-op energies (module doc)."""
    pj = 1e-12
    return EnergyEstimate(
        synops_j=c.synops * PJ_PER_SYNOP_MIN * pj,
        neuron_updates_active_j=c.neuron_updates_active * PJ_PER_NEURON_UPDATE_ACTIVE * pj,
        neuron_updates_inactive_j=c.neuron_updates_inactive * PJ_PER_NEURON_UPDATE_INACTIVE * pj,
        output_spikes_j=c.output_spikes * PJ_PER_SPIKE_WITHIN_TILE * pj,
    )


def energy_estimate_j(c: SpikeCounts) -> float:
    """Total joules per call of ``energy_estimate`` (an estimate, see the module doc)."""
    return energy_estimate(c).total_j

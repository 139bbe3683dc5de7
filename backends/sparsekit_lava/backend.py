"""The ``lava`` and ``lava-fixed`` backends: the catalogue's kernels as Lava processes.

Networks run on Lava's Loihi 2 simulator on the CPU (``Loihi2SimCfg``):

* ``dense_mm``, ``spmm``, ``sparse_sparse``: synaptic accumulation. The columns
  of X are graded spikes, one column per timestep, from a ``RingBuffer`` into a
  ``Dense`` (dense_mm) or ``Sparse`` (spmm, sparse_sparse) synapse process; an
  ``Extractor`` reads the accumulated currents, one step late (the synaptic
  delay, see ``sparsekit_lava._network``). A call of an m x k x n problem runs
  n + 1 timesteps. In sparse_sparse only the k-WTA winners are nonzero: the
  others send no spike (Lava's simulator moves a dense vector, a chip would not).
* ``lif`` (``lava`` only): ``RingBuffer`` of 0/1 input spikes -> ``Sparse``
  (binary spikes) -> ``LIF`` for ``steps`` timesteps; the output spike raster is
  read by an ``Extractor``; ``Reset`` processes zero u and v between calls.

``lava`` selects the ``floating_pt`` process models (float64 NumPy inside), so
results match the oracle to rounding and the LIF raster equals it. ``lava-fixed``
selects ``fixed_pt`` (bit-accurate Loihi) models with weights and spikes quantised
by the rule in ``sparsekit_lava.quant``; its results are checked against the float
oracle with the error bound that rule guarantees (``error_allowance``), and the
error is reported, never hidden.

Size limit: a call costs a few hundred microseconds per timestep in the
simulator, so problems needing more than ``MAX_STEPS`` timesteps
(``SPARSEKIT_LAVA_MAX_STEPS``) raise ``Unsupported`` saying so.
"""
from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp

from sparsekit import Backend, Plan, Unsupported
from sparsekit import dtypes as sk_dtypes

from . import KERNELS_FIXED, KERNELS_FLOAT, lava_version
from . import quant
from ._compat import import_lava
from ._network import Network

#: the most timesteps one call may run (a call of n columns runs n + 1)
MAX_STEPS = int(os.environ.get("SPARSEKIT_LAVA_MAX_STEPS", "5000"))


def _plan(net: Network, run, fetch) -> Plan:
    """The plan of a compiled network: ``close()`` stops it, and so does dropping the plan."""
    plan = Plan(run, fetch, close=net.stop)
    net.bind(plan)
    return plan


class _LavaBase(Backend):
    """Shared construction; subclasses choose the process models and the number format."""

    dtypes = ("float32", "float64")
    select_tag = ""
    max_live_plans = 1  # one live Lava network per process (see _network.py)
    # each drawn problem compiles and starts a network (~0.2 s): 30 per kernel keep the
    # suite's edge cases (drawn first by Hypothesis) inside make test's budget
    conformance_examples = 30

    def __init__(self):
        self._lava = import_lava()
        from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
        from lava.proc.io.reset import PyResetFloat, Reset

        self._exceptions = {Extractor: PyLoihiExtractorModel}
        self._reset_model = {Reset: PyResetFloat}

    def device(self) -> str:
        return f"Loihi 2 simulation on the CPU (Lava {lava_version()}, {self.select_tag} process models)"

    def versions(self) -> dict:
        return {"lava-nc": lava_version()}

    def run_cfg(self, extra=None):
        from lava.magma.core.run_configs import Loihi2SimCfg

        return Loihi2SimCfg(select_tag=self.select_tag, exception_proc_model_map={**self._exceptions, **(extra or {})})

    # -- the products -------------------------------------------------------------
    def _check_steps(self, steps: int, what: str) -> None:
        if steps > MAX_STEPS:
            raise Unsupported(
                f"{self.name}: {what} needs {steps} timesteps, more than the limit {MAX_STEPS} "
                f"(set SPARSEKIT_LAVA_MAX_STEPS to raise it; the simulator takes ~0.3 ms per step)")

    def _product(self, problem, w, x, sparse: bool) -> Plan:
        from lava.magma.core.run_conditions import RunSteps
        from lava.proc.dense.process import Dense
        from lava.proc.io.extractor import Extractor
        from lava.proc.io.source import RingBuffer
        from lava.proc.sparse.process import Sparse

        m, k = w.shape
        n = x.shape[1]
        cycle = n + 1
        self._check_steps(cycle, f"an {m}x{k}x{n} product")
        weights, spikes, scale, bits = self._encode(w, x)
        data = np.zeros((k, cycle), dtype=spikes.dtype)
        data[:, 1:] = spikes  # column 0: the silent step that aligns every call (see _network)
        src = RingBuffer(data=data)
        if sparse:
            syn = Sparse(weights=sp.csr_matrix(weights), num_message_bits=bits)
        else:
            syn = Dense(weights=np.asarray(weights), num_message_bits=bits)
        ext = Extractor(shape=(m,), buffer_size=min(cycle, 64))
        src.s_out.connect(syn.s_in)
        syn.a_out.connect(ext.in_port)
        net = Network(src, [ext], cycle, processes=[src, syn, ext])
        net.compile(self.run_cfg(), RunSteps)
        out_dtype = sk_dtypes.host_dtype(problem.dtype)

        def run():
            (acc,) = net.run_cycle()
            return acc

        def fetch(acc):
            # output at step j+1 of the call is the column injected at step j
            return (acc[1:].T * scale).astype(out_dtype)

        return _plan(net, run, fetch)

    def _prepare_dense_mm(self, p):
        return self._product(p, p.inputs["w"], p.inputs["x"], sparse=False)

    def _prepare_spmm(self, p):
        return self._product(p, p.inputs["w"], p.inputs["x"], sparse=True)

    def _prepare_sparse_sparse(self, p):
        return self._product(p, p.inputs["w"], p.inputs["x"], sparse=True)


class LavaFloatBackend(_LavaBase):
    """``lava``: floating_pt process models (float64 inside)."""

    name = "lava"
    supports = KERNELS_FLOAT
    select_tag = "floating_pt"

    def _encode(self, w, x):
        w64 = w.astype(np.float64)
        # graded spikes: 24-bit payloads would be Loihi 2's maximum; the float model carries floats
        return w64, np.asarray(x, dtype=np.float64), 1.0, 24

    def _prepare_lif(self, p):
        from lava.magma.core.run_conditions import RunSteps
        from lava.proc.io.extractor import Extractor
        from lava.proc.io.reset import Reset
        from lava.proc.io.source import RingBuffer
        from lava.proc.lif.process import LIF
        from lava.proc.sparse.process import Sparse

        spikes, w = p.inputs["spikes"], p.inputs["w"]
        steps, n_in = spikes.shape
        n_out = w.shape[0]
        self._check_steps(steps, f"a {steps}-step LIF run")
        prm = p.params
        # row t of the raster sees W @ spikes[t-1]: the ring's column 0 is silent and
        # spikes[steps-1] is never delivered (as in the oracle)
        data = np.zeros((n_in, steps), dtype=np.float64)
        data[:, 1:] = spikes[: steps - 1].T
        src = RingBuffer(data=data)
        syn = Sparse(weights=sp.csr_matrix(w.astype(np.float64)), num_message_bits=0)
        lif = LIF(shape=(n_out,), du=prm["du"], dv=prm["dv"], vth=prm["vth"], bias_mant=prm["bias"], bias_exp=0.0)
        ext = Extractor(shape=(n_out,), buffer_size=min(steps, 64))
        src.s_out.connect(syn.s_in)
        syn.a_out.connect(lif.a_in)
        lif.s_out.connect(ext.in_port)
        # u and v back to 0 after the warm-up step and after every call's last step
        resets = [Reset(reset_value=0.0, interval=steps, offset=0) for _ in range(2)]
        resets[0].connect_var(lif.u)
        resets[1].connect_var(lif.v)
        net = Network(src, [ext], steps, processes=[src, syn, lif, ext, *resets])
        net.compile(self.run_cfg(self._reset_model), RunSteps)

        def run():
            (raster,) = net.run_cycle()
            return raster

        def fetch(raster):
            return (raster != 0).astype(sk_dtypes.host_dtype(p.dtype))

        return _plan(net, run, fetch)


class LavaFixedBackend(_LavaBase):
    """``lava-fixed``: fixed_pt (bit-accurate Loihi) process models, quantised inputs (``quant``)."""

    name = "lava-fixed"
    supports = KERNELS_FIXED
    select_tag = "fixed_pt"

    def _encode(self, w, x):
        wq, e_w = quant.quantise_weights(w)
        xq, e_x = quant.quantise_spikes(x)
        return wq, xq, 2.0 ** (e_w + e_x - 1), quant.SPIKE_BITS

    def error_allowance(self, problem):
        """The fixed-point rule's bound (``quant.allowance``), added to the float rounding bound."""
        if problem.kernel not in ("dense_mm", "spmm", "sparse_sparse"):
            return None
        return problem.cached(
            "lava-fixed allowance",
            lambda: quant.allowance(problem.inputs["w"], problem.inputs["x"], problem.dtype),
        )

"""lif: T steps of leaky integrate-and-fire neurons driven through sparse synapses."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from .weights import WEIGHT_DEFAULTS, csr_bytes, sparse_weights
from .base import BASELINE_BYTES, BenchGrid, Case, Check, KernelSpec, Ops, _as_result, dim, nonzero_counts, oracle_itemsize, shape_str


def simulate(spikes: np.ndarray, w, du: float, dv: float, vth: float, bias: float, dtype=np.float64):
    """Run the LIF network; return (raster, v before reset, drive scale), all float64 arrays.

    Follows Lava's floating-point LIF process model (``lava.proc.lif.models.PyLifModelFloat``)
    behind a ``Sparse`` synapse process, which delivers a spike one step late::

        a[t] = W @ s_in[t-1]              (a[0] = 0: the one-step synaptic delay)
        u[t] = u[t-1] * (1 - du) + a[t]   (synaptic current)
        v[t] = v[t-1] * (1 - dv) + u[t] + bias
        s_out[t] = v[t] > vth             (strictly greater, as in Lava)
        v[t] = 0 where s_out[t]           (reset)

    with u[-1] = v[-1] = 0. ``dtype`` lets a backend run the same recurrence in float32.
    """
    steps, n_in = spikes.shape
    n_out = w.shape[0]
    wt = w.astype(dtype)
    s = spikes.astype(dtype)
    one_du, one_dv = dtype(1 - du), dtype(1 - dv)
    bias_, vth_ = dtype(bias), dtype(vth)
    u = np.zeros(n_out, dtype=dtype)
    v = np.zeros(n_out, dtype=dtype)
    raster = np.zeros((steps, n_out), dtype=np.float64)
    v_pre = np.zeros((steps, n_out), dtype=np.float64)
    drive = 0.0
    absw = abs(w.astype(np.float64))
    for t in range(steps):
        if t > 0:
            a = np.asarray(wt @ s[t - 1]).ravel()
            drive = max(drive, float(np.max(absw @ np.abs(spikes[t - 1].astype(np.float64)), initial=0.0)))
        else:
            a = np.zeros(n_out, dtype=dtype)
        u = u * one_du + a
        v = v * one_dv + u + bias_
        v_pre[t] = v
        fired = v > vth_
        raster[t] = fired
        v = np.where(fired, dtype(0), v)
    return raster, v_pre, drive


class LIF(KernelSpec):
    """Inputs: ``spikes`` (steps x n_in, 0/1 in the problem dtype; a seeded Bernoulli train
    of probability ``rate``) and ``w`` (n_out x n_in canonical CSR synapses).
    Parameters ``du``, ``dv``, ``vth``, ``bias`` (see ``simulate`` for the equations).
    Result: the output spike raster (steps x n_out, 0/1).

    Weights are standard-normal values shifted by +0.5 and scaled so the mean drive is
    1.5x what holds a neuron at threshold (du*dv*vth per step): neurons fire, not all
    the time. Correctness: the raster must equal the oracle's exactly, except that once
    a neuron's float64 voltage comes within the rounding margin of vth (where a correct
    lower-precision run may decide either way) its later spikes are not compared.
    """

    name = "lif"
    summary = "T steps of LIF neurons driven through sparse synapses"
    defaults = {
        "n_in": None, "n_out": None, "steps": None, "rate": 0.1,
        "du": 0.2, "dv": 0.1, "vth": 1.0, "bias": 0.0, **WEIGHT_DEFAULTS,
    }
    error_unit = "fraction of raster entries that differ"
    shape_axes = ("n_in", "n_out", "steps")
    example_shape = (1000, 1000, 100)
    result_kind = "raster"
    # sparsity: the synapses'; rate: the input spike trains'
    benchmarks = (
        BenchGrid("LIF", ("rate", "shape", "sparsity"),
                  default=([0.1], [shape_str((1024, 1024, 100))], [0.5, 0.9, 0.99]),
                  full=([0.02, 0.1], [shape_str((1024, 1024, 100)), shape_str((4096, 4096, 100)),
                                      shape_str((1024, 1024, 1000))], [0.5, 0.8, 0.9, 0.95, 0.98, 0.99])),
    )

    def generate(self, rng, params):
        steps = dim("steps", params["steps"])
        for key in ("rate", "du", "dv"):
            v = float(params[key])
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"lif: {key} must be in [0, 1], got {params[key]!r}")
            params[key] = v
        for key in ("vth", "bias"):
            params[key] = float(params[key])
            if not np.isfinite(params[key]):
                raise ValueError(f"lif: {key} must be finite, got {params[key]!r}")
        w = sparse_weights(rng, params, m_key="n_out", k_key="n_in")
        fan_in = max(w.nnz / max(w.shape[0], 1), 1.0)
        target = 1.5 * params["vth"] * max(params["du"], 1e-3) * max(params["dv"], 1e-3)
        scale = target / (max(params["rate"], 1e-3) * fan_in * 0.5)
        w.data = dtypes.to_host((w.data.astype(np.float64) + 0.5) * scale, params["dtype"])
        spikes = (rng.random((steps, params["n_in"])) < params["rate"]).astype(dtypes.host_dtype(params["dtype"]))
        return params, {"spikes": spikes, "w": w}

    def nominal_model(self, params):
        """Synaptic accumulates: (1 - sparsity) of the synapses times the spikes delivered (rate x
        n_in x steps), 2 FLOPs each (an accumulate and the voltage update it feeds); bytes: the CSR
        synapses once, spike events as indices, the raster written."""
        s = params.get("sparsity")
        if s is None or params.get("weights") is not None or params.get("matrix") is not None:
            return None
        n_in, n_out, steps = (int(params[k]) for k in ("n_in", "n_out", "steps"))
        rate = float(params.get("rate", self.defaults["rate"]))
        nnz = (1.0 - float(s)) * n_in * n_out
        events = rate * n_in * max(steps - 1, 0)
        return 2.0 * nnz / max(n_in, 1) * events, nnz * 8 + (n_out + 1) * 4 + events * 4 + steps * n_out / 8

    def _run(self, problem):
        p = problem.params
        return problem.cached(
            "simulation",
            lambda: simulate(problem.inputs["spikes"], problem.inputs["w"], p["du"], p["dv"], p["vth"], p["bias"]),
        )

    def reference(self, problem, absolute=False):
        return self._run(problem)[0]

    def check(self, problem, result):
        ref, v_pre, drive = self._run(problem)
        got = _as_result(result, ref.shape, self.name)
        differ = got != ref
        err = float(differ.mean()) if differ.size else 0.0
        u = dtypes.unit_roundoff(problem.dtype)
        w = problem.inputs["w"]
        fan_in = int(np.diff(w.indptr).max()) if w.shape[0] else 0
        scale = max(abs(problem.params["vth"]), float(np.max(np.abs(v_pre), initial=0.0)), drive, abs(problem.params["bias"]))
        margin = 4.0 * (fan_in + ref.shape[0] + 4) * u * scale
        ambiguous = np.abs(v_pre - problem.params["vth"]) <= margin
        # first ambiguous step per neuron (steps if none): compare only before it
        first = np.where(ambiguous.any(axis=0), ambiguous.argmax(axis=0), ref.shape[0])
        compared = np.arange(ref.shape[0])[:, None] < first[None, :]
        bad = differ & compared
        if bad.any():
            t, j = np.argwhere(bad)[0]
            return Check(False, err, f"neuron {j} at step {t}: spike {got[t, j]:g}, oracle {ref[t, j]:g} (v={v_pre[t, j]:.6g}, vth={problem.params['vth']})")
        return Check(True, err)

    def ops(self, problem):
        s, w = problem.inputs["spikes"], problem.inputs["w"]
        steps = s.shape[0]
        # spikes at the last step are never delivered (one-step delay)
        delivered = np.count_nonzero(s[: max(steps - 1, 0)], axis=0)
        eff = int(np.dot(nonzero_counts(w, 0), delivered))
        return Ops(steps * w.shape[0] * w.shape[1], eff)

    def compulsory_bytes(self, problem):
        s, w = problem.inputs["spikes"], problem.inputs["w"]
        item = np.dtype(w.dtype).itemsize
        spike_events = int(np.count_nonzero(s))
        return csr_bytes(w.nnz, w.shape[0], item) + spike_events * 4 + s.shape[0] * w.shape[0] // 8

    def depth(self, problem):
        return 0

    def dense_equivalent(self, params):
        """The same network with every synapse present, its input done as one product: all
        n_out x n_in weights times the steps x n_in spike trains (an n_out x n_in x steps dense_mm)."""
        return {"m": int(params["n_out"]), "k": int(params["n_in"]), "n": int(params["steps"])}

    def footprint_bytes(self, params, dtype):
        n_in, n_out, steps = (int(params.get(k) or 0) for k in ("n_in", "n_out", "steps"))
        it = oracle_itemsize(dtype)
        return int(BASELINE_BYTES + 4 * n_in * n_out * it + 4 * steps * (n_in + n_out) * it)

    def conformance_cases(self):
        lif = dict(n_in=48, n_out=40, steps=32)
        c = [Case(self.name, f"{p}-0.9", {**lif, "sparsity": 0.9, "pattern": p}, representative=p == "uniform")
             for p in ("uniform", "block", "powerlaw")]
        c += [Case(self.name, "uniform-0.5-rate0.5", {**lif, "sparsity": 0.5, "rate": 0.5}),
              Case(self.name, "bias-no-decay", {**lif, "sparsity": 0.8, "bias": 0.05, "du": 1.0, "dv": 0.0}),
              Case(self.name, "dense-0.0", {**lif, "sparsity": 0.0})]
        return c

    def small_params(self, fmt=None):
        return dict(n_in=8, n_out=8, steps=4, sparsity=0.5)

    def draw_kwargs(self, draw, sks, max_side):
        st = sks.st
        side = sks.sides(1, max_side)
        n_out, n_in = draw(side), draw(side)
        kw = draw(sks.weight_kwargs(n_out, n_in, max_side))
        if "weights" not in kw:
            kw["n_out"], kw["n_in"] = kw.pop("m"), kw.pop("k")
        kw.update(
            steps=draw(st.integers(1, 16)),
            rate=draw(st.one_of(st.sampled_from([0.0, 1.0, 0.1, 0.5]), st.floats(0, 1))),
            du=draw(st.one_of(st.sampled_from([0.0, 0.2, 1.0]), st.floats(0, 1))),
            dv=draw(st.one_of(st.sampled_from([0.0, 0.1, 1.0]), st.floats(0, 1))),
            vth=draw(st.sampled_from([1.0, 0.5, 2.0, 10.0])),
            bias=draw(st.sampled_from([0.0, 0.05, -0.1, 0.3, 1.5])),
        )
        return kw

    def sparsity(self, problem):
        return problem.params["sparsity"]

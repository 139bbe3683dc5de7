"""moe: mixture of experts -- a top-k gate, then only the chosen experts' matmuls."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from .weights import dense_operand
from .base import BASELINE_BYTES, BenchGrid, Case, KernelSpec, Ops, accumulation_bound, dim, oracle_itemsize, shape_str, value_bytes


def route(logits: np.ndarray, top_k: int):
    """Top-k experts per token and their weights.

    ``logits``: E x n. Returns (experts, weights), each top_k x n: the chosen experts
    (largest logit first; ties to the lower index) and the softmax of their logits
    taken over the chosen ones only (renormalised top-k, as in Mixtral).
    """
    order = np.argsort(-logits, axis=0, kind="stable")[:top_k]
    chosen = np.take_along_axis(logits, order, axis=0)
    z = np.exp(chosen - chosen[:1])
    return order, z / z.sum(axis=0, keepdims=True)


class MoE(KernelSpec):
    """Inputs: ``x`` (k x n: n tokens as columns), ``gate`` (E x k), ``experts`` (E x m x k).
    Parameters ``experts`` (E, default 8) and ``top_k`` (default 2). Result (m x n)::

        logits = gate @ x;  (e_j, p_j) = route(logits, top_k)
        y[:, t] = sum_j p_j[t] * experts[e_j[t]] @ x[:, t]

    The generator redraws any token whose k-th and (k+1)-th logits lie closer than a
    routing margin (1e-3 of the logits' spread, and at least 4x the accumulation bound on the gate's
    |gate| @ |x|), so any backend that rounds as its dtype does picks the same experts.
    The sparsity exploited is 1 - top_k/E; the dense equivalent runs all E experts.
    """

    name = "moe"
    summary = "top-k gate, then only the chosen experts' matmuls"
    defaults = {"m": None, "k": None, "n": None, "experts": 8, "top_k": 2}
    # its sparsity is 1 - top_k/experts, set by --top-k and --experts, not by --sparsity
    sweep_param = "top_k"
    documented_refusals = ("routing",)
    # shape: experts x m x k x n (n tokens); the dense equivalent runs all experts, (experts*m) x k x n
    benchmarks = (
        BenchGrid("MoE", ("shape", "top_k"), default=([shape_str((8, 512, 512, 64))], [1, 2, 4]),
                  full=([shape_str((8, 512, 512, 64)), shape_str((8, 1024, 1024, 256)), shape_str((64, 256, 512, 64))],
                        [1, 2, 4, 8]),
                  shape_axes=("experts", "m", "k", "n")),
    )

    def generate(self, rng, params):
        m, k, n = (dim(key, params[key]) for key in ("m", "k", "n"))
        e = dim("experts", params["experts"])
        top_k = dim("top_k", params["top_k"])
        if top_k > e:
            raise ValueError(f"moe needs top_k <= experts, got top_k={top_k}, experts={e}")
        dt = params["dtype"]
        gate = dtypes.to_host(rng.standard_normal((e, k)) / np.sqrt(k), dt)
        experts = dtypes.to_host(rng.standard_normal((e, m, k)) / np.sqrt(k), dt)
        x = dense_operand(rng, (k, n), dt)
        if top_k < e:
            gate, x = self._unambiguous(rng, gate, x, top_k, dt)
        params.update(experts=e, top_k=top_k, sparsity=1.0 - top_k / e)
        return params, {"x": x, "gate": gate, "experts": experts}

    @staticmethod
    def _unambiguous(rng, gate, x, top_k, dt, tries=60):
        """Redraw tokens (and, if that does not converge, the gate) until every token's
        k-th and (k+1)-th logits differ by more than the rounding the gate may suffer
        in ``dt`` (per token: 4x the accumulation bound on max_e (|gate| @ |x|)) and 1e-3
        of the spread."""
        k = gate.shape[1]
        for attempt in range(tries):
            g64, x64 = gate.astype(np.float64), x.astype(np.float64)
            logits = g64 @ x64
            ordered = -np.sort(-logits, axis=0)
            gap = ordered[top_k - 1] - ordered[top_k]
            tol = np.maximum(1e-3 * float(np.std(logits)), 4 * accumulation_bound(k, dt, (np.abs(g64) @ np.abs(x64)).max(axis=0)))
            bad = np.flatnonzero(gap <= tol)
            if bad.size == 0:
                return gate, x
            if attempt % 10 == 9:  # a gate with near-equal rows ties every token: redraw it
                gate = dtypes.to_host(rng.standard_normal(gate.shape) / np.sqrt(k), dt)
            else:
                x[:, bad] = dense_operand(rng, (k, bad.size), dt)
        raise ValueError(
            f"moe: in {dt}, the gate's rounding (up to {float(tol.max()):.3g} on a logit with k={k}) exceeds "
            f"the gap between chosen and unchosen experts for {bad.size} token(s), so the routing would not "
            "be reproducible across backends; use a wider dtype or a smaller k"
        )

    def _routing(self, problem):
        def compute():
            logits = problem.inputs["gate"].astype(np.float64) @ problem.inputs["x"].astype(np.float64)
            return route(logits, problem.params["top_k"])

        return problem.cached("routing", compute)

    def reference(self, problem, absolute=False):
        x = problem.inputs["x"].astype(np.float64)
        experts = problem.inputs["experts"]
        order, p = self._routing(problem)
        y = np.zeros((experts.shape[1], x.shape[1]))
        for e in range(experts.shape[0]):
            slot, tokens = np.nonzero(order == e)
            if tokens.size == 0:
                continue
            we = experts[e].astype(np.float64)
            xe = x[:, tokens]
            z = np.abs(we) @ np.abs(xe) if absolute else we @ xe
            y[:, tokens] += z * p[slot, tokens][None, :]
        return y

    def bound(self, problem):
        """gamma_{k+1} on each expert product, plus the weights' error from the gate's
        rounding (softmax is 2-Lipschitz in the logits, relatively) and the softmax
        itself (a few u), all doubled for the oracle's own rounding."""
        dt, k = problem.dtype, problem.params["k"]
        u = dtypes.unit_roundoff(dt)
        x = problem.inputs["x"].astype(np.float64)
        gx = np.abs(problem.inputs["gate"].astype(np.float64)) @ np.abs(x)
        logit_err = accumulation_bound(k, dt, gx.max(axis=0)) / 2.0
        absref = self.reference(problem, absolute=True)
        return accumulation_bound(k, dt, absref) + 2.0 * (2.0 * logit_err[None, :] + 8 * u) * absref

    def ops(self, problem):
        e, m, k = problem.inputs["experts"].shape
        n = problem.inputs["x"].shape[1]
        top_k = problem.params["top_k"]
        return Ops(e * m * k * n + e * k * n, top_k * m * k * n + e * k * n)

    def compulsory_bytes(self, problem):
        e, m, k = problem.inputs["experts"].shape
        n = problem.inputs["x"].shape[1]
        used = len(np.unique(self._routing(problem)[0]))
        item = problem.inputs["x"].itemsize
        return (k * n + e * k + used * m * k + m * n) * item

    def depth(self, problem):
        return problem.params["k"]

    def sparsity(self, problem):
        return problem.params["sparsity"]

    def dense_equivalent(self, params):
        e = int(params.get("experts") or self.defaults["experts"])
        return {"m": e * int(params["m"]), "k": int(params["k"]), "n": int(params["n"])}

    def nominal_sparsity(self, params):
        e = int(params.get("experts") or self.defaults["experts"])
        return 1.0 - int(params.get("top_k") or self.defaults["top_k"]) / e

    def footprint_bytes(self, params, dtype):
        it = oracle_itemsize(dtype)
        m, k, n = (int(params.get(key) or 0) for key in ("m", "k", "n"))
        experts = int(params.get("experts") or self.defaults["experts"])
        return int(BASELINE_BYTES + 3 * experts * m * k * it + 6 * (k * n + m * n) * it)

    def nominal_model(self, params):
        """top_k expert products per token plus the gate; every expert's weights read once."""
        m, k, n = (int(params[key]) for key in ("m", "k", "n"))
        e = int(params.get("experts") or self.defaults["experts"])
        top_k = int(params.get("top_k") or self.defaults["top_k"])
        v = value_bytes(params.get("dtype", "float32"))
        return 2.0 * (top_k * m * k * n + e * k * n), float(v * (k * n + e * k + e * m * k + m * n))

    def conformance_cases(self):
        moe = dict(m=24, k=16, n=20)
        return [Case(self.name, "e8-top2", {**moe, "experts": 8, "top_k": 2}, representative=True),
                Case(self.name, "e4-top4", {**moe, "experts": 4, "top_k": 4}),
                Case(self.name, "e1-top1", {**moe, "experts": 1, "top_k": 1}),
                Case(self.name, "e8-top1-n1", dict(m=24, k=16, n=1, experts=8, top_k=1))]

    def small_params(self, fmt=None):
        return dict(m=8, k=8, n=4)

    def draw_kwargs(self, draw, sks, max_side):
        st = sks.st
        side = sks.sides(1, max_side)
        experts = draw(st.integers(1, 8))
        top_k = draw(st.one_of(st.sampled_from([1, experts]), st.integers(1, experts)))
        return dict(m=draw(side), k=draw(side), n=draw(side), experts=experts, top_k=top_k)

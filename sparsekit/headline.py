"""The headline: per machine and operation, from what sparsity the best sparse implementation beats
the fastest dense product of that machine (any backend), how close it runs to the machine's
limits, and what it costs in accuracy.

Each operation is a set of break-even rows (``sparsekit.report_data``): one per backend, same
kernel, variant and shape. Per sparsity level, the best sparse time is the fastest backend's;
the dense time is the fastest ``dense_mm`` of *any* backend at the dense-equivalent shape::

    speedup(s) = min over backends time(dense_mm)  /  min over backends time(sparse at s)
    break-even = sparsekit.metrics.break_even(levels, speedups)

A backend's break-even against its own ``dense_mm`` is a different, easier question (a slow
dense product flatters it); the report keeps those rows below, labelled so.

Beside it: the speedup at 90% and 99% (interpolated in log(speedup) between measured
levels, as the break-even is), the sparse and dense winners, the roofline fraction of the
sparse winner at 90% (``sparsekit.roofline``: the level its footprint fits in), the error of
that result against the float64 oracle (``track_error``) and, for weight sparsity, the
autoencoder's held-out MSE at the weight sparsity nearest the break-even next to the dense
model's (``bench_workloads.Autoencoder.track_mse``, k = 256: no k-WTA).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from .metrics import break_even

#: the levels whose speedup the headline states
LEVELS = (0.9, 0.99)
AUTOENCODER_MSE = "bench_workloads.Autoencoder.track_mse"


def _n(shape: str) -> int | None:
    try:
        return int(str(shape).split("x")[-1])
    except ValueError:
        return None


@dataclass(frozen=True)
class Operation:
    """One headline row: which break-even rows it reads, and whether weight sparsity is what is swept."""

    key: str
    label: str
    kernel: str
    match: Callable[[dict], bool]
    weight_sparsity: bool = False
    #: several cases (shapes, matrices) each get a row; else only the one with the most dense work
    every_case: bool = False


OPERATIONS = (
    Operation("spmm-n1", "Unstructured weights (CSR), batch 1", "spmm",
              lambda r: r["variant"] == "uniform" and _n(r["shape"]) == 1, True),
    Operation("spmm-batch", "Unstructured weights (CSR), batch 64+", "spmm",
              lambda r: r["variant"] == "uniform" and (_n(r["shape"]) or 0) > 1, True),
    Operation("block", "Block-sparse weights (BSR)", "spmm", lambda r: r["variant"].startswith("bsr"), True),
    Operation("nm", "N:M structured weights", "spmm", lambda r: r["variant"] == "nm", True),
    Operation("dlmc", "Real pruned masks (DLMC)", "spmm", lambda r: r["variant"].startswith("dlmc:"), True, True),
    Operation("sddmm", "Output mask (SDDMM)", "sddmm", lambda r: True),
    Operation("gather", "Row selection (gather_mm)", "gather_mm", lambda r: True),
    Operation("sparse_sparse", "Weights x k-WTA activations", "sparse_sparse", lambda r: True, True),
    Operation("moe", "Mixture of experts (top-k of E)", "moe", lambda r: True),
    Operation("lif", "Spiking LIF network (synapses)", "lif", lambda r: True, True),
)


def _interpolate(levels, speedups, at: float) -> float | None:
    """Speedup at sparsity ``at``: the measured one, else log-linear between the neighbours."""
    pts = sorted((s, v) for s, v in zip(levels, speedups) if v is not None and v > 0)
    for s, v in pts:
        if math.isclose(s, at, abs_tol=1e-9):
            return v
    for (s0, v0), (s1, v1) in zip(pts, pts[1:]):
        if s0 < at < s1:
            t = (at - s0) / (s1 - s0)
            return math.exp(math.log(v0) + t * (math.log(v1) - math.log(v0)))
    return None


def _nearest(levels, at: float) -> int | None:
    """Index of the measured level nearest ``at`` (ties: the higher)."""
    if not levels:
        return None
    return min(range(len(levels)), key=lambda i: (abs(levels[i] - at), -levels[i]))


def _track_error(summary: dict, row: dict, i: int) -> float | None:
    """``track_error`` of the benchmark behind ``row`` at its i-th point (None when not recorded)."""
    from .report_data import values_of

    name = row.get("_benchmark")
    if not name:
        return None
    want = row["_params"][i]
    for p, v in values_of(summary["_data"], summary["_benchmarks"], name.rsplit(".", 1)[0] + ".track_error"):
        if p == want:
            return v
    return None


def _mse(summary: dict, sparsity: float | None) -> dict | None:
    """The autoencoder's held-out MSE (k = 256, no k-WTA) at the weight sparsity nearest ``sparsity``, and the dense one."""
    from .report_data import values_of

    if sparsity is None:
        return None
    pts = {float(p["weight_sparsity"]): v for p, v in values_of(summary["_data"], summary["_benchmarks"], AUTOENCODER_MSE)
           if v is not None and int(p.get("k", -1)) == 256}
    if 0.0 not in pts or len(pts) < 2:
        return None
    s = min((x for x in pts if x > 0), key=lambda x: abs(x - sparsity))
    return {"weight_sparsity": s, "mse": pts[s], "dense_mse": pts[0.0], "relative": pts[s] / pts[0.0] - 1.0}


def _case(summary: dict, op: Operation, rows: list[dict]) -> dict:
    """One headline entry from the per-backend rows of one (kernel, variant, shape)."""
    first = rows[0]
    dense_shape = first["dense_shape"]
    dense = {b: t for b, t in (summary.get("dense") or {}).get(dense_shape, {}).items() if t}
    dense_backend = min(dense, key=dense.get) if dense else None
    t_dense = dense.get(dense_backend)
    levels = sorted({s for r in rows for s in r["sparsities"]})
    best = []  # per level: (time, backend, row, index)
    for s in levels:
        cands = [(r["times"][i], r["backend"], r, i) for r in rows for i, x in enumerate(r["sparsities"])
                 if x == s and r["times"][i]]
        best.append(min(cands, key=lambda c: c[0]) if cands else None)
    speedups = [(t_dense / b[0]) if (b and t_dense) else None for b in best]
    be = break_even(levels, [math.nan if v is None else v for v in speedups]) if t_dense else None
    at = {f"{lv:g}": _interpolate(levels, speedups, lv) for lv in LEVELS}
    i90 = _nearest(levels, 0.9)
    winner = best[i90] if i90 is not None else None
    fraction = level = None
    if winner is not None and summary.get("_ceilings") is not None:
        model = (winner[2].get("_models") or [None] * len(winner[2]["times"]))[winner[3]]
        if model is not None:
            fraction, level = summary["_ceilings"].fraction(*model, winner[0])
            if fraction is None:
                level = None
    error = _track_error(summary, winner[2], winner[3]) if winner is not None else None
    mse = None
    if op.weight_sparsity and op.kernel == "spmm" and be is not None and be.sparsity is not None:
        mse = _mse(summary, be.sparsity)
    winners = sorted({b[1] for b in best if b is not None})
    return {
        "operation": op.key, "label": op.label, "kernel": op.kernel, "variant": first["variant"],
        "shape": first["shape"], "dense_shape": dense_shape,
        "dense_backend": dense_backend, "dense_time": t_dense,
        "sparsities": levels, "sparse_times": [b[0] if b else None for b in best],
        "sparse_backends": [b[1] if b else None for b in best], "speedups": speedups,
        "break_even": str(be) if be is not None else "n/a (no dense_mm measured)",
        "break_even_sparsity": be.sparsity if be is not None else None,
        "break_even_relation": be.relation if be is not None else "?",
        "speedup_at": at, "sparse_backend_at_90": winner[1] if winner else None,
        "sparse_winners": winners,
        "roofline_at_90": fraction, "roofline_level": level,
        "error_at_90": error, "autoencoder_mse": mse,
    }


def machine_headline(summary: dict) -> list[dict]:
    """The headline entries of one machine summary (``report_data.machine_summary``), operation order."""
    out = []
    for op in OPERATIONS:
        groups: dict[tuple, list] = {}
        for r in summary["rows"]:
            if r["kernel"] == op.kernel and op.match(r):
                groups.setdefault((r["variant"], r["shape"]), []).append(r)
        cases = [_case(summary, op, rows) for rows in groups.values()]
        if not cases:
            out.append({"operation": op.key, "label": op.label, "kernel": op.kernel, "missing": True})
            continue
        if not op.every_case:  # the case with the most dense work stands for the operation
            cases = [max(cases, key=lambda c: _work(c["dense_shape"]))]
        out.extend(cases)
    return out


def _work(shape: str) -> int:
    try:
        return math.prod(int(t) for t in str(shape).split("x"))
    except ValueError:
        return 0


def headline(summaries: list[dict]) -> dict[str, list[dict]]:
    """machine -> its headline entries."""
    return {s["machine"]: machine_headline(s) for s in summaries}

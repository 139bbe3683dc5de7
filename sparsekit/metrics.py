"""Derived figures: throughput, bandwidth, speedup and break-even sparsity."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .kernels.base import rel_error  # noqa: F401  (re-exported: the error metric)


def gflops(macs: int, seconds: float) -> float:
    """GFLOP/s for ``macs`` multiply-accumulates (2 FLOPs each) done in ``seconds``."""
    return 2.0 * macs / seconds / 1e9 if seconds > 0 else float("nan")


def gbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e9 if seconds > 0 else float("nan")


@dataclass(frozen=True)
class BreakEven:
    """Sparsity above which the sparse kernel beats dense, interpolated on a sweep.

    ``relation``: "=" a crossing was found at ``sparsity``; "<=" sparse already wins
    at the lowest sparsity measured (``sparsity`` is that level); ">" sparse never
    wins on the sweep (``sparsity`` is the highest level measured); "?" no data.
    """

    sparsity: float | None
    relation: str

    def __str__(self) -> str:
        if self.relation == "?" or self.sparsity is None:
            return "n/a"
        if self.relation == "=":
            return f"{self.sparsity:.3f}"
        return f"{self.relation}{self.sparsity:g}"


def break_even(sparsities, speedups) -> BreakEven:
    """Interpolate where speedup (dense time / sparse time) crosses 1.

    The point returned is the last upward crossing: above it sparse stays faster on
    every measured level. Interpolation is linear in log(speedup), which is close to
    linear in sparsity for work proportional to nnz. NaN entries (failed or n/a
    measurements) are ignored.
    """
    pts = sorted((float(s), float(v)) for s, v in zip(sparsities, speedups) if v is not None and np.isfinite(v) and v > 0)
    if not pts:
        return BreakEven(None, "?")
    if all(v >= 1.0 for _, v in pts):
        return BreakEven(pts[0][0], "<=")
    if pts[-1][1] < 1.0:
        return BreakEven(pts[-1][0], ">")
    # last index where sparse is slower; the crossing lies between it and the next point
    i = max(j for j, (_, v) in enumerate(pts) if v < 1.0)
    (s0, v0), (s1, v1) = pts[i], pts[i + 1]
    l0, l1 = math.log(v0), math.log(v1)
    t = 0.0 if l1 == l0 else (0.0 - l0) / (l1 - l0)
    return BreakEven(s0 + t * (s1 - s0), "=")

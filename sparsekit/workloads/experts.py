"""Mixture of experts: top-k routing of a batch of tokens to E experts, only the chosen
experts computed (``moe``), against running every expert densely (``dense_mm`` of the
stacked experts, (E*m) x k x n: the kernel's dense equivalent).

Default sizes: model width k = 256, expert width m = 256, n = 64 tokens.
"""
from __future__ import annotations

from ..kernels import make_problem
from ._common import (
    Recipe, WorkloadResult, fmt_ratio, fmt_time, live_backends, prepare_and_time, versions,
)

EXPERTS = (8, 16, 32, 64)
TOP_K = (1, 2)
M, K, N = 256, 256, 64


def moe_problem(experts: int, top_k: int, *, m=M, k=K, n=N, dtype="float32", seed=0):
    return make_problem("moe", m=m, k=k, n=n, experts=experts, top_k=top_k, dtype=dtype, seed=seed)


def dense_all_problem(experts: int, *, m=M, k=K, n=N, dtype="float32", seed=0):
    """Every expert run on every token: the (E*m) x k x n product."""
    return make_problem("dense_mm", m=experts * m, k=k, n=n, dtype=dtype, seed=seed)


class ExpertsRecipe(Recipe):
    name = "experts"
    help = f"mixture of experts: top-k of E experts (E={EXPERTS[0]}..{EXPERTS[-1]}, k=1,2) vs all experts dense"

    def run(self, backends, *, seed=0, repeat=7, progress=True, quick=False) -> WorkloadResult:
        res = WorkloadResult(self.name)
        live, res.notes = live_backends(backends)
        experts = (8, 64) if quick else EXPERTS
        runs, table = [], []
        for be in live:
            for e in experts:
                problems = {"dense": dense_all_problem(e, seed=seed)}
                problems.update({top_k: moe_problem(e, top_k, seed=seed) for top_k in TOP_K})
                times, status, errors = prepare_and_time(be, problems, repeat, res)
                t_dense = times.get("dense")
                for top_k in TOP_K:
                    t = times.get(top_k)
                    row = {"backend": be.name, "experts": e, "top_k": top_k, "m": M, "k": K, "n": N,
                           "time_s": t, "dense_all_time_s": t_dense,
                           "speedup": t_dense / t if t and t_dense else None, "rel_error": errors.get(top_k),
                           "status": status[top_k] if status[top_k] != "ok" else
                           (status["dense"] if status["dense"] != "ok" else "ok")}
                    runs.append(row)
                    table.append([be.name, e, top_k, fmt_time(t), fmt_time(t_dense), fmt_ratio(row["speedup"]),
                                  "-" if row["rel_error"] is None else f"{row['rel_error']:.1e}", row["status"]])
        res.tables.append((
            f"mixture of experts ({M}x{K} experts, {N} tokens): chosen experts only (moe) vs all experts dense "
            "(dense_mm); speedup = all-dense time / moe time",
            ["backend", "experts", "top_k", "moe", "all dense", "speedup", "rel. error", "status"], table))
        res.data = {"m": M, "k": K, "n": N, "experts": list(experts), "top_k": list(TOP_K), "seed": seed,
                    "versions": versions(), "runs": runs}
        return res

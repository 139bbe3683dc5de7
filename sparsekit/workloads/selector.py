"""Selector layer: a wide hidden layer of which a selector activates a few rows per call.

The claim tested: computing the ``rows`` = 1000 selected rows of a ``width`` = 20000-wide
layer (``gather_mm``, W[rows] @ X, the rows chosen per call) costs about what a dense
1000-wide layer costs (``dense_mm`` 1000 x k), and far less than the full 20000-wide
layer (``dense_mm`` 20000 x k). Input width ``k`` = 1000; batch n = 1 and 64. The rows are
one selection per call, shared by the batch's columns (the kernel's contract).
"""
from __future__ import annotations

from ..kernels import make_problem
from ._common import (
    Recipe, WorkloadResult, fmt_ratio, fmt_time, live_backends, prepare_and_time, versions,
)

WIDTH, ROWS, K_IN = 20000, 1000, 1000
BATCHES = (1, 64)
#: the three layers compared (see ``layer_problem``)
LAYERS = ("selected", "dense_1000", "full_20000")


def layer_problem(layer: str, n: int, *, width=WIDTH, rows=ROWS, k=K_IN, dtype="float32", seed=0):
    """The Problem of one layer of the comparison."""
    if layer == "selected":
        return make_problem("gather_mm", m=width, k=k, n=n, rows=rows, dtype=dtype, seed=seed)
    if layer == "dense_1000":
        return make_problem("dense_mm", m=rows, k=k, n=n, dtype=dtype, seed=seed)
    if layer == "full_20000":
        return make_problem("dense_mm", m=width, k=k, n=n, dtype=dtype, seed=seed)
    raise ValueError(f"unknown selector layer {layer!r}: choose one of {', '.join(LAYERS)}")


class SelectorRecipe(Recipe):
    name = "selector"
    help = (f"{ROWS} of {WIDTH} rows selected per call (gather_mm) against a dense {ROWS}-wide layer "
            f"and the full {WIDTH}-wide layer, n=1 and 64")

    def run(self, backends, *, seed=0, repeat=7, progress=True, quick=False) -> WorkloadResult:
        res = WorkloadResult(self.name)
        live, res.notes = live_backends(backends)
        runs, table = [], []
        for be in live:
            for n in BATCHES:
                problems = {layer: layer_problem(layer, n, seed=seed) for layer in LAYERS}
                times, status, errors = prepare_and_time(be, problems, repeat, res)
                sel, dense, full = (times.get(layer) for layer in LAYERS)
                row = {"backend": be.name, "n": n, "time_s": times, "rel_error": errors, "status": status,
                       "selected_over_dense_1000": sel / dense if sel and dense else None,
                       "selected_over_full_20000": sel / full if sel and full else None}
                runs.append(row)
                bad = "; ".join(f"{layer}: {st}" for layer, st in status.items() if st != "ok")
                table.append([be.name, n, fmt_time(sel), fmt_time(dense), fmt_time(full),
                              fmt_ratio(row["selected_over_dense_1000"]), fmt_ratio(row["selected_over_full_20000"]),
                              bad or "ok"])
        res.tables.append((
            f"selector layer: {ROWS} of {WIDTH} rows (gather_mm) vs dense {ROWS}x{K_IN} and {WIDTH}x{K_IN} (dense_mm)",
            ["backend", "n", "selected", f"dense {ROWS}", f"full {WIDTH}", f"selected / dense {ROWS}",
             f"selected / full {WIDTH}", "status"], table))
        res.data = {"width": WIDTH, "rows": ROWS, "k": K_IN, "batches": list(BATCHES), "seed": seed,
                    "versions": versions(), "runs": runs}
        return res

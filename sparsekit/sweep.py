"""A sparsity sweep: one kernel on several backends, timed beside each backend's own dense_mm.

Used by ``sparsekit run``; importable for scripts and notebooks.
"""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field

# sparsekit.kernels (the attribute) is the kernels() function: import the names directly.
from .kernels import check, compulsory_bytes, get_kernel, make_problem, ops
from ._errors import BackendUnavailable, Unsupported
from .metrics import BreakEven, break_even, gbps, gflops
from .registry import backend as get_backend
from .timing import time_plan


@dataclass
class Row:
    backend: str
    kernel: str
    shape: str
    sparsity: float | None
    status: str  # "ok", "FAIL" (wrong result), "n/a" (Unsupported), "error"
    time_s: float | None = None
    dense_time_s: float | None = None
    speedup: float | None = None
    error: float | None = None
    gflops: float | None = None
    gbps: float | None = None
    detail: str = ""
    params: dict = field(default_factory=dict)


def _shape_key(d: dict) -> tuple:
    return (d["m"], d["k"], d["n"])


def sweep(kernel: str, backends: list[str], problems: list[dict], *, dtype="float32", seed=0,
          repeat=7, progress=True, dense=True) -> tuple[list[Row], dict[str, BreakEven], list[str]]:
    """Run ``kernel`` for each parameter set in ``problems`` on each backend.

    Returns (rows, break-even per backend, notes). A backend that is unavailable
    is reported in ``notes`` with its reason and skipped -- never replaced.
    """
    notes: list[str] = []
    live = []
    for name in dict.fromkeys(backends):  # each backend once, in the order given
        try:
            live.append(get_backend(name))
        except BackendUnavailable as e:
            notes.append(f"{name}: skipped, {e.reason}")
    spec = get_kernel(kernel)
    rows: list[Row] = []
    dense_times: dict[tuple, float | None] = {}  # measured once per sweep, beside its sparse runs
    bar = _progress(len(problems) * len(live), progress, kernel)
    try:
        for params in problems:
            rows.extend(_run_point(spec, live, params, dtype, seed, repeat, dense, bar, dense_times))
    finally:  # also when a problem cannot be generated: leave the terminal clean
        bar.close()
    be_table = {}
    if any(r.speedup is not None for r in rows):
        for be in live:
            mine = [r for r in rows if r.backend == be.name and r.speedup is not None]
            be_table[be.name] = break_even([r.sparsity for r in mine], [r.speedup for r in mine])
    return rows, be_table, notes


def _run_point(spec, live, params, dtype, seed, repeat, dense, bar, dense_times) -> list[Row]:
    """One problem on every live backend, each beside its own dense_mm of the equivalent shape."""
    problem = make_problem(spec.name, dtype=dtype, seed=seed, **params)
    shape = "x".join(str(v) for v in _describe_shape(problem))
    eq = spec.dense_equivalent(problem) if dense and spec.name != "dense_mm" else None
    rows = []
    for be in live:
        row = Row(be.name, spec.name, shape, spec.sparsity(problem), "ok", params=_jsonable(problem.params))
        try:
            plan = be.prepare(problem)
            t = time_plan(plan, repeat=repeat).median
            chk = check(problem, plan.result())
            row.time_s, row.error = t, chk.error
            if not chk.ok:
                row.status, row.detail = "FAIL", chk.detail
            counts, nbytes = ops(problem), compulsory_bytes(problem)
            row.gflops, row.gbps = gflops(counts.effective, t), gbps(nbytes, t)
            if eq is not None:
                row.dense_time_s = _dense_time(be, eq, dtype, seed, repeat, dense_times)
                if row.dense_time_s:
                    row.speedup = row.dense_time_s / t
        except Unsupported as e:
            row.status, row.detail = "n/a", e.reason
        except Exception as e:  # a crashing backend is reported, the sweep goes on
            row.status, row.detail = "error", f"{type(e).__name__}: {e}"
        rows.append(row)
        bar.update(1)
    return rows


def _dense_time(be, eq: dict, dtype, seed, repeat, cache) -> float | None:
    """Median time of ``be``'s dense_mm at shape ``eq``, measured once per sweep."""
    key = (be.name, _shape_key(eq))
    if key not in cache:
        try:
            p = make_problem("dense_mm", dtype=dtype, seed=seed, **eq)
            cache[key] = time_plan(be.prepare(p), repeat=repeat).median
        except Unsupported:
            cache[key] = None
    return cache[key]


def _describe_shape(problem) -> tuple:
    p = problem.params
    if problem.kernel == "lif":
        return (p["n_in"], p["n_out"], p["steps"])
    if problem.kernel == "kwta":
        return (p["m"], p["n"])
    return (p["m"], p["k"], p["n"])


def _jsonable(params: dict) -> dict:
    from .problem import summary_params

    out = summary_params(params)
    for k, v in list(out.items()):
        if isinstance(v, tuple):
            out[k] = list(v)
        elif not isinstance(v, (int, float, str, bool, list, type(None))):
            out[k] = str(v)
    return out


class _NoBar:
    def update(self, n):  # noqa: D401 - trivial
        pass

    def close(self):
        pass


def _progress(total: int, enabled: bool, desc: str):
    if not enabled or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="run", file=sys.stderr, leave=False)


def rows_as_dicts(rows: list[Row]) -> list[dict]:
    return [asdict(r) for r in rows]

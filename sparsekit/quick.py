"""``sparsekit quick`` (``make quick``): the headline for this machine in a few minutes, without asv.

Runs every kernel's default benchmark grid (``KernelSpec.benchmarks``) and the Selector and
DLMC-vs-uniform workloads on the default CPU backends, in this process, with a shorter
timing protocol than asv's (3 repeats of at least 20 ms each), each problem generated
once and checked against its oracle, each backend's ``dense_mm`` timed at the
dense-equivalent shapes. The measurements are written as an asv result file (the same
benchmark classes and parameters as ``benchmarks/``) under ``.quick/results/<machine>/``,
so ``sparsekit report`` reads them unchanged and writes the same report
(``html/quick/index.html``) and headline. Quick figures are for iterating; the
committed, comparable results are ``make bench``'s.
"""
from __future__ import annotations

import datetime
import itertools
import json
import sys
import time
from pathlib import Path

from . import host
from ._errors import BackendUnavailable
from .kernels import get_kernel, make_problem, specs
from .measure import generate, measure
from .registry import backend as get_backend
from .runfile import clean, write_atomic
from .timing import time_plan

#: backends measured by default: the ones every CPU host can run in minutes (Lava's simulator cannot)
DEFAULT_BACKENDS = ("numpy", "cpu", "torch", "scipy", "opencl")
RESULTS_DIR = ".quick/results"
HTML_DIR = "html/quick"
DTYPE, SEED = "float32", 0
#: the asv result file's columns this module writes
COLUMNS = ["result", "params", "version", "started_at", "duration"]
SELECTOR = {"m": 20000, "k": 1000, "rows": 1000, "batches": (1, 64)}
DLMC_LEVEL = 0.9


#: seconds of idle before each timed plan: the previous plan's thread pool (OpenBLAS, Numba's
#: OpenMP, torch) spins for about 0.1 s after a call and would take a core from this one
SETTLE_S = 0.12
REPEAT, MIN_TIME, MAX_TIME = 5, 0.02, 0.6


def _timer(plan, repeat=REPEAT):
    time.sleep(SETTLE_S)
    return time_plan(plan, repeat=REPEAT, min_time=MIN_TIME, max_time=MAX_TIME)


class _Recorder:
    """Collects (benchmark, params) -> value and writes the asv result file and benchmarks.json."""

    def __init__(self):
        self.values: dict[str, dict] = {}
        self.params: dict[str, list] = {}
        self.names: dict[str, list] = {}

    def declare(self, name: str, param_names: list, params: list) -> None:
        self.names[name], self.params[name] = list(param_names), [list(v) for v in params]
        self.values.setdefault(name, {})

    def put(self, name: str, key: tuple, value) -> None:
        self.values[name][tuple(key)] = value

    def result_file(self, machine: dict, commit: str, date_ms: int) -> dict:
        results, now = {}, int(time.time() * 1000)
        for name, params in self.params.items():
            vals = [self.values[name].get(combo) for combo in itertools.product(*params)]
            results[name] = [vals, [[repr(v) for v in vs] for vs in params], "quick", now, None]
        return {"commit_hash": commit, "env_name": "quick", "date": date_ms, "python": sys.version.split()[0],
                "params": {k: machine[k] for k in ("arch", "cpu", "machine", "num_cpu", "os", "ram")},
                "requirements": {}, "env_vars": {}, "result_columns": COLUMNS, "results": results,
                "durations": {}, "version": 2}

    def benchmarks(self) -> dict:
        out = {name: {"name": name, "param_names": pn, "type": "time" if ".time_" in name else "track",
                      "unit": "seconds" if ".time_" in name else "relative error", "version": "quick"}
               for name, pn in self.names.items()}
        out["version"] = 2
        return out


def _live(names, say) -> list:
    live = []
    for name in dict.fromkeys(names):
        try:
            live.append(get_backend(name))
        except BackendUnavailable as e:
            say(f"{name}: skipped, {e.reason}")
        except KeyError:
            say(f"{name}: skipped, not registered")
    return live


def _grids():
    """(spec, grid, [param tuples]) of every kernel's default benchmark grid."""
    for spec in specs():
        for g in spec.benchmarks:
            yield spec, g, list(itertools.product(*g.values(False)))


def run(backends=DEFAULT_BACKENDS, *, results_dir=RESULTS_DIR, progress=True) -> tuple[Path, list[str]]:
    """Measure, write the asv-format results; returns (results folder, notes)."""
    host.pin_malloc_threshold()  # measured in this process: its allocator as asv's benchmark processes have it
    notes: list[str] = []

    def say(text):
        notes.append(text)
        if progress:
            print(f"quick: {text}", file=sys.stderr, flush=True)

    live = _live(backends, say)
    names = [be.name for be in live]
    rec = _Recorder()
    dense_times: dict = {}  # (backend, shape tuple) -> seconds, shared by every grid (measure's cache)
    started = time.perf_counter()
    problems = []  # generated once, kept: each backend then runs all of them in a row (one thread pool at a time)
    for spec, g, points in _grids():
        if spec.name == "dense_mm":
            continue
        rec.declare(f"quick.{g.name}.time_{spec.name}", ["backend", *g.param_names], [names, *g.values(False)])
        rec.declare(f"quick.{g.name}.track_error", ["backend", *g.param_names], [names, *g.values(False)])
        for values in points:
            params = dict(zip(g.param_names, values))
            try:
                kw = spec.bench_kwargs(g, params)
                problems.append((spec, g, values, generate(spec.name, {k: v for k, v in kw.items()
                                                                       if k not in ("dtype", "seed")}, DTYPE, SEED)))
            except Exception as e:  # noqa: BLE001 - a point that cannot be generated is a note, not the end
                say(f"{g.name} {params}: not generated: {e}")
    say(f"{len(problems)} problems generated in {time.perf_counter() - started:.0f} s; measuring {', '.join(names)}")
    for be in live:
        for spec, g, values, problem in problems:
            row = measure(be, spec, problem, DTYPE, SEED, REPEAT, True, dense_times, timer=_timer)
            ok = row.status == "ok"
            rec.put(f"quick.{g.name}.time_{spec.name}", (be.name, *values), row.time_s if ok else None)
            rec.put(f"quick.{g.name}.track_error", (be.name, *values), row.error if ok else None)
            if row.status not in ("ok", "n/a"):
                say(f"{be.name} {spec.name} {dict(zip(g.param_names, values))}: {row.status}: {row.detail}")
        say(f"{be.name} done ({time.perf_counter() - started:.0f} s so far)")
    del problems
    shapes = sorted({key[1] for key in dense_times}, key=lambda s: s[0] * s[1] * s[2])
    rec.declare("quick.DenseMM.time_dense_mm", ["backend", "shape"], [names, ["x".join(map(str, s)) for s in shapes]])
    for (b, s), t in dense_times.items():
        rec.put("quick.DenseMM.time_dense_mm", (b, "x".join(map(str, s))), t)
    _selector(live, rec, say)
    _dlmc_vs_uniform(live, rec, say)
    say(f"measured in {time.perf_counter() - started:.0f} s")
    return _write(rec, Path(results_dir)), notes


def _time_one(be, problem):
    from .kernels import check

    plan = be.prepare(problem)
    try:
        t = _timer(plan).median
        ok = check(problem, plan.result(), backend=be).ok
    finally:
        plan.close()
    return t if ok else None


def _selector(live, rec, say) -> None:
    """The Selector workload: 1000 of 20000 rows (gather_mm) against dense 1000- and 20000-wide layers."""
    from ._errors import Unsupported

    name = "quick.Selector.time_layer"
    layers = ["selected", "dense_1000", "full_20000"]
    rec.declare(name, ["backend", "n", "layer"], [[be.name for be in live], list(SELECTOR["batches"]), layers])
    m, k, r = SELECTOR["m"], SELECTOR["k"], SELECTOR["rows"]
    for n in SELECTOR["batches"]:
        problems = {"selected": make_problem("gather_mm", m=m, k=k, n=n, rows=r, dtype=DTYPE, seed=SEED),
                    "dense_1000": make_problem("dense_mm", m=r, k=k, n=n, dtype=DTYPE, seed=SEED),
                    "full_20000": make_problem("dense_mm", m=m, k=k, n=n, dtype=DTYPE, seed=SEED)}
        for be in live:
            for layer, p in problems.items():
                try:
                    rec.put(name, (be.name, n, layer), _time_one(be, p))
                except Unsupported:
                    pass
                except Exception as e:  # noqa: BLE001
                    say(f"{be.name} selector {layer} n={n}: {type(e).__name__}: {e}")


def _dlmc_vs_uniform(live, rec, say) -> None:
    """DLMC masks at 0.9 against uniform masks of the same shape and nonzero count."""
    from . import io
    from ._errors import Unsupported

    name = "quick.DLMCvsUniform.time_spmm"
    matrices = list(io.DLMC_MATRICES)
    rec.declare(name, ["backend", "matrix", "sparsity", "mask"],
                [[be.name for be in live], matrices, [DLMC_LEVEL], ["dlmc", "uniform"]])
    for mat in matrices:
        n = io.DLMC_MATRICES[mat][1]
        real = make_problem("spmm", matrix=mat, sparsity=DLMC_LEVEL, n=n, dtype=DTYPE, seed=SEED)
        w = real.inputs["w"]
        uni = make_problem("spmm", m=w.shape[0], k=w.shape[1], n=n, sparsity=1 - w.nnz / (w.shape[0] * w.shape[1]),
                           dtype=DTYPE, seed=SEED)
        for be in live:
            for mask, p in (("dlmc", real), ("uniform", uni)):
                try:
                    rec.put(name, (be.name, mat, DLMC_LEVEL, mask), _time_one(be, p))
                except Unsupported:
                    pass
                except Exception as e:  # noqa: BLE001
                    say(f"{be.name} dlmc {mat} {mask}: {type(e).__name__}: {e}")


def _write(rec: _Recorder, root: Path) -> Path:
    from .calibrate import git_commit

    machine = host.asv_machine_entry()
    commit = git_commit() or "0" * 40
    mdir = root / machine["machine"]
    mdir.mkdir(parents=True, exist_ok=True)
    now_ms = int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000)
    write_atomic(mdir / "machine.json", clean({**machine, "version": 1}))
    write_atomic(mdir / f"{commit[:8]}-quick.json", clean(rec.result_file(machine, commit, now_ms)))
    write_atomic(root / "benchmarks.json", rec.benchmarks())
    return root


def main(backends=None, *, results_dir=RESULTS_DIR, html_dir=HTML_DIR, progress=True) -> int:
    """Measure and print the headline; writes the HTML report to ``html_dir`` (None: none)."""
    from . import report

    root, _ = run(tuple(backends or DEFAULT_BACKENDS), results_dir=results_dir, progress=progress)
    return report.main(root, machine=host.machine_name(), html_dir=html_dir)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Everything the report shows about one machine, read from its results folder.

Break-even rows: every sparse benchmark's times paired with the same backend's
``DenseMM`` time at the dense-equivalent shape (each kernel's
``KernelSpec.bench_point`` says where a measurement sits), on the same machine and
result file::

    speedup(s) = time(dense_mm) / time(sparse at sparsity s)
    break-even = sparsekit.metrics.break_even(sparsities, speedups)

By default the newest result file of every machine is read. Failed and n/a
measurements (null or NaN) are left out of the sweep; a backend with no measurement
at all on a machine gives no row. Beside them, from ``results/<machine>/``:

* ``machine.json`` (asv's description of the host) and the newest run's commit,
  date, environment and Python;
* ``track_error`` of every benchmark class: error against the float64 oracle;
* workload figures (``bench_workloads.*.track_*``, e.g. the autoencoder's MSE);
* calibration: ``calibration.json`` (``{"backends": {name: {"copy_gbps",
  "triad_gbps", "gemm_gflops"}}}``, written by ``sparsekit calibrate``) or, failing
  that, asv's ``bench_calibrate.Calibrate.track_*`` results;
* roofline fractions, where calibration exists, from a nominal op/byte model;
* ``versions.txt``: the library versions of the run (``sparsekit.versions``).

Anything absent is ``None``/empty and the report says "not measured". Never asv,
never a backend.
"""
from __future__ import annotations

import datetime as _dt
import math
import statistics
from pathlib import Path

from . import results as _r
from .kernels import BenchGrid, get_kernel
from .metrics import break_even
from .roofline import Ceilings

CALIBRATION_FILE = "calibration.json"
VERSIONS_FILE = "versions.txt"
#: asv benchmark holding the calibration tracks (param: backend)
CALIBRATE_CLASS = "bench_calibrate.Calibrate"
CALIBRATION_KEYS = ("read_gbps", "copy_gbps", "triad_gbps", "gemm_gflops")
WORKLOADS_MODULE = "bench_workloads."
#: the benchmark class holding the dense baseline (``sparsekit.results.DENSE_CLASS``), and its kernel
DENSE_CLASS = _r.DENSE_CLASS
DENSE_KERNEL = "dense_mm"


def _sweep_point(name: str, params: dict, grids: dict):
    """(kernel, BenchPoint) of one sparse time measurement, or None when it is no sweep point.

    The class's kernel grid says where it sits; a class outside the grids (a peer view, a
    workload) is read as a grid of its own parameters, which pairs only when they carry a
    shape and the kernel's swept parameter."""
    kernel = name.split(".")[-1][len("time_"):]
    found = grids.get(_r.class_of(name))
    if found is not None:
        spec, grid = found
    else:
        try:
            spec = get_kernel(kernel)
        except KeyError:
            return None
        grid = BenchGrid(_r.class_of(name), tuple(k for k in params if k != "backend"), default=())
        if spec.sweep_param not in params or "shape" not in params:
            return None
    rest = {k: v for k, v in params.items() if k != "backend"}
    try:
        pt = spec.bench_point(grid, rest)
        kw = spec.bench_kwargs(grid, rest)
    except (KeyError, ValueError, TypeError, LookupError, FileNotFoundError):
        return None
    return None if pt is None or pt.sparsity is None else (spec.name, pt, kw)


def break_even_rows(machine: str, data: dict, benchmarks: dict) -> list[dict]:
    """Break-even rows of one result file: per backend, kernel, variant and shape (see the module doc)."""
    columns = data.get("result_columns") or ["result", "params"]
    grids = _r.kernel_grids()
    dense: dict[tuple, float | None] = {}
    groups: dict[tuple, dict] = {}
    for name, row in (data.get("results") or {}).items():
        method = name.split(".")[-1]
        if not method.startswith("time_") or not isinstance(row, list):
            continue
        combos = _r.combinations(row, columns)
        if not combos:
            continue
        names = _r.param_names(benchmarks, name, len(combos[0][0]))
        if names is None:
            continue
        for values, t in combos:
            p = dict(zip(names, values))
            if _r.class_of(name) == DENSE_CLASS or method == f"time_{DENSE_KERNEL}":
                dense[(p.get("backend"), p.get("shape"))] = t
                continue
            found = _sweep_point(name, p, grids)
            if found is None:
                continue
            kernel, pt, kw = found
            g = groups.setdefault((p.get("backend"), kernel, pt.variant, pt.shape),
                                  {"dense_shape": pt.dense_shape, "points": {}, "kwargs": {}, "params": {},
                                   "benchmark": name})
            g["points"][pt.sparsity] = t
            g["kwargs"][pt.sparsity] = kw
            g["params"][pt.sparsity] = p

    rows = []
    for (backend, kernel, variant, shape), g in groups.items():
        pts = sorted(g["points"].items())
        if all(t is None for _, t in pts):
            continue  # this backend measured nothing here (n/a or failed throughout)
        td = dense.get((backend, g["dense_shape"]))
        speedups = [td / t if (td is not None and t) else None for _, t in pts]
        be = break_even([s for s, _ in pts], [math.nan if v is None else v for v in speedups])
        spec = get_kernel(kernel)
        models = []
        for s_, _ in pts:
            try:
                models.append(spec.nominal_model(g["kwargs"][s_]))
            except (KeyError, ValueError, TypeError, FileNotFoundError):
                models.append(None)
        rows.append({
            "machine": machine, "commit": data.get("commit_hash"), "env": data.get("env_name"),
            "backend": backend, "kernel": kernel, "variant": variant, "shape": shape,
            "dense_shape": g["dense_shape"], "dense_time": td,
            "sparsities": [s for s, _ in pts], "times": [t for _, t in pts], "speedups": speedups,
            "break_even": str(be) if td is not None else "n/a (no dense_mm)",
            "break_even_sparsity": be.sparsity, "break_even_relation": be.relation,
            # not shown in JSON: the make_problem keywords and asv params of each point, its nominal model
            "_kwargs": [g["kwargs"][s_] for s_, _ in pts], "_params": [g["params"][s_] for s_, _ in pts],
            "_models": models, "_benchmark": g["benchmark"],
        })
    return sort_rows(rows)


def dense_table(data: dict, benchmarks: dict) -> dict[str, dict]:
    """dense shape -> {backend: seconds} of every dense_mm time in a result file (n/a and failed left out)."""
    out: dict[str, dict] = {}
    columns = data.get("result_columns") or ["result", "params"]
    for name, row in (data.get("results") or {}).items():
        method = name.split(".")[-1]
        if not isinstance(row, list) or not method.startswith("time_") \
                or not (_r.class_of(name) == DENSE_CLASS or method == f"time_{DENSE_KERNEL}"):
            continue
        combos = _r.combinations(row, columns)
        names = _r.param_names(benchmarks, name, len(combos[0][0])) if combos else None
        if names is None:
            continue
        for values, t in combos:
            p = dict(zip(names, values))
            if t is not None and p.get("shape") is not None:
                cur = out.setdefault(str(p["shape"]), {}).get(p.get("backend"))
                out[str(p["shape"])][p.get("backend")] = t if cur is None else min(cur, t)
    return out


def values_of(data: dict, benchmarks: dict, name: str) -> list[tuple[dict, float | None]]:
    """[(params, value)] of one benchmark (``bench_x.Class.method``) in a result file; [] when absent.
    Where the exact name is absent, the same ``Class.method`` under another module counts
    (``sparsekit quick`` writes ``quick.Selector.time_layer``)."""
    results = data.get("results") or {}
    if name not in results:
        tail = "." + ".".join(name.split(".")[-2:])
        name = next((n for n in results if n.endswith(tail)), name)
    row = results.get(name)
    if not isinstance(row, list):
        return []
    columns = data.get("result_columns") or ["result", "params"]
    combos = _r.combinations(row, columns)
    names = _r.param_names(benchmarks, name, len(combos[0][0])) if combos else None
    if names is None:
        return []
    return [(dict(zip(names, values)), v) for values, v in combos]


def public_row(row: dict) -> dict:
    """A break-even row without its private (underscore) fields, for JSON."""
    return {k: v for k, v in row.items() if not k.startswith("_")}


def sort_rows(rows: list[dict]) -> list[dict]:
    """Catalogue order of kernels, then variant, shape, backend (machine first)."""
    from .kernels import kernels

    order = {k: i for i, k in enumerate(kernels())}
    return sorted(rows, key=lambda r: (r["machine"], order.get(r["kernel"], 99), r["variant"], r["shape"], str(r["backend"])))


def summarize(results_dir="results", machine=None) -> list[dict]:
    """Break-even rows of the newest result file of each machine (or of ``machine``).

    Each row: machine, commit, env, backend, kernel, variant (pattern, format,
    DLMC matrix, ...), shape, dense_shape, dense_time (s), sparsities, times (s),
    speedups (dense/sparse, None where either is missing), break_even (the
    ``BreakEven`` as text) with break_even_sparsity and break_even_relation.
    """
    root = Path(results_dir)
    benchmarks = _r.load_json(root / "benchmarks.json") or {}
    rows: list[dict] = []
    for mach in ([machine] if machine is not None else _r.machines(root)):
        files = _r.result_files(root / mach)
        if files:
            rows.extend(break_even_rows(mach, files[-1][2], benchmarks))
    return [public_row(r) for r in sort_rows(rows)]


def accuracy(data: dict, benchmarks: dict) -> list[dict]:
    """Per benchmark class and backend: points measured, median and max ``track_error``."""
    out = []
    for name, _, points in _r.benchmark_rows(data, benchmarks, "track_error"):
        by_backend: dict = {}
        for p, v in points:
            by_backend.setdefault(p.get("backend"), []).append(v)
        for backend, values in by_backend.items():
            vals = [v for v in values if v is not None]
            if not vals:
                continue  # n/a throughout: this backend did not run here
            out.append({"benchmark": name.rsplit(".", 1)[0], "backend": backend, "points": len(vals),
                        "median_error": statistics.median(vals), "max_error": max(vals)})
    return out


def workloads(data: dict, benchmarks: dict) -> list[dict]:
    """Every ``bench_workloads.*.track_*`` figure: benchmark, unit, param names and (params, value) rows."""
    out = []
    for name, names, points in _r.benchmark_rows(data, benchmarks, "track_"):
        if not name.startswith(WORKLOADS_MODULE):
            continue
        info = benchmarks.get(name) if isinstance(benchmarks, dict) else None
        unit = info.get("unit") if isinstance(info, dict) else None
        rows = [(p, v) for p, v in points if v is not None]
        if rows:
            out.append({"benchmark": name, "unit": unit or "", "param_names": names, "rows": rows})
    return out


def calibration(machine_dir: Path, data: dict | None, benchmarks: dict) -> dict:
    """{backend: {read_gbps, copy_gbps, triad_gbps, gemm_gflops}} from calibration.json, else asv's tracks; {} if neither."""
    cal = _r.load_json(machine_dir / CALIBRATION_FILE)
    out: dict = {}
    if isinstance(cal, dict) and isinstance(cal.get("backends"), dict):
        for backend, figures in cal["backends"].items():
            if isinstance(figures, dict):
                vals = {k: _r.number(figures.get(k)) for k in CALIBRATION_KEYS}
                if any(v is not None for v in vals.values()):
                    out[str(backend)] = vals
        if out:
            return out
    if data is None:
        return out
    for name, _, points in _r.benchmark_rows(data, benchmarks, "track_"):
        if not name.startswith(CALIBRATE_CLASS + "."):
            continue
        key = name.rsplit(".", 1)[-1][len("track_"):]
        if key not in CALIBRATION_KEYS:
            continue
        for p, v in points:
            if v is not None and p.get("backend") is not None:
                out.setdefault(str(p["backend"]), dict.fromkeys(CALIBRATION_KEYS))[key] = v
    return out


def ceilings(machine_dir: Path, data: dict | None, benchmarks: dict) -> Ceilings | None:
    """The machine's roofline ceilings: calibration.json's, else asv's calibration tracks (DRAM only)."""
    cal = _r.load_json(machine_dir / CALIBRATION_FILE)
    got = Ceilings.from_calibration(cal) if isinstance(cal, dict) else None
    if got is None:
        got = Ceilings.from_calibration({"backends": calibration(machine_dir, data, benchmarks)})
    return got


def calibration_notes(machine: str, machine_dir: Path, data: dict | None, repo=None) -> list[str]:
    """Why this machine's calibration may not fit its newest results: another machine's, another
    commit's backend code (checked with git where the commits are known), or no levels measured."""
    cal = _r.load_json(machine_dir / CALIBRATION_FILE)
    if not isinstance(cal, dict):
        return []
    notes = []
    if cal.get("machine") and cal["machine"] != machine:
        notes.append(f"calibration.json was measured on machine {cal['machine']!r}, not {machine!r}: its limits may "
                     "not hold here")
    if not isinstance(cal.get("limits"), dict):
        notes.append("calibration predates per-level bandwidths (DRAM only): cache-resident problems have no roofline "
                     "figure; rerun `sparsekit calibrate`")
    result_commit = str((data or {}).get("commit_hash") or "")
    cal_commit = str(cal.get("commit") or "")
    if result_commit and cal_commit and not (result_commit.startswith(cal_commit[:8]) or cal_commit.startswith(result_commit[:8])):
        changed = _changed_backends(cal_commit, result_commit, list((cal.get("backends") or {})), repo)
        if changed is None:
            notes.append(f"calibrated at commit {cal_commit[:8]}, results of {result_commit[:8]}: whether the backends' "
                         "code changed between them could not be checked (no git history here)")
        elif changed:
            notes.append(f"STALE: calibrated at commit {cal_commit[:8]}, results of {result_commit[:8]}, and the code of "
                         f"{', '.join(changed)} changed between them: rerun `sparsekit calibrate`")
    elif result_commit and not cal_commit:
        notes.append("calibration.json records no commit: whether it matches the results' code is unknown")
    return notes


def _changed_backends(a: str, b: str, backends: list[str], repo=None) -> list[str] | None:
    """Backends whose package folder (backends/sparsekit_<name>) differs between commits a and b; None if git cannot say."""
    import subprocess

    changed = []
    for name in backends:
        folder = f"backends/sparsekit_{name.split('-')[0]}"
        try:
            proc = subprocess.run(["git", "diff", "--quiet", a, b, "--", folder], capture_output=True, timeout=20, cwd=repo)
        except (OSError, subprocess.SubprocessError):
            return None
        if proc.returncode == 1:
            changed.append(name)
        elif proc.returncode != 0:
            return None
    return changed


def roofline(rows: list[dict], ceil: Ceilings | None) -> list[dict]:
    """Fractions of the machine's roofline of the break-even rows and their dense baselines; the
    memory level each point was held against is that of its footprint (``Ceilings.level_for``)."""
    if ceil is None:
        return []
    dense_spec = get_kernel(DENSE_KERNEL)
    out = []
    for r in rows:
        fractions, levels = [], []
        for model, t in zip(r.get("_models") or [None] * len(r["times"]), r["times"]):
            f, lv = (None, None) if model is None or t is None else ceil.fraction(*model, t)
            fractions.append(f)
            levels.append(lv if f is not None else None)
        d = None
        try:
            m, k, n = (int(x) for x in r["dense_shape"].split("x"))
            if r["dense_time"]:
                d = ceil.fraction(*dense_spec.nominal_model({"m": m, "k": k, "n": n}), r["dense_time"])[0]
        except (ValueError, AttributeError):
            pass
        if d is None and all(f is None for f in fractions):
            continue
        out.append({"backend": r["backend"], "kernel": r["kernel"], "variant": r["variant"], "shape": r["shape"],
                    "dense_fraction": d, "sparsities": r["sparsities"], "fractions": fractions, "levels": levels})
    return out


def versions(machine_dir: Path) -> list[tuple[str, str]]:
    """(name, version) lines of versions.txt (``name==version``; ``#`` comments), [] when absent."""
    try:
        text = (machine_dir / VERSIONS_FILE).read_text(encoding="utf-8")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, _, ver = line.partition("==")
            out.append((name.strip(), ver.strip()))
    return out


def _date(ms) -> str | None:
    v = _r.number(ms)
    if v is None:
        return None
    return _dt.datetime.fromtimestamp(v / 1000.0, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def machine_summary(root: Path, machine: str, benchmarks: dict) -> dict | None:
    """Everything about one machine's newest result file; None when it has no result file."""
    mdir = Path(root) / machine
    files = _r.result_files(mdir)
    if not files:
        return None
    _, path, data = files[-1]
    info = _r.load_json(mdir / "machine.json")
    rows = break_even_rows(machine, data, benchmarks)
    cal = calibration(mdir, data, benchmarks)
    ceil = ceilings(mdir, data, benchmarks)
    return {
        "machine": machine,
        "info": info if isinstance(info, dict) else {},
        "run": {"file": path.name, "commit": data.get("commit_hash"), "date": _date(data.get("date")),
                "started": _date(_r.run_time(data)), "env": data.get("env_name"), "python": data.get("python"),
                "requirements": data.get("requirements") or {}, "runs": len(files)},
        "rows": rows,
        "accuracy": accuracy(data, benchmarks),
        "workloads": workloads(data, benchmarks),
        "calibration": cal,
        "calibration_notes": calibration_notes(machine, mdir, data, repo=Path(root).absolute().parent),
        "roofline": roofline(rows, ceil),
        "versions": versions(mdir),
        "dense": dense_table(data, benchmarks),
        # not shown in JSON: the machine's ceilings and the raw result file, for the headline and verdicts
        "_ceilings": ceil, "_data": data, "_benchmarks": benchmarks,
    }


def collect(results_dir, machine=None) -> list[dict]:
    """``machine_summary`` of every machine under results_dir (or of ``machine``), skipping empty folders."""
    root = Path(results_dir)
    benchmarks = _r.load_json(root / "benchmarks.json") or {}
    machines = [machine] if machine is not None else _r.machines(root)
    out = []
    for m in machines:
        s = machine_summary(root, m, benchmarks)
        if s is not None:
            out.append(s)
    return out


def roofline_points(summary: dict, at: float = 0.9) -> list[dict]:
    """Points of the machine's roofline plot: each backend's sparse kernels at the measured level
    nearest ``at``, and its dense_mm at every dense shape, placed by the nominal model
    (intensity = FLOPs / compulsory bytes, achieved GFLOP/s = FLOPs / time)."""
    ceil = summary.get("_ceilings")
    out = []
    for r in summary["rows"]:
        pts = [(abs(s - at), i) for i, (s, t) in enumerate(zip(r["sparsities"], r["times"])) if t]
        models = r.get("_models") or []
        if not pts or not models:
            continue
        i = min(pts)[1]
        model = models[i]
        if model is None or not model[1]:
            continue
        flops, nbytes = model
        level = ceil.level_for(nbytes) if ceil is not None else None
        out.append({"backend": r["backend"], "label": f"{r['kernel']} {r['variant']} {r['sparsities'][i]:g}".replace("  ", " "),
                    "intensity": flops / nbytes, "gflops": flops / r["times"][i] / 1e9,
                    "level": level.name if level is not None else None})
    dense_spec = get_kernel(DENSE_KERNEL)
    for shape, by in (summary.get("dense") or {}).items():
        try:
            m, k, n = (int(x) for x in shape.split("x"))
        except ValueError:
            continue
        flops, nbytes = dense_spec.nominal_model({"m": m, "k": k, "n": n})
        level = ceil.level_for(nbytes) if ceil is not None else None
        for backend, t in by.items():
            if t:
                out.append({"backend": backend, "label": f"dense {shape}", "intensity": flops / nbytes,
                            "gflops": flops / t / 1e9, "level": level.name if level is not None else None})
    return out

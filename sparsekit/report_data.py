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
from .roofline import roofline_fraction

CALIBRATION_FILE = "calibration.json"
VERSIONS_FILE = "versions.txt"
#: asv benchmark holding the calibration tracks (param: backend)
CALIBRATE_CLASS = "bench_calibrate.Calibrate"
CALIBRATION_KEYS = ("copy_gbps", "triad_gbps", "gemm_gflops")
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
    try:
        pt = spec.bench_point(grid, {k: v for k, v in params.items() if k != "backend"})
    except (KeyError, ValueError, TypeError, LookupError):
        return None
    return None if pt is None or pt.sparsity is None else (spec.name, pt)


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
            kernel, pt = found
            g = groups.setdefault((p.get("backend"), kernel, pt.variant, pt.shape), {"dense_shape": pt.dense_shape, "points": {}})
            g["points"][pt.sparsity] = t

    rows = []
    for (backend, kernel, variant, shape), g in groups.items():
        pts = sorted(g["points"].items())
        if all(t is None for _, t in pts):
            continue  # this backend measured nothing here (n/a or failed throughout)
        td = dense.get((backend, g["dense_shape"]))
        speedups = [td / t if (td is not None and t) else None for _, t in pts]
        be = break_even([s for s, _ in pts], [math.nan if v is None else v for v in speedups])
        rows.append({
            "machine": machine, "commit": data.get("commit_hash"), "env": data.get("env_name"),
            "backend": backend, "kernel": kernel, "variant": variant, "shape": shape,
            "dense_shape": g["dense_shape"], "dense_time": td,
            "sparsities": [s for s, _ in pts], "times": [t for _, t in pts], "speedups": speedups,
            "break_even": str(be) if td is not None else "n/a (no dense_mm)",
            "break_even_sparsity": be.sparsity, "break_even_relation": be.relation,
        })
    return sort_rows(rows)


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
    return sort_rows(rows)


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
    """{backend: {copy_gbps, triad_gbps, gemm_gflops}} from calibration.json, else asv's tracks; {} if neither."""
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


def nominal_model(kernel: str, shape: str | None, sparsity: float | None, dtype: str = "float32"):
    """(FLOPs, compulsory bytes) of one dense-equivalent point of ``kernel``: its spec's
    ``nominal_model`` at m x k x n = ``shape`` and ``sparsity`` (nominal, not measured on the
    data: nnz = (1 - s) x size); None where the spec has no such model or the shape is not m x k x n."""
    try:
        m, k, n = (int(t) for t in str(shape).split("x"))
    except (TypeError, ValueError):
        return None
    spec = get_kernel(kernel)
    params = {"m": m, "k": k, "n": n, "dtype": dtype}
    if spec.sweep_param == "sparsity":
        if sparsity is None:
            return None
        params["sparsity"] = sparsity
    elif spec.sweep_param is not None:
        return None  # the dense-equivalent shape alone does not say the swept parameter (moe's top_k)
    try:
        return spec.nominal_model(params)
    except (KeyError, ValueError, TypeError):
        return None


def roofline(rows: list[dict], cal: dict) -> list[dict]:
    """Roofline fractions of the break-even rows (and their dense baselines) of calibrated backends."""
    out = []
    for r in rows:
        c = cal.get(str(r["backend"]))
        if not c:
            continue
        peak, bw = c.get("gemm_gflops"), c.get("triad_gbps") or c.get("copy_gbps")
        fractions = []
        for s, t in zip(r["sparsities"], r["times"]):
            model = nominal_model(r["kernel"], r["dense_shape"], s)
            fractions.append(None if model is None or t is None else roofline_fraction(*model, t, peak, bw))
        dense_model = nominal_model("dense_mm", r["dense_shape"], 0.0)
        dense = None
        if dense_model is not None and r["dense_time"]:
            dense = roofline_fraction(*dense_model, r["dense_time"], peak, bw)
        if dense is None and all(f is None for f in fractions):
            continue
        out.append({"backend": r["backend"], "kernel": r["kernel"], "variant": r["variant"], "shape": r["shape"],
                    "dense_fraction": dense, "sparsities": r["sparsities"], "fractions": fractions})
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
        "roofline": roofline(rows, cal) if cal else [],
        "versions": versions(mdir),
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

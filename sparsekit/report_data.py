"""Everything the HTML report shows about one machine, read from its results folder.

``sparsekit.report`` pairs sparse and dense times (break-even rows); this module
adds what sits beside them in ``results/<machine>/``:

* ``machine.json`` (asv's description of the host) and the newest run's commit,
  date, environment and Python;
* ``track_error`` of every benchmark class: error against the float64 oracle;
* workload figures (``bench_workloads.*.track_*``, e.g. the autoencoder's MSE);
* calibration: ``calibration.json`` (``{"backends": {name: {"copy_gbps",
  "triad_gbps", "gemm_gflops"}}}``, written by ``sparsekit calibrate``) or, failing
  that, asv's ``bench_calibrate.Calibrate.track_*`` results;
* roofline fractions, where calibration exists, from a nominal op/byte model;
* ``versions.txt``: the library versions of the run (``sparsekit.versions``).

Anything absent is ``None``/empty and the report says "not measured". Standard
library only (plus ``sparsekit.report``): never asv, never a backend.
"""
from __future__ import annotations

import datetime as _dt
import statistics
from pathlib import Path

from . import report as _r

CALIBRATION_FILE = "calibration.json"
VERSIONS_FILE = "versions.txt"
#: asv benchmark holding the calibration tracks (param: backend)
CALIBRATE_CLASS = "bench_calibrate.Calibrate"
CALIBRATION_KEYS = ("copy_gbps", "triad_gbps", "gemm_gflops")
WORKLOADS_MODULE = "bench_workloads."
#: bytes of a value (the suite runs float32) and of an index (int32)
VALUE_BYTES = 4
INDEX_BYTES = 4


def _benchmark_rows(data: dict, benchmarks: dict, prefix: str):
    """(benchmark name, param names, [(params dict, value)]) of every benchmark whose method starts with prefix."""
    columns = data.get("result_columns") or ["result", "params"]
    for name, row in sorted((data.get("results") or {}).items()):
        if not name.split(".")[-1].startswith(prefix) or not isinstance(row, list):
            continue
        combos = _r._combinations(row, columns)
        if not combos:
            continue
        names = _r._param_names(benchmarks, name, len(combos[0][0]))
        if names is None:
            names = [f"param{i + 1}" for i in range(len(combos[0][0]))]
        yield name, names, [(dict(zip(names, values)), v) for values, v in combos]


def accuracy(data: dict, benchmarks: dict) -> list[dict]:
    """Per benchmark class and backend: points measured, median and max ``track_error``."""
    out = []
    for name, _, points in _benchmark_rows(data, benchmarks, "track_error"):
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
    for name, names, points in _benchmark_rows(data, benchmarks, "track_"):
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
    cal = _r._load_json(machine_dir / CALIBRATION_FILE)
    out: dict = {}
    if isinstance(cal, dict) and isinstance(cal.get("backends"), dict):
        for backend, figures in cal["backends"].items():
            if isinstance(figures, dict):
                vals = {k: _r._number(figures.get(k)) for k in CALIBRATION_KEYS}
                if any(v is not None for v in vals.values()):
                    out[str(backend)] = vals
        if out:
            return out
    if data is None:
        return out
    for name, _, points in _benchmark_rows(data, benchmarks, "track_"):
        if not name.startswith(CALIBRATE_CLASS + "."):
            continue
        key = name.rsplit(".", 1)[-1][len("track_"):]
        if key not in CALIBRATION_KEYS:
            continue
        for p, v in points:
            if v is not None and p.get("backend") is not None:
                out.setdefault(str(p["backend"]), dict.fromkeys(CALIBRATION_KEYS))[key] = v
    return out


def nominal_model(kernel: str, shape: str | None, sparsity: float) -> tuple[float, float] | None:
    """(flops, compulsory bytes) of one benchmark point, from its shape and sparsity alone.

    Nominal, not measured on the data: nnz = (1 - s) x size, float32 values and
    int32 indices, each operand read once and the result written once (the same
    terms as the kernels' ``compulsory_bytes``). Kernels whose work depends on
    more than shape and sparsity (sparse x sparse, MoE routing, LIF spikes) get None.
    """
    d = _r._dims(shape) if shape else None
    if d is None or len(d) != 3 or sparsity is None:
        return None
    m, k, n = d
    v, i = VALUE_BYTES, INDEX_BYTES
    if kernel == "dense_mm":
        return 2.0 * m * k * n, float(v * (m * k + k * n + m * n))
    if kernel == "spmm":
        nnz = (1.0 - sparsity) * m * k
        return 2.0 * nnz * n, nnz * (v + i) + (m + 1) * i + v * (k * n + m * n)
    if kernel == "gather_mm":
        r = (1.0 - sparsity) * m
        return 2.0 * r * k * n, v * (r * k + k * n + r * n) + 8.0 * r
    if kernel == "sddmm":
        nnz = (1.0 - sparsity) * m * n
        return 2.0 * nnz * k, v * (m * k + k * n + nnz) + i * (nnz + m + 1)
    return None


def roofline_fraction(flops: float, nbytes: float, seconds: float, peak_gflops, bw_gbps) -> float | None:
    """Achieved FLOP/s over the roofline's attainable min(peak, intensity x bandwidth)."""
    if not seconds or seconds <= 0 or flops <= 0 or (peak_gflops is None and bw_gbps is None):
        return None
    limits = []
    if peak_gflops:
        limits.append(peak_gflops * 1e9)
    if bw_gbps and nbytes > 0:
        limits.append(flops / nbytes * bw_gbps * 1e9)
    if not limits:
        return None
    return (flops / seconds) / min(limits)


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
    v = _r._number(ms)
    if v is None:
        return None
    return _dt.datetime.fromtimestamp(v / 1000.0, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def machine_summary(root: Path, machine: str, benchmarks: dict) -> dict | None:
    """Everything about one machine's newest result file; None when it has no result file."""
    mdir = Path(root) / machine
    files = _r._result_files(mdir)
    if not files:
        return None
    _, path, data = files[-1]
    info = _r._load_json(mdir / "machine.json")
    rows = _r._file_rows(machine, data, benchmarks)
    order = {k: i for i, k in enumerate(_r.PAIRED_KERNELS)}
    rows.sort(key=lambda r: (order.get(r["kernel"], 99), r["variant"], r["shape"], str(r["backend"])))
    cal = calibration(mdir, data, benchmarks)
    return {
        "machine": machine,
        "info": info if isinstance(info, dict) else {},
        "run": {"file": path.name, "commit": data.get("commit_hash"), "date": _date(data.get("date")),
                "started": _date(_r._run_time(data)), "env": data.get("env_name"), "python": data.get("python"),
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
    benchmarks = _r._load_json(root / "benchmarks.json") or {}
    machines = [machine] if machine is not None else _r._machines(root)
    out = []
    for m in machines:
        s = machine_summary(root, m, benchmarks)
        if s is not None:
            out.append(s)
    return out

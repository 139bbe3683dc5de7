"""Measurements as they are taken (``points.jsonl``) and the asv files made from them.

Every measured point is appended to ``points.jsonl`` as one JSON line and flushed at
once, so a run stopped at any moment keeps every point it finished. From those lines
``write_asv`` makes what ``make bench`` leaves in ``results/<machine>/``:

* ``<commit[:8]>-<env>.json``: an asv result file (format version 2, the layout of
  the committed files in ``results/amd-epyc-2c/``): per benchmark the result list
  over the cartesian product of its ``params`` (each value as its ``repr``, as asv
  stores them), the benchmark's ``version`` and asv's stats columns. Only the values
  measured here appear in ``params``; asv publish matches them to the full lists of
  ``results/benchmarks.json`` and shows the rest as missing. A point that was not
  reached (deadline) or failed is ``null``, one that is n/a here (``Unsupported``) NaN,
  as asv writes them.
* ``machine.json``: asv's description of the host.

The grid worker rewrites these after every point (atomically: a temporary file, then
``os.replace``), so the folder is always a consistent, committable result.

Point record (one JSON object per line)::

    {"benchmark": "bench_spmm.SpMM", "method": "time_spmm", "version": "1",
     "param_names": [...], "params": [...python values...], "status": "ok" | "n/a" | "failed" | "deadline",
     "seconds": median s per call, "best": s, "number": calls per repeat, "repeats": n,
     "error": relative error vs the oracle (track_error), "path": the backend's strategy,
     "reason": why n/a or failed, "started_at": ms since the epoch, "duration": s,
     "asv": false for points that are not asv benchmarks (own-kernel variants)}
"""
from __future__ import annotations

import json
import math
import os
import platform
import statistics
from pathlib import Path

POINTS_FILE = "points.jsonl"
ASV_COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a", "stats_ci_99_b",
               "stats_q_25", "stats_q_75", "stats_number", "stats_repeat", "samples", "profile"]
ASV_API_VERSION = 2


def append_point(path: Path, record: dict) -> None:
    """Append one point and make it durable before the next one starts."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, allow_nan=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_points(path: Path) -> list[dict]:
    """Every complete line of ``path`` (a line cut short by a kill is skipped)."""
    out = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return out
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def json_safe(obj):
    """``obj`` with every NaN or infinity as None (strict JSON, for files people read with any tool)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json_atomic(path: Path, data, **kw) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file (never a half-written file);
    ``allow_nan=False`` turns non-finite floats into null first."""
    if kw.get("allow_nan", True) is False:
        data = json_safe(data)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, **kw) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _ordered(values, order) -> list:
    """``values`` in the order of the benchmark's own param list (unknown values last)."""
    index = {repr(v): i for i, v in enumerate(order)}
    return sorted(set(values), key=lambda v: (index.get(repr(v), len(index)), repr(v)))


def _value(rec: dict, method: str):
    status = rec.get("status")
    if status == "n/a":
        return math.nan
    if status != "ok":
        return None
    return rec.get("error") if method == "track_error" else rec.get("seconds")


def asv_results(points: list[dict], full_params: dict) -> dict:
    """asv's ``results`` mapping for the points; ``full_params``: benchmark class -> its params
    lists (the order asv's files use). Later records of a point replace earlier ones."""
    by_name: dict[str, dict] = {}
    for rec in points:
        if not rec.get("asv", True):
            continue
        for method in (rec["method"], "track_error"):
            if method == "track_error" and rec.get("status") == "ok" and rec.get("error") is None:
                continue
            name = f"{rec['benchmark']}.{method}"
            entry = by_name.setdefault(name, {"version": rec.get("version", "1"), "points": {}})
            entry["points"][tuple(repr(v) for v in rec["params"])] = rec
    results = {}
    for name, entry in sorted(by_name.items()):
        cls, method = name.rsplit(".", 1)
        recs = list(entry["points"].values())
        nparams = len(recs[0]["params"])
        order = full_params.get(cls) or [[] for _ in range(nparams)]
        axes = [_ordered([r["params"][i] for r in recs], order[i]) for i in range(nparams)]
        combos = [()]
        for axis in axes:
            combos = [c + (repr(v),) for c in combos for v in axis]
        values, q25, q75, numbers, repeats, samples = [], [], [], [], [], []
        for combo in combos:
            rec = entry["points"].get(combo)
            values.append(None if rec is None else _value(rec, method))
            ok = rec is not None and rec.get("status") == "ok" and method != "track_error"
            got = (rec.get("samples") or []) if ok else []
            quartiles = statistics.quantiles(got, n=4) if len(got) >= 2 else [None, None, None]
            q25.append(quartiles[0])
            q75.append(quartiles[2])
            numbers.append(rec.get("number") if ok else None)
            repeats.append(rec.get("repeats") if ok else None)
            samples.append(got or None)
        started = [r["started_at"] for r in recs if r.get("started_at")]
        duration = sum(r.get("duration") or 0.0 for r in recs)
        timed = method != "track_error"
        results[name] = [values, [[repr(v) for v in axis] for axis in axes], entry["version"],
                         min(started) if started else None, round(duration, 3), None, None,
                         *((q25, q75, numbers, repeats, samples) if timed else (None,) * 5), None]
    return results


def machine_info(machine: str, cpu: str) -> dict:
    """asv's ``machine.json`` fields for this host."""
    try:
        ram = str(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        ram = ""
    try:
        cores = str(len(os.sched_getaffinity(0)))
    except AttributeError:
        cores = str(os.cpu_count() or "")
    return {"arch": platform.machine(), "cpu": cpu, "machine": machine, "num_cpu": cores,
            "os": f"{platform.system()} {platform.release()}", "ram": ram, "version": 1}


def result_filename(commit: str, env_name: str) -> str:
    return f"{commit[:8]}-{env_name}.json"


def write_asv(results_dir: Path, run: dict, points: list[dict], full_params: dict) -> Path:
    """Write ``results_dir/<machine>/{machine.json, <commit>-<env>.json}`` for ``run`` (keys: machine,
    cpu, commit, date_ms, env_name, python) from ``points``; returns the result file's path."""
    mdir = Path(results_dir) / run["machine"]
    info = machine_info(run["machine"], run["cpu"])
    write_json_atomic(mdir / "machine.json", info, indent=4, sort_keys=True)
    data = {
        "commit_hash": run["commit"], "env_name": run["env_name"], "date": int(run["date_ms"]),
        "params": {**{k: v for k, v in info.items() if k != "version"}, "python": run["python"]},
        "python": run["python"], "requirements": {}, "env_vars": {}, "result_columns": ASV_COLUMNS,
        "results": asv_results(points, full_params), "durations": {}, "version": ASV_API_VERSION,
    }
    path = mdir / result_filename(run["commit"], run["env_name"])
    write_json_atomic(path, data, allow_nan=True, separators=(",", ":"))
    return path

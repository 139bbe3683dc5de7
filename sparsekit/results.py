"""Reading asv's result files without importing asv: machines, runs, benchmarks and their values.

``results/<machine>/<commit>-<env>.json`` (format version 2: ``result_columns`` and
``results: {benchmark: [column values]}``), ``results/<machine>/machine.json`` and
``results/benchmarks.json`` (written by ``asv run``: each benchmark's param names,
unit, version). Used by the report and the change detection; standard library only
(plus the catalogue, for the param names of its benchmark grids when
``benchmarks.json`` is missing).
"""
from __future__ import annotations

import ast
import json
import math
from pathlib import Path


def load_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def machines(results_dir: Path) -> list[str]:
    """The machine folders of a results directory."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return []
    return sorted(p.name for p in results_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def result_files(machine_dir: Path) -> list[tuple[tuple, Path, dict]]:
    """(sort key, path, data) of every asv result file of one machine, oldest first.

    asv's ``date`` is the commit's date; among files of the same commit (several
    environments, reruns) the one whose benchmarks started last is the newest.
    """
    out = []
    for p in Path(machine_dir).glob("*.json"):
        if p.name in ("machine.json", "benchmarks.json"):
            continue
        data = load_json(p)
        if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
            continue
        date = number(data.get("date"))
        out.append(((date or 0.0, run_time(data) or p.stat().st_mtime * 1000.0, p.name), p, data))
    out.sort(key=lambda t: t[0])
    return out


def run_time(data: dict) -> float | None:
    """Latest ``started_at`` (ms since the epoch) recorded in a result file."""
    columns = data.get("result_columns") or []
    if "started_at" not in columns:
        return None
    i = columns.index("started_at")
    times = [number(row[i]) for row in data["results"].values() if isinstance(row, list) and len(row) > i]
    times = [t for t in times if t is not None]
    return max(times) if times else None


def param_value(text):
    """asv stores each parameter value as its repr: "'numpy'", '0.9', '64'."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError):
        return text


def number(x) -> float | None:
    """A finite float, or None (asv writes null or NaN for failed and n/a measurements)."""
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def column(row: list, columns: list, name: str):
    """One named column of a benchmark's row (None when absent)."""
    return row[columns.index(name)] if name in columns and columns.index(name) < len(row) else None


def combinations(row: list, columns: list, key: str = "result") -> list[tuple[tuple, object]]:
    """[(param values, value of column ``key``)] of one benchmark's row in a result file;
    ``result`` values are numbers or None, other columns (``stats_q_25``...) as stored."""
    col = {name: (row[i] if i < len(row) else None) for i, name in enumerate(columns)}
    results = col.get(key)
    params = col.get("params") or []
    if results is None:
        return []
    if not isinstance(results, list):
        results = [results]
    combos = [()]
    for values in params:
        combos = [c + (param_value(v),) for c in combos for v in values]
    if len(combos) != len(results):  # malformed: do not guess the pairing
        return []
    return [(c, number(r) if key == "result" else r) for c, r in zip(combos, results)]


def class_of(name: str) -> str:
    """``bench_spmm.SpMM.time_spmm`` -> ``SpMM``."""
    parts = name.split(".")
    return parts[-2] if len(parts) >= 2 else ""


#: the dense baseline's benchmark class and its parameters (benchmarks/bench_dense_mm.py): the
#: report pairs every sparse point with it on (backend, shape)
DENSE_CLASS = "DenseMM"
DENSE_PARAM_NAMES = ["backend", "shape"]


def kernel_grids() -> dict:
    """asv class name -> (spec, BenchGrid) for every kernel's benchmark grids."""
    from .kernels import specs

    return {g.name: (spec, g) for spec in specs() for g in spec.benchmarks}


def param_names(benchmarks: dict, name: str, nparams: int) -> list[str] | None:
    """A benchmark's parameter names: from benchmarks.json, else from the kernel grid of its class."""
    info = benchmarks.get(name) if isinstance(benchmarks, dict) else None
    names = info.get("param_names") if isinstance(info, dict) else None
    if not names:
        if class_of(name) == DENSE_CLASS:
            names = DENSE_PARAM_NAMES
        else:
            grid = kernel_grids().get(class_of(name))
            names = ["backend", *grid[1].param_names] if grid else None
    if names is None or len(names) != nparams:
        return None
    return list(names)


def benchmark_rows(data: dict, benchmarks: dict, prefix: str):
    """(benchmark name, param names, [(params dict, value)]) of every benchmark whose method starts with prefix."""
    columns = data.get("result_columns") or ["result", "params"]
    for name, row in sorted((data.get("results") or {}).items()):
        if not name.split(".")[-1].startswith(prefix) or not isinstance(row, list):
            continue
        combos = combinations(row, columns)
        if not combos:
            continue
        names = param_names(benchmarks, name, len(combos[0][0]))
        if names is None:
            names = [f"param{i + 1}" for i in range(len(combos[0][0]))]
        yield name, names, [(dict(zip(names, values)), v) for values, v in combos]

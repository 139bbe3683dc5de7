"""Break-even tables from asv results: at what sparsity does sparse beat dense?

Reads the result files asv writes (``results/<machine>/<commit>-<env>.json``,
format version 2: ``result_columns`` and ``results: {benchmark: [column values]}``)
without importing asv, and pairs every sparse benchmark's times with the same
backend's ``DenseMM`` time at the dense-equivalent shape, on the same machine
and result file::

    speedup(s) = time(dense_mm) / time(sparse at sparsity s)
    break-even = sparsekit.metrics.break_even(sparsities, speedups)

By default the newest result file of every machine is read (``machine`` picks
one). Failed and n/a measurements (null or NaN) are left out of the sweep; a
backend with no measurement at all on a machine gives no row.

Pure core module: the standard library, tabulate and ``sparsekit.metrics``
only -- never a backend, never asv. (The shape of a DLMC matrix is read from its
vendored file's header through ``sparsekit.io``, only when a DLMC benchmark is
present.)
"""
from __future__ import annotations

import ast
import json
import math
import os
import sys
from pathlib import Path

from .metrics import break_even

#: the benchmark class holding the dense baseline, and its time method
DENSE_CLASS = "DenseMM"
#: kernels whose benchmarks have an m x k x n dense equivalent (others get no row)
PAIRED_KERNELS = ("spmm", "sddmm", "gather_mm", "sparse_sparse", "moe")
#: parameters that are the sweep, the backend or the shape -- the rest name the variant
_AXES = ("backend", "shape", "sparsity", "top_k", "matrix")

#: param names per benchmark class, used when results/benchmarks.json is missing
#: (it is written by ``asv run``; keep in step with benchmarks/)
DEFAULT_PARAM_NAMES = {
    "DenseMM": ["backend", "shape"],
    "SpMM": ["backend", "pattern", "shape", "sparsity"],
    "SpMMFormats": ["backend", "format", "shape", "sparsity"],
    "SpMMDLMC": ["backend", "matrix", "sparsity"],
    "SDDMM": ["backend", "pattern", "shape", "sparsity"],
    "GatherMM": ["backend", "shape", "sparsity"],
    "SparseSparse": ["backend", "act_sparsity", "shape", "sparsity"],
    "MoE": ["backend", "shape", "top_k"],
}

# -- reading asv's files ---------------------------------------------------------


def _load_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _machines(results_dir: Path) -> list[str]:
    if not results_dir.is_dir():
        return []
    return sorted(p.name for p in results_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _result_files(machine_dir: Path) -> list[tuple[tuple, Path, dict]]:
    """(sort key, path, data) of every asv result file of one machine, oldest first.

    asv's ``date`` is the commit's date; among files of the same commit (several
    environments, reruns) the one whose benchmarks started last is the newest.
    """
    out = []
    for p in machine_dir.glob("*.json"):
        if p.name in ("machine.json", "benchmarks.json"):
            continue
        data = _load_json(p)
        if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
            continue
        date = _number(data.get("date"))
        out.append(((date or 0.0, _run_time(data) or p.stat().st_mtime * 1000.0, p.name), p, data))
    out.sort(key=lambda t: t[0])
    return out


def _run_time(data: dict) -> float | None:
    """Latest ``started_at`` (ms since the epoch) recorded in a result file."""
    columns = data.get("result_columns") or []
    if "started_at" not in columns:
        return None
    i = columns.index("started_at")
    times = [_number(row[i]) for row in data["results"].values() if isinstance(row, list) and len(row) > i]
    times = [t for t in times if t is not None]
    return max(times) if times else None


def _param_value(text):
    """asv stores each parameter value as its repr: "'numpy'", '0.9', '64'."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError):
        return text


def _number(x) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _combinations(row: list, columns: list) -> list[tuple[tuple, float | None]]:
    """[(param values, result)] of one benchmark's row in a result file."""
    col = {name: (row[i] if i < len(row) else None) for i, name in enumerate(columns)}
    results = col.get("result")
    params = col.get("params") or []
    if results is None:
        return []
    if not isinstance(results, list):
        results = [results]
    combos = [()]
    for values in params:
        combos = [c + (_param_value(v),) for c in combos for v in values]
    if len(combos) != len(results):  # malformed: do not guess the pairing
        return []
    return [(c, _number(r)) for c, r in zip(combos, results)]


def _param_names(benchmarks: dict, name: str, nparams: int) -> list[str] | None:
    info = benchmarks.get(name) if isinstance(benchmarks, dict) else None
    names = info.get("param_names") if isinstance(info, dict) else None
    if not names:
        names = DEFAULT_PARAM_NAMES.get(_class_of(name))
    if names is None or len(names) != nparams:
        return None
    return list(names)


def _class_of(name: str) -> str:
    parts = name.split(".")
    return parts[-2] if len(parts) >= 2 else ""


# -- shapes ------------------------------------------------------------------------


def _dims(shape) -> tuple[int, ...] | None:
    try:
        return tuple(int(t) for t in str(shape).split("x"))
    except ValueError:
        return None


_dlmc_cache: dict[str, str | None] = {}


def _dlmc_shape(matrix: str) -> str | None:
    """m x k x N of a DLMC short name (None for a name this version does not ship)."""
    if matrix not in _dlmc_cache:
        from . import io

        try:
            _dlmc_cache[matrix] = "x".join(map(str, io.dlmc_benchmark_shape(matrix)))
        except (KeyError, FileNotFoundError, ValueError):
            _dlmc_cache[matrix] = None
    return _dlmc_cache[matrix]


def _point(kernel: str, p: dict):
    """(variant, shape shown, dense shape, sparsity) of one sparse measurement, or None."""
    variant = ", ".join(
        str(v) if k in ("pattern", "format") else f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in p.items()
        if k not in _AXES
    )
    if "matrix" in p:
        shape = _dlmc_shape(str(p["matrix"]))
        variant = ", ".join(x for x in (f"dlmc:{p['matrix']}", variant) if x)
        return variant, shape, shape, _number(p.get("sparsity"))
    d = _dims(p.get("shape"))
    if d is None:
        return None
    if kernel == "moe":
        if len(d) != 4 or "top_k" not in p:
            return None
        e, m, k, n = d
        return variant, p["shape"], f"{e * m}x{k}x{n}", 1.0 - float(p["top_k"]) / e
    if len(d) != 3:
        return None
    return variant, p["shape"], p["shape"], _number(p.get("sparsity"))


# -- the summary -------------------------------------------------------------------


def _file_rows(machine: str, data: dict, benchmarks: dict) -> list[dict]:
    columns = data.get("result_columns") or ["result", "params"]
    dense: dict[tuple, float | None] = {}
    sparse: list[tuple[str, dict, float | None]] = []
    for name, row in (data.get("results") or {}).items():
        method = name.split(".")[-1]
        if not method.startswith("time_") or not isinstance(row, list):
            continue
        combos = _combinations(row, columns)
        if not combos:
            continue
        names = _param_names(benchmarks, name, len(combos[0][0]))
        if names is None:
            continue
        kernel = method[len("time_"):]
        for values, t in combos:
            p = dict(zip(names, values))
            if _class_of(name) == DENSE_CLASS or kernel == "dense_mm":
                dense[(p.get("backend"), p.get("shape"))] = t
            elif kernel in PAIRED_KERNELS:
                sparse.append((kernel, p, t))

    groups: dict[tuple, dict] = {}
    for kernel, p, t in sparse:
        pt = _point(kernel, p)
        if pt is None or pt[3] is None:
            continue
        variant, shape, dense_shape, s = pt
        key = (p.get("backend"), kernel, variant, shape)
        g = groups.setdefault(key, {"dense_shape": dense_shape, "points": {}})
        g["points"][s] = t

    rows = []
    for (backend, kernel, variant, shape), g in groups.items():
        pts = sorted(g["points"].items())
        if all(t is None for _, t in pts):
            continue  # this backend measured nothing here (n/a or failed throughout)
        td = dense.get((backend, g["dense_shape"]))
        speedups = [td / t if (td is not None and t) else None for _, t in pts]
        be = break_even([s for s, _ in pts], [math.nan if v is None else v for v in speedups])
        rows.append(
            {
                "machine": machine,
                "commit": data.get("commit_hash"),
                "env": data.get("env_name"),
                "backend": backend,
                "kernel": kernel,
                "variant": variant,
                "shape": shape,
                "dense_shape": g["dense_shape"],
                "dense_time": td,
                "sparsities": [s for s, _ in pts],
                "times": [t for _, t in pts],
                "speedups": speedups,
                "break_even": str(be) if td is not None else "n/a (no dense_mm)",
                "break_even_sparsity": be.sparsity,
                "break_even_relation": be.relation,
            }
        )
    return rows


def summarize(results_dir="results", machine=None) -> list[dict]:
    """Break-even rows of the newest result file of each machine (or of ``machine``).

    Each row: machine, commit, env, backend, kernel, variant (pattern, format,
    DLMC matrix, ...), shape, dense_shape, dense_time (s), sparsities, times (s),
    speedups (dense/sparse, None where either is missing), break_even (the
    ``BreakEven`` as text) with break_even_sparsity and break_even_relation.
    """
    root = Path(results_dir)
    benchmarks = _load_json(root / "benchmarks.json") or {}
    machines = [machine] if machine is not None else _machines(root)
    rows: list[dict] = []
    for mach in machines:
        files = _result_files(root / mach)
        if not files:
            continue
        _, _, data = files[-1]
        rows.extend(_file_rows(mach, data, benchmarks))
    order = {k: i for i, k in enumerate(PAIRED_KERNELS)}
    rows.sort(key=lambda r: (r["machine"], order.get(r["kernel"], 99), r["variant"], r["shape"], str(r["backend"])))
    return rows


def _fmt_time(t) -> str:
    if t is None:
        return "n/a"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"


def _fmt_speedups(row: dict) -> str:
    parts = []
    for s, v in zip(row["sparsities"], row["speedups"]):
        parts.append(f"{s:g}:{'n/a' if v is None else f'{v:.2f}x'}")
    return " ".join(parts)


def format_table(rows) -> str:
    """The rows as a terminal table (tabulate): one line per backend, kernel and shape."""
    from tabulate import tabulate

    if not rows:
        return "no results"
    headers = ["machine", "backend", "kernel", "variant", "shape", "dense_mm", "break-even", "speedup by sparsity"]
    body = [
        [r["machine"], r["backend"], r["kernel"], r["variant"] or "-", r["shape"], _fmt_time(r["dense_time"]), r["break_even"], _fmt_speedups(r)]
        for r in rows
    ]
    return tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True)


#: ``main``'s default for ``html_dir``: ``html/report`` beside the results folder
AUTO = "auto"


def default_html_dir(results_dir) -> Path:
    """``<parent of results_dir>/html/report``: ``results`` -> ``html/report``, where ``make html`` puts the asv site one level up."""
    return Path(results_dir).absolute().parent / "html" / "report"


def format_extras(summaries) -> str:
    """Terminal tables beside the break-even table: accuracy per backend, calibration and roofline where measured."""
    from tabulate import tabulate

    out = []
    acc = [[s["machine"], a["benchmark"], a["backend"], a["points"], f"{a['median_error']:.3g}", f"{a['max_error']:.3g}"]
           for s in summaries for a in s["accuracy"]]
    if acc:
        out.append("-- error against the float64 oracle (track_error)")
        out.append(tabulate(acc, headers=["machine", "benchmark", "backend", "points", "median", "max"], tablefmt="simple", disable_numparse=True))
    wl = [[s["machine"], w["benchmark"], ", ".join(f"{n}={p.get(n)}" for n in w["param_names"]), f"{v:.4g}", w["unit"]]
          for s in summaries for w in s["workloads"] for p, v in w["rows"]]
    if wl:
        out.append("-- workloads")
        out.append(tabulate(wl, headers=["machine", "benchmark", "params", "value", "unit"], tablefmt="simple", disable_numparse=True))
    cal = [[s["machine"], b] + [("n/a" if c.get(k) is None else f"{c[k]:.3g}") for k in ("copy_gbps", "triad_gbps", "gemm_gflops")]
           for s in summaries for b, c in s["calibration"].items()]
    if cal:
        out.append("-- calibration")
        out.append(tabulate(cal, headers=["machine", "backend", "copy GB/s", "triad GB/s", "GEMM GFLOP/s"], tablefmt="simple", disable_numparse=True))
    roof = [[s["machine"], r["backend"], r["kernel"], r["variant"] or "-", r["shape"],
             "n/a" if r["dense_fraction"] is None else f"{r['dense_fraction']:.0%}",
             " ".join(f"{x:g}:{'n/a' if f is None else f'{f:.0%}'}" for x, f in zip(r["sparsities"], r["fractions"]))]
            for s in summaries for r in s["roofline"]]
    if roof:
        out.append("-- fraction of the roofline (nominal op/byte model)")
        out.append(tabulate(roof, headers=["machine", "backend", "kernel", "variant", "shape", "dense_mm", "by sparsity"], tablefmt="simple", disable_numparse=True))
    return "\n".join(out)


def main(results_dir="results", machine=None, fmt="table", *, html_dir=AUTO, plots=True) -> int:
    """Print the break-even summary and write the HTML report; 0 on success, 1 when there is nothing to report.

    ``fmt``: ``"table"`` (tabulate tables: break-even, then accuracy, workloads,
    calibration and roofline where measured, then the report's path) or
    ``"json"`` (the break-even rows of ``summarize`` only, strict JSON).
    ``html_dir``: folder of the self-contained HTML report (``index.html``);
    ``AUTO`` (default): ``html/report`` beside the results folder
    (``default_html_dir``); ``None``: no HTML. ``plots=False`` leaves the
    time-vs-sparsity plots out (they are also left out, saying why, when
    matplotlib is missing).
    """
    if fmt not in ("table", "json"):
        print(f"sparsekit report: unknown format {fmt!r} (table or json)", file=sys.stderr)
        return 2
    root = Path(results_dir)
    if not root.is_dir():
        print(f"sparsekit report: no results directory {os.fspath(root)!r} (run `make bench` first)", file=sys.stderr)
        return 1
    if machine is not None and not (root / machine).is_dir():
        known = ", ".join(_machines(root)) or "none"
        print(f"sparsekit report: no results for machine {machine!r} in {os.fspath(root)!r} (machines: {known})", file=sys.stderr)
        return 1
    rows = summarize(root, machine)
    summaries = None
    if fmt == "table" or html_dir is not None:
        from . import report_data

        summaries = report_data.collect(root, machine)
    if fmt == "json":
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows))
        extras = format_extras(summaries)
        if extras:
            print(extras)
    if html_dir is not None:
        from . import report_html

        out = default_html_dir(root) if html_dir == AUTO else Path(html_dir)
        try:
            path = report_html.write(summaries, out, plots_enabled=None if plots else False)
        except OSError as e:
            print(f"sparsekit report: cannot write the HTML report to {os.fspath(out)!r}: {e}", file=sys.stderr)
            return 1
        if fmt == "table":
            print(f"HTML report: {os.fspath(path)}")
    if not rows:
        print(f"sparsekit report: no sparse/dense pairs found in {os.fspath(root)!r}", file=sys.stderr)
        return 1
    return 0

"""``sparsekit report``: the summary of every machine's asv results, in the terminal and as HTML.

Reads ``results/`` through ``sparsekit.report_data`` (break-even rows, accuracy,
workloads, calibration, roofline; ``sparsekit.results`` reads asv's files without
importing asv), prints the tables and writes the self-contained HTML report
(``sparsekit.report_html``). Never a backend, never asv.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from . import report_data, report_html, results
from .fmt import fmt_time
from .report_data import summarize  # noqa: F401 (public: the break-even rows)


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
        [r["machine"], r["backend"], r["kernel"], r["variant"] or "-", r["shape"], fmt_time(r["dense_time"]), r["break_even"], _fmt_speedups(r)]
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
        known = ", ".join(results.machines(root)) or "none"
        print(f"sparsekit report: no results for machine {machine!r} in {os.fspath(root)!r} (machines: {known})", file=sys.stderr)
        return 1
    rows = report_data.summarize(root, machine)
    summaries = None
    if fmt == "table" or html_dir is not None:
        summaries = report_data.collect(root, machine)
    if fmt == "json":
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows))
        extras = format_extras(summaries)
        if extras:
            print(extras)
    if html_dir is not None:
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

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


def _cell(e: dict | None) -> str:
    """A headline entry in one terminal cell: break-even, winners, speedups at 90% / 99%."""
    if e is None or e.get("missing"):
        return "not measured"
    at = e.get("speedup_at") or {}

    def x(v):
        return "-" if v is None else (f"{v:.1f}x" if v < 10 else f"{v:.0f}x")

    who = f"{e.get('sparse_backend_at_90') or '-'}/{e.get('dense_backend') or '-'}"
    roof = "" if e.get("roofline_at_90") is None else f" {e['roofline_at_90']:.0%}"
    return f"{e['break_even']:>8} {who} {x(at.get('0.9'))} {x(at.get('0.99'))}{roof}"


def format_headline(summaries, headlines, verdicts, notes=(), changes=None) -> str:
    """The answer at a glance, for the end of a terminal run (about 30 lines): the headline, the verdicts, notes."""
    from tabulate import tabulate

    from .report_html import headline_key

    machines = [s["machine"] for s in summaries]
    cells: dict = {}
    for m in machines:
        for e in headlines.get(m, []):
            cells.setdefault(headline_key(e), {})[m] = e
    rows = [[label + (f" {variant.removeprefix('dlmc:')}" if variant else "")] + [_cell(by.get(m)) for m in machines]
            for (label, variant), by in cells.items()]
    out = ["== where sparse beats dense: best sparse vs fastest dense of the machine "
           "(break-even  sparse/dense winners  speedup at 90%  at 99%  roofline at 90%)",
           tabulate(rows, headers=["operation"] + machines, tablefmt="simple", disable_numparse=True)]
    claims: dict = {}
    for m in machines:
        for v in verdicts.get(m, []):
            claims.setdefault(v.claim, {})[m] = v.verdict
    out.append("== verdicts (their numbers and rules: in the HTML page and in --json)")
    out.append(tabulate([[c] + [by.get(m, "not measured here") for m in machines] for c, by in claims.items()],
                        headers=["claim"] + machines, tablefmt="simple", disable_numparse=True))
    from .changes import summary_lines

    for m in machines:
        found = (changes or {}).get(m)
        if found:
            out.extend(summary_lines(found, limit=4))
    out.extend(f"note: {n}" for n in notes)
    return "\n".join(out)


def main(results_dir="results", machine=None, fmt="table", *, html_dir=AUTO, plots=True, all_tables=False) -> int:
    """Print the summary and write the HTML report; 0 on success, 1 when there is nothing to report.

    ``fmt``: ``"table"`` (terminal: with ``all_tables`` the full tables first -- each backend's
    break-even against its own dense_mm, accuracy, workloads, calibration, roofline -- then, last,
    the headline and the verdicts and the report's path) or ``"json"`` (one strict-JSON document:
    ``headline``, ``verdicts``, ``break_even`` rows, ``calibration_notes`` per machine; schema
    ``sparsekit/schemas/report.schema.json``). ``html_dir``: folder of the self-contained HTML report
    (``index.html``); ``AUTO`` (default): ``html/report`` beside the results folder
    (``default_html_dir``); ``None``: no HTML. ``plots=False`` leaves the plots out (they are also
    left out, saying why, when matplotlib is missing).
    """
    from . import headline as _headline
    from . import verdicts as _verdicts

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
    summaries = report_data.collect(root, machine)
    rows = [report_data.public_row(r) for s in summaries for r in s["rows"]]
    headlines = _headline.headline(summaries)
    verdicts = _verdicts.verdicts(summaries, headlines)
    notes = [f"{s['machine']}: {n}" for s in summaries for n in s.get("calibration_notes") or []]
    from .changes import changes_since

    changes = {s["machine"]: changes_since(root, s["machine"]) for s in summaries}
    if fmt == "json":
        print(json.dumps(json_document(summaries, headlines, verdicts, changes), indent=2))
    else:
        if all_tables:
            print(format_table(rows))
            extras = format_extras(summaries)
            if extras:
                print(extras)
            print()
        if summaries:
            print(format_headline(summaries, headlines, verdicts, notes, changes))
    if html_dir is not None:
        out = default_html_dir(root) if html_dir == AUTO else Path(html_dir)
        try:
            path = report_html.write(summaries, out, plots_enabled=None if plots else False, headlines=headlines,
                                     verdicts=verdicts, extra_sections=[report_html.changes_section(summaries, changes)])
        except OSError as e:
            print(f"sparsekit report: cannot write the HTML report to {os.fspath(out)!r}: {e}", file=sys.stderr)
            return 1
        if fmt == "table":
            print(f"HTML report: {os.fspath(path)}" + ("" if all_tables else "   (all tables: sparsekit report --all)"))
    if not rows:
        print(f"sparsekit report: no sparse/dense pairs found in {os.fspath(root)!r}", file=sys.stderr)
        return 1
    return 0


def _changes_json(found):
    if not found:
        return None
    return {**found, "changes": [c.as_dict() for c in found["changes"] if c.kind != "new"]}


def json_document(summaries, headlines, verdicts, changes=None) -> dict:
    """``sparsekit report --json``: strict JSON (NaN and infinities as null)."""
    from .runfile import clean

    return clean({
        "schema_version": 1,
        "machines": [{"machine": s["machine"], "info": s["info"], "run": s["run"],
                      "calibration_notes": s.get("calibration_notes") or [],
                      "headline": headlines.get(s["machine"], []),
                      "verdicts": [v.as_dict() for v in verdicts.get(s["machine"], [])],
                      "changes": _changes_json((changes or {}).get(s["machine"]))} for s in summaries],
        "break_even": [report_data.public_row(r) for s in summaries for r in s["rows"]],
    })

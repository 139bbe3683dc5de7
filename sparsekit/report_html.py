"""The self-contained HTML report: ``html/report/index.html``.

One file, nothing fetched: CSS inline, plots inline SVG (``sparsekit.plots``).
It opens from disk or from any static host (GitHub Pages) and links to the asv
site one folder up (``../index.html``), which links back to it
(``tools/asv_offline/rewrite.py``).

Per machine: the host and its run, the break-even table (kernel, variant and
shape x backend), speedups by sparsity, time-vs-sparsity plots, accuracy against
the oracle, workload figures (autoencoder MSE), calibration and roofline
fractions, library versions. With several machines an overview table puts their
break-even points side by side. Whatever a machine did not measure is shown as
"not measured" with how to measure it.
"""
from __future__ import annotations

import datetime as _dt
import html
import os
import re
from pathlib import Path

from . import plots
from .fmt import fmt_time

#: where the asv site is, relative to the report's folder
ASV_SITE = "../index.html"

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#243447;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:20px;margin:0}header a{color:#cfe3ff}
main{padding:8px 24px 40px;max-width:1400px}
h2{border-bottom:2px solid #243447;padding-bottom:3px;margin-top:32px}h3{margin:22px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px;background:#fff;font-size:13px}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef2f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.win{background:#e6f4ea}td.never{background:#fdecea}td.na{color:#888}
table.headline td,table.verdicts td{min-width:170px;font-size:12px;line-height:1.3}table.verdicts td:first-child{max-width:420px}
figure.roofline svg{width:640px}
.plots{display:flex;flex-wrap:wrap;gap:12px}
figure.plot{margin:0;background:#fff;border:1px solid #d0d7de;padding:4px}
figure.plot svg{width:520px;height:auto;display:block}
.note{color:#555;font-style:italic}.missing{color:#a15c00}
details{margin:6px 0}summary{cursor:pointer;color:#243447}
footer{color:#666;font-size:12px;padding:12px 24px;border-top:1px solid #ddd}
"""


def _e(x) -> str:
    return html.escape("" if x is None else str(x))


def _anchor(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-") or "x"


def _table(headers, body, cls="", num_cols=()) -> str:
    """``body``: rows of cells; a cell is text, or (text, css class)."""
    head = "" if headers is None else "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr></thead>"
    out = [f'<table class="{_e(cls)}">{head}<tbody>']
    for row in body:
        cells = []
        for j, cell in enumerate(row):
            raw = isinstance(cell, tuple) and len(cell) == 3 and cell[2]  # (html, class, True): markup built here
            text, klass = (cell[0], cell[1]) if isinstance(cell, tuple) else (cell, "")
            klass = " ".join(x for x in (klass, "num" if j in num_cols else "") if x)
            inner = text if raw else _e(text)
            cells.append(f'<td class="{klass}">{inner}</td>' if klass else f"<td>{inner}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _be_cell(row: dict | None):
    """A break-even cell, coloured: green where sparse wins somewhere in the sweep, red where it never does."""
    if row is None:
        return ("not measured", "na")
    text = row["break_even"]
    if row["dense_time"] is None:
        return (text, "na")
    if row["break_even_relation"] == ">":
        return (text, "never")
    return (text, "win")


def _variant(v: str) -> str:
    return v or "-"


def _group_key(r: dict) -> tuple:
    return (r["kernel"], r["variant"], r["shape"])


def _groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault(_group_key(r), []).append(r)
    return out


def _backends(rows) -> list[str]:
    seen: list[str] = []
    for r in rows:
        if str(r["backend"]) not in seen:
            seen.append(str(r["backend"]))
    return seen


def break_even_table(rows: list[dict]) -> str:
    backends = _backends(rows)
    body = []
    for (kernel, variant, shape), group in _groups(rows).items():
        by = {str(r["backend"]): r for r in group}
        body.append([kernel, _variant(variant), shape, group[0]["dense_shape"]] + [_be_cell(by.get(b)) for b in backends])
    return _table(["kernel", "variant", "shape", "dense_mm shape"] + backends, body, cls="break-even")


def speedup_table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        sp = " ".join(f"{s:g}:{'n/a' if v is None else f'{v:.2f}x'}" for s, v in zip(r["sparsities"], r["speedups"]))
        body.append([r["backend"], r["kernel"], _variant(r["variant"]), r["shape"], fmt_time(r["dense_time"]), r["break_even"], sp])
    return _table(["backend", "kernel", "variant", "shape", "dense_mm", "break-even", "speedup (dense/sparse) by sparsity"],
                  body, cls="speedups")


def overview_table(summaries: list[dict]) -> str:
    """Break-even points of every machine side by side: one row per backend, kernel, variant and shape."""
    machines = [s["machine"] for s in summaries]
    cells: dict[tuple, dict] = {}
    for s in summaries:
        for r in s["rows"]:
            cells.setdefault((r["kernel"], r["variant"], r["shape"], str(r["backend"])), {})[s["machine"]] = r
    body = [[k, _variant(v), sh, b] + [_be_cell(by.get(m)) for m in machines] for (k, v, sh, b), by in cells.items()]
    return _table(["kernel", "variant", "shape", "backend"] + machines, body, cls="overview")


def _plots(summary: dict, enabled: bool, reason: str) -> str:
    if not summary["rows"]:
        return '<p class="missing">No sparse/dense pairs measured: no plots.</p>'
    if not enabled:
        return f'<p class="missing">Plots left out: {_e(reason)}.</p>'
    figs = []
    for (kernel, variant, shape), group in _groups(summary["rows"]).items():
        title = f"{kernel} {variant} {shape}".replace("  ", " ")
        svg = plots.time_vs_sparsity_svg(f"{summary['machine']}: {title}", group)
        figs.append(f'<figure class="plot" data-kernel="{_e(kernel)}">{svg}</figure>')
    return ('<p class="note">Median time per call against sparsity (log scale), one line per backend; the dashed '
            'line of the same colour is that backend\'s dense_mm at the dense-equivalent shape.</p>'
            f'<div class="plots">{"".join(figs)}</div>')


def _pct(v) -> str:
    return "n/a" if v is None else f"{v:.0%}"


def _x(v) -> str:
    return "n/a" if v is None else (f"{v:.2f}x" if v < 10 else f"{v:.0f}x")


def headline_cell(e: dict | None):
    """One machine's answer for one operation, in three short lines: the break-even and who (sparse
    winner vs dense winner); the speedups at 90% / 99% and the roofline fraction; what it costs."""
    if e is None or e.get("missing"):
        return ("not measured", "na")
    line1 = f"<b>{_e(e['break_even'])}</b>"
    if e.get("dense_backend"):
        line1 += f" &middot; {_e(e.get('sparse_backend_at_90') or '-')} vs {_e(e['dense_backend'])}"
    at = e.get("speedup_at") or {}
    line2 = f"{_x(at.get('0.9'))} @90% &middot; {_x(at.get('0.99'))} @99%"
    if e.get("roofline_at_90") is not None:
        line2 += f" &middot; roofline {_pct(e['roofline_at_90'])} ({_e(e.get('roofline_level'))})"
    cost = []
    if e.get("error_at_90") is not None:
        cost.append(f"error {e['error_at_90']:.1e}")
    mse = e.get("autoencoder_mse")
    if mse:
        cost.append(f"AE MSE {mse['mse']:.2g} at {mse['weight_sparsity']:g} (dense {mse['dense_mse']:.2g})")
    klass = "na" if e.get("dense_time") is None else ("never" if e.get("break_even_relation") == ">" else "win")
    return ("<br>".join([line1, line2] + ([" &middot; ".join(cost)] if cost else [])), klass, True)


def headline_key(e: dict) -> tuple[str, str]:
    """The row an entry belongs in: its operation, and the matrix for real masks (one row each)."""
    return (e["label"], e.get("variant", "") if e.get("operation") == "dlmc" else "")


def headline_table(summaries: list[dict], headlines: dict) -> str:
    """Rows: operations; columns: machines; cells: ``headline_cell``."""
    machines = [s["machine"] for s in summaries]
    cells: dict = {}  # insertion order: operation order of the first machine that has it
    for m in machines:
        for e in headlines.get(m, []):
            cells.setdefault(headline_key(e), {})[m] = e
    body = []
    for (label, variant), by in cells.items():
        shapes = sorted({e.get("shape") for e in by.values() if e.get("shape")})
        name = _e(label + (f" ({variant.removeprefix('dlmc:')})" if variant else ""))
        body.append([(f"{name}<br><small>{_e(', '.join(shapes))}</small>", "", True)]
                    + [headline_cell(by.get(m)) for m in machines])
    return _table(["operation (shape)"] + machines, body, cls="headline")


def verdicts_table(summaries: list[dict], verdicts: dict) -> str:
    machines = [s["machine"] for s in summaries]
    claims: dict = {}
    for m in machines:
        for v in verdicts.get(m, []):
            claims.setdefault(v.key, {"claim": v.claim, "rule": v.rule, "by": {}})["by"][m] = v
    body = []
    for key, c in claims.items():
        row = [(f"<b>{_e(c['claim'])}</b><br><small>{_e(c['rule'])}</small>", "", True)]
        for m in machines:
            v = c["by"].get(m)
            if v is None:
                row.append(("not measured here", "na"))
                continue
            klass = {"holds": "win", "does not hold": "never", "not measured here": "na"}.get(v.verdict, "")
            commit = (v.numbers.get("commit") or "")[:8]
            link = f' <a href="#{_e(v.plot)}-{_anchor(m)}">data</a>' if v.plot else ""
            row.append((f"<b>{_e(v.verdict)}</b><br>{_e(v.because)}<br><small>commit {_e(commit)}{link}</small>", klass, True))
        body.append(row)
    return _table(["claim"] + machines, body, cls="verdicts")


def changes_section(summaries: list[dict], changes: dict) -> str:
    """``Changed since <commit>`` per machine: regressions first, each confirmed, noise, or not re-measured."""
    from .changes import summary_lines

    parts = ['<h2 id="changes">Changed since the previous run</h2>']
    for s in summaries:
        found = (changes or {}).get(s["machine"])
        a = _anchor(s["machine"])
        if not found:
            parts.append(f'<p class="missing" id="changes-{a}">{_e(s["machine"])}: one commit measured, nothing to compare.</p>')
            continue
        lines = summary_lines(found, limit=40)
        parts.append(f'<details id="changes-{a}" open><summary>{_e(lines[0].strip("= "))}</summary><pre>'
                     + _e("\n".join(lines[1:])) + "</pre></details>")
    parts.append('<p class="note">asv\'s comparison of the two newest commits of each machine: time ratio beyond the '
                 "factor and significant by asv's statistical test (else noise); track_error up by more than 2x and "
                 "1e-6 is an accuracy loss; a flagged change re-measured with both commits side by side is marked "
                 "confirmed or noise (<code>sparsekit compare --confirm</code>, run by <code>make bench</code>).</p>")
    return "".join(parts)


def _roofline_plot(summary: dict, enabled: bool, reason: str) -> str:
    from .report_data import roofline_points

    ceil = summary.get("_ceilings")
    a = _anchor(summary["machine"])
    if ceil is None:
        return f'<p class="missing" id="roofline-{a}">{_e(summary["machine"])}: no calibration, no roofline (run <code>sparsekit calibrate</code>).</p>'
    if not enabled:
        return f'<p class="missing" id="roofline-{a}">Roofline plot left out: {_e(reason)}.</p>'
    svg = plots.roofline_svg(f"{summary['machine']}: roofline (sparse kernels at 90%, dense baselines)", ceil,
                             roofline_points(summary))
    return f'<figure class="plot roofline" id="roofline-{a}" data-machine="{_e(summary["machine"])}">{svg}</figure>'


def _sci(v) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def _accuracy(summary: dict) -> str:
    parts = []
    acc = summary["accuracy"]
    if acc:
        body = [[a["benchmark"], a["backend"], a["points"], _sci(a["median_error"]), _sci(a["max_error"])] for a in acc]
        parts.append(_table(["benchmark", "backend", "points", "median error", "max error"], body, cls="accuracy", num_cols=(2, 3, 4)))
        parts.append('<p class="note">Error against the float64 oracle: max|Y - Yref| / max|Yref| '
                     "(lif: fraction of raster entries that differ), from the benchmarks' track_error.</p>")
    else:
        parts.append('<p class="missing">Error against the oracle: not measured.</p>')
    wl = summary["workloads"]
    if wl:
        for w in wl:
            body = [[_e_param(p.get(n)) for n in w["param_names"]] + [_sci(v)] for p, v in w["rows"]]
            parts.append(f"<h4>{_e(w['benchmark'])}</h4>")
            parts.append(_table(list(w["param_names"]) + [w["unit"] or "value"], body, cls="workload",
                                num_cols=(len(w["param_names"]),)))
    else:
        parts.append('<p class="missing">Autoencoder MSE: not measured on this machine '
                     "(benchmarks/bench_workloads.py: <code>bench_workloads.Autoencoder.track_mse</code>).</p>")
    return "".join(parts)


def _e_param(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _roofline(summary: dict) -> str:
    cal = summary["calibration"]
    if not cal:
        return ('<p class="missing">Calibration: not measured on this machine (run <code>sparsekit calibrate</code>); '
                "no roofline fractions.</p>")
    body = [[b, _sci(c.get("read_gbps")), _sci(c.get("copy_gbps")), _sci(c.get("triad_gbps")), _sci(c.get("gemm_gflops"))]
            for b, c in cal.items()]
    parts = [_table(["backend", "read GB/s", "copy GB/s", "triad GB/s", "GEMM GFLOP/s"], body, cls="calibration",
                    num_cols=(1, 2, 3, 4))]
    ceil = summary.get("_ceilings")
    if ceil is not None:
        lv = [[x.name, "-" if x.capacity == float("inf") else f"{x.capacity / 2**20:.3g} MiB", _sci(x.read_gbps)]
              for x in ceil.levels]
        parts.append("<p>The machine's limits: read bandwidth by memory level (a problem is held against the level "
                     f"its footprint fits in) and peak {_sci(ceil.peak_gflops)} GFLOP/s (the best GEMM of any backend).</p>")
        parts.append(_table(["level", "capacity", "read GB/s"], lv, cls="levels", num_cols=(2,)))
    for note in summary.get("calibration_notes") or []:
        parts.append(f'<p class="missing">{_e(note)}</p>')
    if summary["roofline"]:
        rbody = []
        for r in summary["roofline"]:
            fr = " ".join(f"{s:g}:{'n/a' if f is None else f'{f:.0%}'}" for s, f in zip(r["sparsities"], r["fractions"]))
            rbody.append([r["backend"], r["kernel"], _variant(r["variant"]), r["shape"],
                          "n/a" if r["dense_fraction"] is None else f"{r['dense_fraction']:.0%}", fr])
        parts.append(_table(["backend", "kernel", "variant", "shape", "dense_mm", "fraction of roofline by sparsity"], rbody, cls="roofline"))
        parts.append('<p class="note">max(FLOPs / peak, compulsory bytes / bandwidth of the level the footprint fits in) / '
                     "time: 100% is the roofline. Nominal model of each kernel (its spec's nominal_model): nnz = (1 - sparsity) "
                     "x size, stored values and int32 indices, every operand read once.</p>")
    else:
        parts.append('<p class="missing">No roofline fractions: no calibrated backend has a modelled kernel.</p>')
    return "".join(parts)


def _facts(summary: dict) -> str:
    info, run = summary["info"], summary["run"]
    ram = info.get("ram")
    try:
        ram = f"{int(ram) / 2**30:.1f} GiB"
    except (TypeError, ValueError):
        pass
    facts = [("machine", summary["machine"]), ("CPU", info.get("cpu")), ("cores", info.get("num_cpu")),
             ("arch", info.get("arch")), ("OS", info.get("os")), ("RAM", ram),
             ("commit", (run["commit"] or "")[:12]), ("commit date", run["date"]), ("run started", run["started"]),
             ("environment", run["env"]), ("Python", run["python"]), ("result file", run["file"]),
             ("result files", run["runs"])]
    facts += [(f"requirement {k}", v) for k, v in sorted(run["requirements"].items())]
    out = _table(None, [[k, "n/a" if v is None else v] for k, v in facts], cls="facts")
    if summary["versions"]:
        out += "<details><summary>library versions of the run</summary>"
        out += _table(["package", "version"], [[n, v] for n, v in summary["versions"]], cls="versions") + "</details>"
    else:
        out += ('<p class="missing">Library versions: not recorded for this run (<code>make bench</code> writes '
                f"results/{_e(summary['machine'])}/versions.txt).</p>")
    return out


def render(summaries: list[dict], *, asv_site: str = ASV_SITE, asv_present: bool = True, plots_enabled=None,
           headlines: dict | None = None, verdicts: dict | None = None, extra_sections: list[str] = ()) -> str:
    """The whole page as one string: the headline, the verdicts and the roofline plots first, then
    each machine in detail. ``headlines``/``verdicts`` default to those computed from ``summaries``;
    ``extra_sections``: HTML put after the verdicts (the changes since the previous run)."""
    from . import __version__
    from . import headline as _headline
    from . import verdicts as _verdicts

    if headlines is None:
        headlines = _headline.headline(summaries)
    if verdicts is None:
        verdicts = _verdicts.verdicts(summaries, headlines)

    if plots_enabled is None:
        plots_enabled, reason = plots.available()
    else:
        reason = "" if plots_enabled else "plots disabled"
    nav = " ".join(f'<a href="#machine-{_anchor(s["machine"])}">{_e(s["machine"])}</a>' for s in summaries)
    asv_note = "" if asv_present else ' <span class="missing">(not published yet: <code>make html</code>)</span>'
    body = [f'<header><h1>sparsekit report</h1><a id="asv-link" href="{_e(asv_site)}">asv site</a>{asv_note}'
            f"<span>machines: {nav or 'none'}</span></header><main>"]
    if not summaries:
        body.append('<p class="missing">No results found: run <code>make bench</code>.</p>')
    else:
        body.append('<h2 id="headline">Where sparse beats dense</h2>')
        body.append("<p>Per machine and operation: the sparsity from which the <b>best sparse implementation</b> beats "
                    "the <b>fastest dense product on that machine</b> (any backend), which backends those are, the speedup "
                    "at 90% and 99% sparsity, the sparse winner's fraction of the machine's roofline at 90% and the memory "
                    "level it is held against, its error against the float64 oracle, and for weight sparsity the "
                    "autoencoder's held-out MSE at the nearest pruning level. <code>&lt;=s</code>: sparse already wins at "
                    "the lowest level measured; <code>&gt;s</code>: it never wins up to the highest. Newest result file of "
                    "each machine.</p>")
        body.append(headline_table(summaries, headlines))
        body.append('<h2 id="verdicts">Verdicts on the claims the field repeats</h2>')
        body.append("<p>Computed from the results above, never written by hand; each states its rule.</p>")
        body.append(verdicts_table(summaries, verdicts))
        body.extend(extra_sections)
        body.append('<h2 id="roofline">Roofline</h2><div class="plots">'
                    + "".join(_roofline_plot(s, plots_enabled, reason) for s in summaries) + "</div>")
        body.append('<h2 id="own-dense">Each backend against its own dense_mm</h2>'
                    "<p>Break-even of each backend's sparse kernel against <i>the same backend's</i> <code>dense_mm</code> "
                    "(a backend with a slow dense product looks good here: the headline above compares against the fastest "
                    "dense product instead).</p>")
    if len(summaries) > 1:
        body.append('<h3 id="overview">Own-dense break-even across machines</h3>' + overview_table(summaries))
    for s in summaries:
        a = _anchor(s["machine"])
        body.append(f'<section class="machine" id="machine-{a}"><h2>{_e(s["machine"])}</h2>')
        body.append(_facts(s))
        body.append("<h3>Break-even sparsity against the same backend's dense_mm</h3>")
        body.append(break_even_table(s["rows"]) if s["rows"] else '<p class="missing">No sparse/dense pairs measured.</p>')
        if s["rows"]:
            body.append("<details><summary>speedup by sparsity</summary>" + speedup_table(s["rows"]) + "</details>")
        body.append("<h3>Time against sparsity</h3>" + _plots(s, plots_enabled, reason))
        body.append(f'<h3 id="workloads-{a}">Accuracy and workloads</h3>' + _accuracy(s))
        body.append("<h3>Calibration and roofline</h3>" + _roofline(s))
        body.append("</section>")
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body.append(f"</main><footer>sparsekit {_e(__version__)} &middot; written {now} by <code>sparsekit report</code> "
                "from results/&lt;machine&gt;/ (asv result files)</footer>")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>sparsekit report</title><style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n")


def write(summaries: list[dict], out_dir, *, asv_site: str = ASV_SITE, plots_enabled=None, **sections) -> Path:
    """Write ``out_dir/index.html`` (folders created); returns its path. ``sections``: ``render``'s
    ``headlines``, ``verdicts`` and ``extra_sections``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    asv_present = (out / asv_site).resolve().is_file() if not re.match(r"^[a-z]+://", asv_site) else True
    page = render(summaries, asv_site=asv_site, asv_present=asv_present, plots_enabled=plots_enabled, **sections)
    path = out / "index.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)  # a reader (the browser test, a web server) never sees half a page
    return path

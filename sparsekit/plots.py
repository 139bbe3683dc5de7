"""Time-vs-sparsity plots of the HTML report, as inline SVG text (matplotlib, Agg).

matplotlib is the ``report`` extra: ``available()`` says whether it can be
imported and why not, and the report is then written without plots, saying so.
Text stays text in the SVG (``svg.fonttype: none``): smaller files, and titles
a browser test can find in the DOM.
"""
from __future__ import annotations

import io
import math

#: one colour per backend, fixed so a backend looks the same in every plot
_COLOURS = {"numpy": "#1f77b4", "cpu": "#ff7f0e", "opencl": "#2ca02c", "cupy": "#d62728", "lava": "#9467bd",
            "lava-fixed": "#8c564b", "torch": "#e377c2", "scipy": "#17becf"}
_EXTRA = ("#7f7f7f", "#bcbd22", "#aec7e8")


def available() -> tuple[bool, str]:
    """(True, "") when matplotlib imports, else (False, the reason)."""
    try:
        import matplotlib  # noqa: F401
    except Exception as e:  # ImportError, or a broken install
        return False, f"matplotlib is not installed ({type(e).__name__}: {e}); install the 'report' extra for plots"
    return True, ""


def colour(backend: str, i: int = 0) -> str:
    return _COLOURS.get(str(backend), _EXTRA[i % len(_EXTRA)])


def time_vs_sparsity_svg(title: str, rows: list[dict]) -> str:
    """SVG of median time against sparsity, log scale, one line per backend.

    ``rows`` are break-even rows (``sparsekit.report.summarize``) of one kernel,
    variant and shape. Each backend's ``dense_mm`` time at the dense-equivalent
    shape is a dashed horizontal line of the same colour: where a backend's line
    drops below its dashed line, sparse beats dense on that backend.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    fig = Figure(figsize=(5.2, 3.3), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    plotted = False
    for i, r in enumerate(rows):
        c = colour(r["backend"], i)
        pts = [(s, t) for s, t in zip(r["sparsities"], r["times"]) if t is not None and t > 0]
        if pts:
            ax.plot([s for s, _ in pts], [t for _, t in pts], marker="o", ms=3.5, lw=1.5, color=c, label=str(r["backend"]))
            plotted = True
        td = r.get("dense_time")
        if td is not None and td > 0 and math.isfinite(td):
            ax.axhline(td, color=c, ls="--", lw=1.0, alpha=0.8, label=f"{r['backend']} dense_mm")
            plotted = True
    ax.set_yscale("log")
    ax.set_xlabel("sparsity")
    ax.set_ylabel("time per call (s)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.25)
    if plotted:
        ax.legend(fontsize=7, ncol=2, loc="best", frameon=False)
    fig.tight_layout()
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "sparsekit"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})  # reproducible output
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]  # drop the XML prolog and doctype: the SVG is inlined in HTML


def roofline_svg(title: str, ceilings, points: list[dict]) -> str:
    """SVG of a roofline: arithmetic intensity (FLOPs per compulsory byte) against achieved GFLOP/s,
    log-log, the machine's measured ceilings (each memory level's bandwidth line up to the compute
    peak) and one point per kernel and backend (``points``: dicts with ``backend``, ``label``,
    ``intensity``, ``gflops``, ``level``; the marker is the level the point is held against)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    pts = [p for p in points if p.get("intensity") and p.get("gflops") and p["intensity"] > 0 and p["gflops"] > 0]
    xs = [p["intensity"] for p in pts] or [0.1, 10.0]
    lo, hi = min(xs) / 4, max(xs) * 4
    peak = ceilings.peak_gflops if ceilings is not None else None
    styles = ("-", "--", "-.", ":")
    for i, level in enumerate(lv for lv in (ceilings.levels if ceilings is not None else ()) if lv.read_gbps):
        xline = [lo, hi] if not peak else [lo, min(hi, peak / level.read_gbps)]
        ax.plot(xline, [x * level.read_gbps for x in xline], color="#444", ls=styles[i % len(styles)], lw=1.0,
                label=f"{level.name} {level.read_gbps:.0f} GB/s")
    if peak:
        ax.axhline(peak, color="#000", lw=1.2, label=f"peak {peak:.0f} GFLOP/s")
    markers = {"L1d": "v", "L2": "s", "LLC": "D", "DRAM": "o"}
    seen = set()
    for i, p in enumerate(pts):
        b = str(p["backend"])
        ax.scatter([p["intensity"]], [p["gflops"]], color=colour(b, i), marker=markers.get(p.get("level"), "o"), s=22,
                   label=b if b not in seen else None, zorder=3)
        seen.add(b)
        ax.annotate(p["label"], (p["intensity"], p["gflops"]), fontsize=5.5, xytext=(3, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("arithmetic intensity (FLOP per compulsory byte)")
    ax.set_ylabel("achieved GFLOP/s")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=6.5, ncol=2, loc="lower right", frameon=False)
    fig.tight_layout()
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "sparsekit"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]

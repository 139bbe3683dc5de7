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
            "lava-fixed": "#8c564b", "torch": "#e377c2"}
_EXTRA = ("#7f7f7f", "#bcbd22", "#17becf")


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

"""The ``cpu`` backend's inspector: look at the operand and the machine, pick a strategy.

``*_facts`` measure the operand (row-length distribution and how evenly a row
partition would share the work, column locality, nonzeros per row and panel,
whether selected rows are equally spaced) next to the machine's figures
(``machine.Machine``: cache sizes, vector width, registers, threads). ``choose_*``
apply the rules below and return a ``Choice``: the strategy, its parameters, the
reason in words, and the shortlist a measurement should settle when a fact sits
near a threshold (``candidates``; one entry: the model is sure). ``params_for``
gives any applicable strategy's parameters, for tuning and for forcing one in tests.

Rules (thresholds are ratios to the machine's own figures, not host constants):

* SpMV (n = 1) is bound by the gathers into x (Zen 4/5 cores do ~4 G gathered
  nonzeros/s from L1, half that from L2). From ``SPMV_BITMAP_MIN_DENSITY`` on, where
  the machine has AVX-512, a bitmap needs no gather at all (one bit per column, x
  picked by a register compress: 6.4 G nonzeros/s on one Zen 5 core at density 0.5,
  1.26x the gathers at 0.2, 0.43x at 0.1). Otherwise column panels keep each panel's slice of x in
  two thirds of the L1d; they pay once rows hold ``SPMV_PANEL_MIN_ROW`` nonzeros per
  panel (every panel re-reads the row pointers and adds into y again).
* SpMM (n > 1) runs register tiles ``S`` columns wide (``_tiles.strip_plan``: half the
  vector registers). Column panels of ``panel_rows`` rows keep the rows of X they
  select in a quarter of L2; they pay when X outgrows half of L2 and rows keep
  ``SPMM_PANEL_MIN_ROW`` nonzeros per panel (each panel reloads and stores its tiles).
* Column locality: where rows span only a small part of the columns on average
  (``col_span``: banded or clustered masks), the part of x / X a row touches is what
  must fit the cache, and panels would only add passes.
* Skew: when even the best row partition (``parts`` ranges of equal nonzeros + rows)
  leaves one range ``SPLIT_IMBALANCE`` x the mean work (a few very long rows), the
  nonzeros are split instead (merge path), on more than one thread.
* SDDMM: each row of A stays in registers across its mask nonzeros; B^T in column
  panels that stay in L2 when it outgrows half of L2 (``SDDMM_PANEL_MIN_ROW``).
* GATHER_MM: n = 1 is a set of dot products (``gather.dot``). Otherwise the rows are
  read in place by register tiles four rows high, never copied, where the machine
  has AVX-512's 32 wide registers (here they run ~2x OpenBLAS's AVX2 kernel); with
  narrower vectors a BLAS product wins the compute, so BLAS reads equally spaced
  rows in place through a strided view, or a copy of the rows otherwise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import _tiles as T
from ._kernels import balanced_bounds

#: SpMV column panels pay from this many nonzeros per row and panel (Zen 4: 41 lost 8%, 82 won 1.23x)
SPMV_PANEL_MIN_ROW = 64
#: SpMV as a bitmap from this density on (4096^2, one Zen 5 core, bitmap against gathers:
#: 0.5 -> 1.6x, 0.3 -> 1.45x, 0.2 -> 1.26x, 0.1 -> 0.43x; the crossover lies between 0.1
#: and 0.2, and tuning settles the band around it)
SPMV_BITMAP_MIN_DENSITY = 0.18
#: SpMM column panels pay from this many nonzeros per row and panel (a tile reload per panel)
SPMM_PANEL_MIN_ROW = 8
#: SDDMM panels of B^T pay from this many mask nonzeros per row and panel (Zen 5: 102 won 1.18x)
SDDMM_PANEL_MIN_ROW = 8
#: nonzero split when the best row partition's largest range holds this x the mean work
SPLIT_IMBALANCE = 1.25
#: row ranges per thread (prange hands each thread an equal count of them)
PARTS_PER_THREAD = 4


@dataclass(frozen=True)
class Choice:
    name: str
    params: dict
    reason: str
    #: strategies a measurement should decide between (the model's pick first); one: sure
    candidates: tuple = ()
    facts: dict = field(default_factory=dict)


def _pow2_floor(v: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(v, 1)))))


def _band(value, lo, hi) -> bool:
    return lo <= value <= hi


# -- CSR products ---------------------------------------------------------------------------------


def csr_facts(indptr, indices, shape, n: int, itemsize: int, machine, data=None) -> dict:
    """What the rules need to know about W (CSR) @ X with X of n columns (``data``: W's
    values, to know whether they are all finite)."""
    m, k = shape
    ptr = np.asarray(indptr, dtype=np.int64)
    lengths = np.diff(ptr)
    nnz = int(ptr[-1]) if m else 0
    parts = PARTS_PER_THREAD * machine.threads
    facts = {"m": m, "k": k, "n": n, "nnz": nnz, "itemsize": itemsize,
             "density": nnz / max(m * k, 1), "row_mean": nnz / max(m, 1),
             "row_max": int(lengths.max()) if m else 0,
             "row_cv": float(lengths.std() / lengths.mean()) if m and nnz else 0.0,
             "empty_rows": int((lengths == 0).sum()), "parts": parts}
    # how evenly the best row partition shares the work (nonzeros + 2 per row, as the kernels' bounds)
    bounds = balanced_bounds(ptr, parts, row_cost=2.0)
    work = np.diff(ptr[bounds]) + 2.0 * np.diff(bounds)
    facts["imbalance"] = float(work.max() / work.mean()) if work.sum() > 0 else 1.0
    # column locality: the span of columns a row covers, as a fraction of k
    nonempty = lengths > 0
    if nnz and nonempty.any():
        starts = ptr[:-1][nonempty]
        first = np.asarray(indices)[starts].astype(np.int64)
        last = np.asarray(indices)[ptr[1:][nonempty] - 1].astype(np.int64)
        facts["col_span"] = float(np.mean(last - first + 1) / max(k, 1))
    else:
        facts["col_span"] = 0.0
    facts["x_bytes"] = k * n * itemsize
    facts["finite"] = bool(data is None or np.isfinite(data).all())
    if n == 1:
        # the largest power of two within 2/3 of the L1d (the rest: the streams of W):
        # 16384 x 16384 at 10%, 2 Zen 5 cores (48 KiB L1d), best of 50 calls: 32 KiB
        # slices 3.35 ms, 24 KiB 3.45, 16 KiB 3.59, 48 KiB 6.23
        width = _pow2_floor(machine.l1d * 2 / 3) // itemsize
        facts["panel_width"] = width
        facts["row_per_panel"] = facts["row_mean"] / max(1, -(-k // width)) if k > width else facts["row_mean"]
    else:
        rows = max(16, _pow2_floor(machine.l2 / 4 / (n * itemsize)))
        facts["panel_rows"] = rows
        facts["row_per_panel"] = facts["row_mean"] / max(1, -(-k // rows)) if k > rows else facts["row_mean"]
    return facts


def _tile_params(facts, machine) -> dict:
    lanes = machine.lanes(facts["itemsize"])
    S, U = T.strip_plan(facts["n"], lanes, machine.vector_registers)
    return {"S": S, "U": U, "L": lanes}


def choose_csr(facts: dict, machine) -> Choice:
    """The strategy for W (CSR) @ X (``csr_facts``)."""
    n, threads = facts["n"], machine.threads
    imb = facts["imbalance"]
    kind = "spmv" if n == 1 else "spmm"
    cands = []
    if threads > 1 and imb > SPLIT_IMBALANCE:
        pick = f"{kind}.split"
        why = (f"the best row partition leaves one of {facts['parts']} ranges {imb:.2f}x the mean work "
               f"(longest row {facts['row_max']} nonzeros, mean {facts['row_mean']:.0f}): split by nonzeros")
    elif n == 1 and not applicable("spmv.bitmap", facts, machine) and facts["density"] >= SPMV_BITMAP_MIN_DENSITY:
        pick = "spmv.bitmap"
        why = (f"density {facts['density']:.2f} >= {SPMV_BITMAP_MIN_DENSITY}: a bit per column and the values packed, "
               "x picked by AVX-512 compress instead of a gather per nonzero")
    elif n == 1:
        pick, why = _spmv_panels_or_rows(facts, machine)
    else:
        pick, why = _spmm_panels_or_rows(facts, machine)
    cands.append(pick)
    # near a threshold the model cannot decide: the alternatives a measurement should try
    if threads > 1 and _band(imb, 1.1, 1.5):
        cands.append(f"{kind}.split")
    if n == 1 and facts["k"] > facts["panel_width"] and _band(facts["row_per_panel"], SPMV_PANEL_MIN_ROW / 2, SPMV_PANEL_MIN_ROW * 2):
        cands += ["spmv.panels", "spmv.rows"]
    if n == 1 and not applicable("spmv.bitmap", facts, machine) and _band(
            facts["density"], SPMV_BITMAP_MIN_DENSITY / 2, SPMV_BITMAP_MIN_DENSITY * 2):
        cands += ["spmv.bitmap", _spmv_panels_or_rows(facts, machine)[0]]
    if n > 1 and facts["k"] > facts["panel_rows"] and (
            _band(facts["x_bytes"], machine.l2 / 4, 2 * machine.l2)
            or _band(facts["row_per_panel"], SPMM_PANEL_MIN_ROW / 2, SPMM_PANEL_MIN_ROW * 2)):
        cands += ["spmm.panels", "spmm.rows"]
    cands = tuple(dict.fromkeys(cands))
    return Choice(pick, params_for(pick, facts, machine), why, cands, facts)


def _spmv_panels_or_rows(facts, machine):
    width, rpp = facts["panel_width"], facts["row_per_panel"]
    if facts["k"] <= width:
        return "spmv.rows", f"x ({facts['x_bytes']} B) fits a panel of the L1d ({machine.l1d} B) whole"
    if facts["col_span"] * facts["x_bytes"] <= width * facts["itemsize"]:
        return "spmv.rows", (f"a row spans {facts['col_span']:.1%} of x's columns on average, which fits a panel "
                             "of the L1d: the columns are local, panels would only add passes")
    if rpp >= SPMV_PANEL_MIN_ROW:
        return "spmv.panels", (f"x outgrows the L1d; panels of {width} columns keep its slice in L1 "
                               f"with {rpp:.0f} nonzeros per row and panel (>= {SPMV_PANEL_MIN_ROW})")
    return "spmv.rows", (f"x outgrows the L1d, but panels of {width} columns would leave "
                         f"{rpp:.0f} nonzeros per row and panel (< {SPMV_PANEL_MIN_ROW})")


def _spmm_panels_or_rows(facts, machine):
    rows, rpp, xb = facts["panel_rows"], facts["row_per_panel"], facts["x_bytes"]
    if xb <= machine.l2 / 2:
        return "spmm.rows", f"X ({xb} B) fits half the L2 ({machine.l2} B): register tiles over whole rows"
    if facts["col_span"] * xb <= machine.l2 / 2:
        return "spmm.rows", (f"a row spans {facts['col_span']:.1%} of X's rows on average, which fit half the L2: "
                             "the columns are local, panels would only add passes")
    if facts["k"] > rows and rpp >= SPMM_PANEL_MIN_ROW:
        return "spmm.panels", (f"X ({xb} B) outgrows half the L2; panels of {rows} rows of X keep them in L2 "
                               f"with {rpp:.0f} nonzeros per row and panel (>= {SPMM_PANEL_MIN_ROW})")
    return "spmm.rows", (f"X ({xb} B) outgrows half the L2, but panels of {rows} rows would leave "
                         f"{rpp:.1f} nonzeros per row and panel (< {SPMM_PANEL_MIN_ROW})")


# -- GATHER_MM -----------------------------------------------------------------------------------


def gather_facts(rows, shape, n: int, itemsize: int, machine) -> dict:
    m, k = shape
    r = np.asarray(rows, dtype=np.int64)
    steps = np.diff(r)
    stride = int(steps[0]) if len(steps) and steps[0] > 0 and np.all(steps == steps[0]) else 0
    return {"m": m, "k": k, "n": n, "rows": len(r), "itemsize": itemsize, "stride": stride,
            "selected_bytes": len(r) * k * itemsize}


def choose_gather(facts: dict, machine) -> Choice:
    n, stride = facts["n"], facts["stride"]
    if n == 1:
        return Choice("gather.dot", {}, "one column: a dot product per selected row, eight rows in flight",
                      ("gather.dot",), facts)
    blas = "gather.strided_blas" if stride else "gather.copy_blas"
    if machine.vector_bytes >= 64:
        pick = "gather.tiles"
        why = (f"{machine.vector_registers} vector registers of {machine.vector_bytes} B: 4-row register tiles "
               f"read the {facts['rows']} selected rows in place (no copy)")
    else:
        pick = blas
        why = ("vectors narrower than AVX-512's: BLAS computes faster than the register tiles, "
               + ("and reads the equally spaced rows in place" if stride else "on a copy of the selected rows"))
    cands = tuple(dict.fromkeys([pick, "gather.tiles", blas]))
    return Choice(pick, params_for(pick, facts, machine), why, cands, facts)


# -- SDDMM ----------------------------------------------------------------------------------------


def sddmm_facts(indptr, shape, k: int, itemsize: int, machine) -> dict:
    m, n = shape
    nnz = int(indptr[-1]) if m else 0
    rows = max(16, _pow2_floor(machine.l2 / 4 / max(k * itemsize, 1)))
    return {"m": m, "k": k, "n": n, "nnz": nnz, "itemsize": itemsize, "density": nnz / max(m * n, 1),
            "bt_bytes": n * k * itemsize, "panel_rows": rows,
            "row_per_panel": nnz / max(m, 1) / max(1, -(-n // rows))}


def choose_sddmm(facts: dict, machine) -> Choice:
    """A's row in registers always; B^T in column panels when it outgrows half of L2 and rows
    keep ``SDDMM_PANEL_MIN_ROW`` mask nonzeros per panel (a panel reloads A's row)."""
    bt, rpp = facts["bt_bytes"], facts["row_per_panel"]
    if bt > machine.l2 / 2 and rpp >= SDDMM_PANEL_MIN_ROW:
        pick, why = "sddmm.panels", (f"B^T ({bt} B) outgrows half the L2: panels of {facts['panel_rows']} of its rows "
                                     f"stay in L2, {rpp:.0f} mask nonzeros per row and panel")
    else:
        pick, why = "sddmm.tiles", (f"B^T ({bt} B) fits half the L2" if bt <= machine.l2 / 2 else
                                    f"panels would leave {rpp:.1f} mask nonzeros per row and panel") + \
            ": A's row in registers against whole rows"
    cands = [pick]
    if _band(bt, machine.l2 / 4, 2 * machine.l2) or _band(rpp, SDDMM_PANEL_MIN_ROW / 2, SDDMM_PANEL_MIN_ROW * 2):
        cands += ["sddmm.panels", "sddmm.tiles"]
    return Choice(pick, params_for(pick, facts, machine), why, tuple(dict.fromkeys(cands)), facts)


# -- parameters of any strategy -------------------------------------------------------------------


def params_for(name: str, facts: dict, machine) -> dict:
    """The parameters strategy ``name`` runs with on this operand and machine."""
    if name in ("spmm.rows", "spmm.split"):
        return _tile_params(facts, machine)
    if name == "spmm.panels":
        return {**_tile_params(facts, machine), "panel_rows": facts["panel_rows"]}
    if name == "spmv.panels":
        return {"panel_width": facts["panel_width"]}
    if name == "spmv.bitmap":
        return {"L": machine.lanes(facts["itemsize"])}
    if name == "gather.tiles":
        lanes = machine.lanes(facts["itemsize"])
        # four rows x S columns of accumulators in half the registers, S no wider than X
        S, _ = T.strip_plan(facts["n"], lanes, machine.vector_registers // 4)
        return {"S": S, "L": lanes}
    if name == "gather.strided_blas":
        return {"stride": facts["stride"]}
    if name in ("sddmm.tiles", "sddmm.panels"):
        lanes = machine.lanes(facts["itemsize"])
        S, _ = T.strip_plan(facts["k"], lanes, machine.vector_registers)
        return {"S": S, "L": lanes, **({"panel_rows": facts["panel_rows"]} if name == "sddmm.panels" else {})}
    return {}


def applicable(name: str, facts: dict, machine=None) -> str | None:
    """Why strategy ``name`` cannot run this operand (on ``machine``), or None when it can."""
    n = facts.get("n")
    if name == "spmv.bitmap":
        if machine is not None and machine.vector_bytes < 64:
            return "spmv.bitmap needs AVX-512 (its register compress)"
        if not facts.get("finite", True):
            return "spmv.bitmap multiplies zeros by values past a chunk's own, so W must be finite"
    if name.startswith("spmv.") and n != 1:
        return f"{name} computes W @ x for one column; X has {n}"
    if name.startswith("spmm.") and n == 1:
        return f"{name} is for X of several columns; one column is SpMV (spmv.*)"
    if name == "gather.dot" and n != 1:
        return f"gather.dot is for one column; X has {n}"
    if name == "gather.strided_blas" and not facts.get("stride"):
        return "gather.strided_blas needs equally spaced rows"
    return None

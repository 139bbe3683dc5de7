"""DLMC real masks against uniform random masks of the same shape and sparsity.

For every magnitude-pruned DLMC matrix found (the vendored subset, plus any below
``$SPARSEKIT_DLMC_DIR``), at every level, ``spmm`` with the real mask and with a uniform
random mask of the same shape and nonzero count, at the N of the original benchmarks:
256 for transformer layers, ``rn50_batchsizes.txt`` (next to the collection) for ResNet-50
layers. Values are seeded standard normal for both (DLMC ships topology only). The
ratio uniform/dlmc > 1 means the real structure makes the kernel faster.
"""
from __future__ import annotations

import os
from pathlib import Path

from .. import io
from ..kernels import make_problem
from ._common import (
    Recipe, WorkloadResult, fmt_ratio, fmt_time, live_backends, prepare_checked, run_status,
    time_interleaved, versions,
)

#: N of the transformer SpMMs in the SC20 benchmarks
TRANSFORMER_N = 256


def _rn50_batchsizes() -> dict[str, int]:
    out = {}
    for d in io.dlmc_dirs():
        f = Path(d) / "rn50_batchsizes.txt"
        if f.is_file():
            for line in f.read_text().splitlines():
                name, _, n = line.strip().partition(",")
                if n.strip().isdigit():
                    out.setdefault(name.strip(), int(n))
    return out


def benchmark_n(template: str) -> int:
    """N of the original benchmark for a matrix (short name or path template)."""
    if template in io.DLMC_MATRICES:
        return io.DLMC_MATRICES[template][1]
    model, layer = template.split("/")[0], template.rsplit("/", 1)[-1]
    if model == "transformer":
        return TRANSFORMER_N
    sizes = _rn50_batchsizes()
    if layer not in sizes:
        raise ValueError(f"no N for {layer!r}: rn50_batchsizes.txt (next to the DLMC collection) does not list it")
    return sizes[layer]


def matrices() -> list[str]:
    """Vendored short names, then every magnitude-pruning matrix found under
    ``$SPARSEKIT_DLMC_DIR`` (as path templates with ``{sparsity}``), each once."""
    found = list(io.DLMC_MATRICES)
    known = {io.DLMC_MATRICES[n][0] for n in found}
    for d in io.dlmc_dirs()[1:]:
        for model in ("transformer", "rn50"):
            for level_dir in sorted((Path(d) / model / "magnitude_pruning").glob("*")):
                for f in sorted(level_dir.glob("*.smtx*")):
                    layer = f.name.split(".smtx")[0]
                    tmpl = f"{model}/magnitude_pruning/{{sparsity}}/{layer}"
                    if tmpl not in known:
                        known.add(tmpl)
                        found.append(tmpl)
    return found


def label(template: str) -> str:
    """Short display name: the vendored short name, or model/layer."""
    if template in io.DLMC_MATRICES:
        return template
    return template.split("/")[0] + "/" + template.rsplit("/", 1)[-1].replace("_fully_connected", "")


def template_of(name: str) -> str:
    """Inverse of ``label`` for the magnitude-pruning matrices: ``rn50/final_dense`` ->
    ``rn50/magnitude_pruning/{sparsity}/final_dense`` (transformer layers get their
    ``_fully_connected`` suffix back)."""
    if name in io.DLMC_MATRICES:
        return name
    model, _, layer = name.partition("/")
    if not layer or "/" in layer:
        raise ValueError(f"DLMC matrix {name!r}: expected a short name ({', '.join(io.DLMC_MATRICES)}) or model/layer")
    suffix = "_fully_connected" if model == "transformer" else ""
    return f"{model}/magnitude_pruning/{{sparsity}}/{layer}{suffix}"


def dlmc_problem(template: str, sparsity: float, *, dtype="float32", seed=0):
    """spmm with the real DLMC mask at ``sparsity`` (FileNotFoundError when the level is missing)."""
    n = benchmark_n(template)
    if template in io.DLMC_MATRICES:
        return make_problem("spmm", matrix=template, sparsity=sparsity, n=n, format="csr", dtype=dtype, seed=seed)
    path = io.dlmc_path(template.format(sparsity=f"{float(sparsity):g}"))
    return make_problem("spmm", weights=path, n=n, format="csr", dtype=dtype, seed=seed)


def uniform_twin(real, *, dtype="float32", seed=0):
    """spmm with a uniform random mask of the same shape and nonzero count as ``real``."""
    p = real.params
    return make_problem("spmm", m=p["m"], k=p["k"], n=p["n"], sparsity=p["sparsity"], pattern="uniform",
                        format="csr", dtype=dtype, seed=seed)


def available_levels(template: str) -> list[float]:
    out = []
    for s in io.DLMC_LEVELS:
        try:
            io.dlmc_path(template if template in io.DLMC_MATRICES else template.format(sparsity=f"{s:g}"),
                         s if template in io.DLMC_MATRICES else None)
            out.append(s)
        except FileNotFoundError:
            pass
    return out


class DLMCRecipe(Recipe):
    name = "dlmc"
    help = "spmm on real DLMC masks beside uniform random masks of the same shape and sparsity, per backend"

    def run(self, backends, *, seed=0, repeat=7, progress=True, quick=False) -> WorkloadResult:
        res = WorkloadResult(self.name)
        live, res.notes = live_backends(backends)
        if not os.environ.get("SPARSEKIT_DLMC_DIR"):
            res.notes.append("only the vendored DLMC matrices: set SPARSEKIT_DLMC_DIR for more")
        runs, table = [], []
        for tmpl in matrices():
            levels = available_levels(tmpl)
            if quick:
                levels = [s for s in levels if s in (0.7, 0.9, 0.98)]
            for s in levels:
                real = dlmc_problem(tmpl, s, seed=seed)
                twin = uniform_twin(real, seed=seed)
                for be in live:
                    row = {"backend": be.name, "matrix": label(tmpl), "sparsity": s,
                           "shape": f"{real.params['m']}x{real.params['k']}x{real.params['n']}",
                           "nnz": real.params["nnz"], "nnz_uniform": twin.params["nnz"], "status": "ok"}
                    plans = {}
                    for mask, p in (("dlmc", real), ("uniform", twin)):
                        out, status = run_status(lambda: prepare_checked(be, p))
                        if status is not None:
                            row["status"] = status
                            continue
                        plans[mask], chk = out
                        row[f"rel_error_{mask}"] = chk.error
                        if not chk.ok:
                            res.failed, row["status"] = True, f"FAIL {mask}: {chk.detail}"
                    times = time_interleaved(plans, repeat, max_time=3.0) if plans else {}
                    for plan in plans.values():
                        plan.close()
                    row["time_dlmc_s"], row["time_uniform_s"] = times.get("dlmc"), times.get("uniform")
                    row["uniform_over_dlmc"] = (times["uniform"] / times["dlmc"]
                                                if "dlmc" in times and "uniform" in times else None)
                    runs.append(row)
                    table.append([row["matrix"], s, row["shape"], be.name, fmt_time(row["time_dlmc_s"]),
                                  fmt_time(row["time_uniform_s"]), fmt_ratio(row["uniform_over_dlmc"]), row["status"]])
        res.tables.append((
            "spmm (csr) on real DLMC masks vs uniform masks of the same shape and nnz, N of the original benchmarks; "
            "uniform/dlmc > 1: the real structure is faster",
            ["matrix", "sparsity", "m x k x n", "backend", "dlmc", "uniform", "uniform / dlmc", "status"], table))
        res.data = {"seed": seed, "versions": versions(), "dlmc_dirs": [str(d) for d in io.dlmc_dirs()], "runs": runs}
        return res

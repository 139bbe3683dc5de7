"""Shared pieces of the workloads: the result record, backend resolution, problems
built from given arrays, timing of multi-kernel pipelines, the weights cache.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .._errors import BackendUnavailable, Unsupported
from ..host import cache_dir as host_cache_dir
from ..kernels import check, make_problem
from ..problem import Problem
from ..registry import backend as get_backend
from ..fmt import fmt_ratio, fmt_time  # noqa: F401 (the recipes' formatters)
from ..timing import time_calls


@dataclass
class WorkloadResult:
    """What a recipe measured.

    ``tables``: (title, headers, rows) for ``tabulate``. ``data``: everything measured,
    JSON-able (per-backend times, speedups, errors, seeds, versions). ``notes``: skipped
    backends with their reasons and other remarks. ``failed``: some backend gave a
    result the oracle check rejects.
    """

    name: str
    tables: list = field(default_factory=list)
    data: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    failed: bool = False


class Recipe:
    """A workload runnable as ``sparsekit run <name>``; subclasses implement ``run``."""

    name: str = ""
    help: str = ""

    def run(self, backends: list[str], *, seed: int = 0, repeat: int = 7, progress: bool = True,
            quick: bool = False) -> WorkloadResult:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Recipe {self.name}: {self.help}>"


def live_backends(names, plans_at_once: int = 2) -> tuple[list, list[str]]:
    """Backend instances for ``names`` (each once, in order), and notes naming those
    skipped with the reason; an unavailable backend is never replaced by another.

    Every workload compares models side by side, holding ``plans_at_once`` prepared
    plans per backend; a backend that cannot keep that many live (Lava: one network
    per process) is skipped with that reason rather than failing half-way.
    """
    live, notes = [], []
    for name in dict.fromkeys(names):
        try:
            be = get_backend(name)
            limit = getattr(be, "max_live_plans", None)
            if limit is not None and limit < plans_at_once:
                notes.append(f"{name}: skipped, it keeps {limit} prepared plan(s) live per process and this "
                             f"workload holds {plans_at_once} at once")
                continue
            live.append(be)
        except BackendUnavailable as e:
            notes.append(f"{name}: skipped, {e.reason}")
        except KeyError as e:  # UnknownBackendError
            notes.append(f"{name}: skipped, {e.args[0] if e.args else e}")
    return live, notes


def versions() -> dict:
    import scipy

    from .. import __version__

    return {"sparsekit": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "python": platform.python_version()}


# -- problems from given arrays ------------------------------------------------------------
#
# The catalogue generates seeded inputs; a workload needs *its* arrays (trained weights,
# the previous layer's output) in the kernel. The kernel's own generator completes the
# parameters (shape, nnz, sparsity, format), then the generated operands are replaced by
# the given ones, so the oracle, check and op counts all see the workload's data.

def _host(a, dtype: str) -> np.ndarray:
    from .. import dtypes

    return dtypes.to_host(np.asarray(a, dtype=np.float64), dtype)


def spmm_problem(w, x, dtype: str = "float32") -> Problem:
    """spmm of sparse ``w`` (scipy.sparse or ndarray; zeros dropped) by dense ``x``."""
    w = sp.csr_matrix(w)
    w.eliminate_zeros()
    p = make_problem("spmm", weights=w, n=x.shape[1], format="csr", dtype=dtype)
    _same_shape(p.inputs["x"], x, "spmm x")
    p.inputs["x"] = _host(x, dtype)
    return p


def dense_mm_problem(w, x, dtype: str = "float32") -> Problem:
    w = w.toarray() if sp.issparse(w) else np.asarray(w)
    p = make_problem("dense_mm", m=w.shape[0], k=w.shape[1], n=x.shape[1], dtype=dtype)
    p.inputs["w"] = _host(w, dtype)
    p.inputs["x"] = _host(x, dtype)
    p.params["sparsity"] = 1.0 - np.count_nonzero(w) / w.size
    return p


def kwta_problem(x, k: int, dtype: str = "float32") -> Problem:
    p = make_problem("kwta", m=x.shape[0], n=x.shape[1], k=int(k), dtype=dtype)
    p.inputs["x"] = _host(x, dtype)
    return p


def sparse_sparse_problem(w, x, dtype: str = "float32") -> Problem:
    """sparse_sparse of sparse ``w`` by ``x`` whose columns are mostly zero (a k-WTA output,
    possibly with extra always-on rows such as a bias unit)."""
    w = sp.csr_matrix(w)
    w.eliminate_zeros()
    per_col = int(np.count_nonzero(x, axis=0).max()) if x.size else 0
    p = make_problem("sparse_sparse", weights=w, n=x.shape[1], act_k=min(per_col, w.shape[1]), dtype=dtype)
    xh = _host(x, dtype)
    _same_shape(p.inputs["x"], xh, "sparse_sparse x")
    p.inputs["x"] = xh
    p.inputs["x_csc"] = sp.csc_matrix(xh)
    p.params["act_sparsity"] = 1.0 - np.count_nonzero(xh) / max(xh.size, 1)
    return p


def _same_shape(generated, given, what):
    if generated.shape != np.shape(given):
        raise ValueError(f"{what}: shape {np.shape(given)} does not fit the weights (expected {generated.shape})")


# -- running and timing ------------------------------------------------------------------

def prepare_checked(be, problem: Problem):
    """(plan, Check) after one call; ``Unsupported`` propagates."""
    plan = be.prepare(problem)
    plan()
    return plan, check(problem, plan.result())


#: seconds of idle before each timed block when several callables alternate (see
#: ``sparsekit.timing``): after a call, OpenBLAS's worker threads spin for about 2**28
#: cycles (~0.1 s) before they sleep; on a 2-core host they steal a core from the next
#: block if it is a Numba or OpenCL kernel (measured: dense GEMV then cpu gather_mm
#: 8.9 ms against 2.9 ms apart).
SETTLE_S = 0.12


def time_interleaved(calls: dict, repeat: int = 7, min_time: float = 0.02, max_time: float = 6.0,
                     settle: float = SETTLE_S) -> dict:
    """Median seconds per call of each callable in ``calls``, timed in alternation with
    ``settle`` seconds of idle before each block (``sparsekit.timing.time_calls``)."""
    if not calls:
        return {}
    timings = time_calls(calls, repeat, min_time, max_time, settle=settle)
    return {key: t.median for key, t in timings.items()}


def prepare_and_time(be, problems: dict, repeat: int, res) -> tuple[dict, dict, dict]:
    """Prepare and check every problem on ``be``, time the prepared ones side by side
    (``time_interleaved``), close them; returns (times, status, errors) keyed like
    ``problems``. A wrong result marks ``res.failed``."""
    plans, status, errors = {}, {}, {}
    for key, p in problems.items():
        out, status[key] = run_status(lambda: prepare_checked(be, p))
        if status[key] is None:
            plans[key], chk = out
            errors[key] = chk.error
            status[key] = "ok" if chk.ok else f"FAIL {chk.detail}"
            res.failed |= not chk.ok
    try:
        times = time_interleaved(plans, repeat) if plans else {}
    finally:
        for plan in plans.values():
            plan.close()
    return times, status, errors


def pipeline(plans):
    """One callable running ``plans`` back to back (a model's stages on resident data)."""

    def run():
        for p in plans:
            p()

    return run


def run_status(fn):
    """Call ``fn()``; return (value, None) or (None, 'n/a: reason' / 'error: ...')."""
    try:
        return fn(), None
    except Unsupported as e:
        return None, f"n/a: {e.reason}"
    except NotImplementedError as e:
        return None, f"n/a: {e}"
    except Exception as e:  # a crashing backend is reported, the workload goes on
        return None, f"error: {type(e).__name__}: {e}"


# -- cache --------------------------------------------------------------------------------

def cache_dir() -> Path:
    """``<sparsekit cache>/workloads`` (``sparsekit.host.cache_dir``: ``$SPARSEKIT_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/sparsekit``, i.e. ``~/.cache/sparsekit``)."""
    return host_cache_dir() / "workloads"


def config_key(config: dict, *sources) -> str:
    """A short hash of the config and of the source text that turns it into results, so
    a change to either invalidates the cache."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for src in sources:
        h.update(Path(src).read_bytes())
    return h.hexdigest()[:16]

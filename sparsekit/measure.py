"""One problem on one backend: the measurement behind every row of a sweep.

``measure`` prepares the plan, times it (``sparsekit.timing``), checks the result
against the oracle and times the same backend's ``dense_mm`` at the dense-equivalent
shape; it never raises: a failure is a ``Row`` with a status and the reason. Shared by
the in-process sweep (``sparsekit.sweep``) and the isolated workers (``sparsekit._worker``).

Row statuses: ``ok``; ``FAIL`` (wrong result); ``n/a`` (the backend does not do
this kernel/format/dtype); ``error`` (it raised); ``oom`` (it ran out of host or
device memory); ``crashed`` (its worker died, e.g. by a signal); ``timeout``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ._errors import Unsupported
from .kernels import check, compulsory_bytes, make_problem, ops
from .metrics import gbps, gflops
from .timing import time_plan

#: statuses that mean "the backend misbehaved" (exit status 3 of ``sparsekit run``)
FAULTS = ("error", "oom", "crashed", "timeout")


@dataclass
class Row:
    backend: str
    kernel: str
    shape: str
    sparsity: float | None
    status: str  # "ok", "FAIL", "n/a", "error", "oom", "crashed", "timeout"
    time_s: float | None = None
    dense_time_s: float | None = None
    speedup: float | None = None
    error: float | None = None
    gflops: float | None = None
    gbps: float | None = None
    detail: str = ""
    params: dict = field(default_factory=dict)
    #: fraction of the calibrated roofline reached (None without a calibration; see ``sparsekit calibrate``)
    roofline: float | None = None
    #: what an inspecting backend's ``prepare`` chose and why (``plan.strategy``), or None
    strategy: str | None = None


class BadProblem(ValueError):
    """The problem parameters themselves are invalid (a usage error, not a backend fault)."""


def describe_backend(be) -> dict:
    """Device and library versions of a loaded backend, for result files (never raises)."""
    out = {}
    for key, fn in (("device", be.device), ("versions", be.versions)):
        try:
            out[key] = fn()
        except Exception as e:  # noqa: BLE001 - a description must not stop a sweep
            out[key] = f"unknown ({type(e).__name__}: {e})"
    return out


def generate(kernel: str, params: dict, dtype, seed):
    """``make_problem`` with its input errors turned into ``BadProblem``; MemoryError stays."""
    try:
        return make_problem(kernel, dtype=dtype, seed=seed, **params)
    except (ValueError, TypeError, KeyError, FileNotFoundError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        raise BadProblem(msg) from e


def row_skeleton(spec, be_name: str, params: dict, problem=None) -> Row:
    """A Row for ``params``, before (or without) a measurement."""
    if problem is not None:
        shape = "x".join(str(v) for v in spec.shape_of(problem.params))
        return Row(be_name, spec.name, shape, spec.sparsity(problem), "ok", params=_jsonable(problem.params))
    try:
        shape = "x".join(str(v) for v in spec.shape_of(params))
    except KeyError:
        shape = "?"
    return Row(be_name, spec.name, shape, params.get("sparsity"), "ok", params=_jsonable(params))


def measure(be, spec, problem, dtype, seed, repeat, dense, dense_times, timer=None) -> Row:
    """One problem on one backend beside its dense_mm of the equivalent shape; never raises."""
    from .preflight import out_of_memory_message
    from .resources import is_out_of_memory

    timer = timer or time_plan
    row = row_skeleton(spec, be.name, problem.params, problem)
    eq = spec.dense_equivalent(problem.params) if dense and spec.name != "dense_mm" else None
    try:
        plan = be.prepare(problem)
        if getattr(plan, "strategy", None) is not None:
            row.strategy = str(plan.strategy)
        try:
            t = timer(plan, repeat=repeat).median
            chk = check(problem, plan.result(), backend=be)
        finally:
            _close(plan)
        row.time_s, row.error = t, chk.error
        if not chk.ok:
            row.status, row.detail = "FAIL", chk.detail
        counts, nbytes = ops(problem), compulsory_bytes(problem)
        row.gflops, row.gbps = gflops(counts.effective, t), gbps(nbytes, t)
        if eq is not None:
            row.dense_time_s = _dense_time(be, eq, dtype, seed, repeat, dense_times, timer)
            if row.dense_time_s:
                row.speedup = row.dense_time_s / t
    except Unsupported as e:
        row.status, row.detail = "n/a", e.reason
    except Exception as e:  # a failing backend is reported, the sweep goes on
        if is_out_of_memory(e):
            row.status, row.detail = "oom", out_of_memory_message(e, spec.name, problem.params, dtype)
        else:
            row.status, row.detail = "error", f"{type(e).__name__}: {e}"
    return row


def _close(plan) -> None:
    close = getattr(plan, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # noqa: BLE001 - releasing must not hide the measurement
            pass


def _dense_time(be, eq: dict, dtype, seed, repeat, cache, timer) -> float | None:
    """Median time of ``be``'s dense_mm at shape ``eq``, measured once per sweep."""
    key = (be.name, (eq["m"], eq["k"], eq["n"]))
    if key not in cache:
        try:
            p = make_problem("dense_mm", dtype=dtype, seed=seed, **eq)
            plan = be.prepare(p)
            try:
                cache[key] = timer(plan, repeat=repeat).median
            finally:
                _close(plan)
        except Unsupported:
            cache[key] = None
    return cache[key]


def _jsonable(params: dict) -> dict:
    from .problem import summary_params

    out = summary_params(params)
    for k, v in list(out.items()):
        if isinstance(v, tuple):
            out[k] = list(v)
        elif not isinstance(v, (int, float, str, bool, list, type(None))):
            out[k] = str(v)
    return out

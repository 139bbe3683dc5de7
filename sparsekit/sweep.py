"""A sparsity sweep: one kernel on several backends, timed beside each backend's own dense_mm.

Used by ``sparsekit run``; importable for scripts and notebooks::

    rows, break_even, notes = sweep("spmm", ["numpy", "cpu"], [{"m": 512, "k": 512, "n": 64, "sparsity": s}
                                                                for s in (0.5, 0.9)])

By default (``isolate=False``) everything runs in this process. With
``isolate=True`` (what ``sparsekit run`` does) each backend runs in its own
worker process (``sparsekit._worker``, started with ``spawn``), one problem at a
time with a ``timeout``: a backend that segfaults, hangs, raises or runs out of
memory becomes a row with status ``crashed``, ``timeout``, ``error`` or
``oom`` and the reason, and every other backend's rows are unaffected. Workers
regenerate each problem from its parameters and seed (generation is
deterministic) and time the dense baseline in the same process as the sparse
runs.

Row statuses: ``ok``; ``FAIL`` (wrong result); ``n/a`` (the backend does not do
this kernel/format/dtype); ``error`` (it raised); ``oom`` (it ran out of host or
device memory); ``crashed`` (its worker died, e.g. by a signal); ``timeout``.
"""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import Callable

# sparsekit.kernels (the attribute) is the kernels() function: import the names directly.
from .kernels import check, compulsory_bytes, get_kernel, make_problem, ops
from ._errors import BackendUnavailable, Unsupported
from .metrics import BreakEven, break_even, gbps, gflops
from .registry import backend as get_backend
from .timing import time_plan

#: statuses that mean "the backend misbehaved" (exit status 3 of ``sparsekit run``)
FAULTS = ("error", "oom", "crashed", "timeout")
#: default per-problem limit of an isolated run, in seconds (prepare + dense baseline + timing)
DEFAULT_TIMEOUT = 600.0


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


class BadProblem(ValueError):
    """The problem parameters themselves are invalid (a usage error, not a backend fault)."""


def sweep(kernel: str, backends: list[str], problems: list[dict], *, dtype="float32", seed=0,
          repeat=7, progress=True, dense=True, isolate: bool = False, timeout: float | None = DEFAULT_TIMEOUT,
          on_row: Callable[[Row], None] | None = None, on_backend: Callable[[str, dict], None] | None = None,
          notes: list[str] | None = None) -> tuple[list[Row], dict[str, BreakEven], list[str]]:
    """Run ``kernel`` for each parameter set in ``problems`` on each backend.

    Returns (rows, break-even per backend, notes). A backend that is unavailable
    is reported in ``notes`` with its reason and skipped -- never replaced.

    ``isolate``: run each backend in a worker process (see the module docstring);
    ``timeout``: seconds per problem and backend when isolated (None: no limit).
    ``on_row(row)`` is called as each row is finished (incremental saving);
    ``on_backend(name, {"device": ..., "versions": {...}})`` once per backend that runs.
    ``notes``: a list to append the notes to (also returned).
    A ``KeyboardInterrupt`` stops the sweep after killing any worker and is re-raised;
    the rows finished so far have been passed to ``on_row``.
    Raises ``BadProblem`` (a ValueError) when a problem cannot be generated.
    """
    spec = get_kernel(kernel)
    names = list(dict.fromkeys(backends))  # each backend once, in the order given
    notes = [] if notes is None else notes  # a caller's list keeps the notes through a Ctrl-C
    bar = _progress(len(problems) * len(names), progress, kernel)
    done: list[tuple[int, Row]] = []

    def emit(row: Row, point: int) -> None:
        done.append((point, row))
        bar.update(1)
        if on_row is not None:
            on_row(row)

    try:
        if isolate:
            from ._worker import run_isolated

            run_isolated(spec.name, names, problems, dtype=dtype, seed=seed, repeat=repeat, dense=dense,
                         timeout=timeout, emit=emit, notes=notes, on_backend=on_backend, skip=bar.update)
        else:
            _run_in_process(spec, names, problems, dtype, seed, repeat, dense, emit, notes, on_backend, bar)
    finally:  # also on errors and Ctrl-C: leave the terminal clean
        bar.close()
    order = {name: i for i, name in enumerate(names)}
    # isolated runs go backend by backend; report point by point, as the in-process sweep does
    done.sort(key=lambda pr: (pr[0], order.get(pr[1].backend, 0)))
    rows = [r for _, r in done]
    return rows, break_even_table(rows, names), notes


def break_even_table(rows: list[Row], names: list[str]) -> dict[str, BreakEven]:
    be_table = {}
    if any(r.speedup is not None for r in rows):
        for name in names:
            mine = [r for r in rows if r.backend == name and r.speedup is not None]
            if mine or any(r.backend == name for r in rows):
                be_table[name] = break_even([r.sparsity for r in mine], [r.speedup for r in mine])
    return be_table


def _run_in_process(spec, names, problems, dtype, seed, repeat, dense, emit, notes, on_backend, bar) -> None:
    live = []
    for name in names:
        try:
            live.append(get_backend(name))
        except BackendUnavailable as e:
            notes.append(f"{name}: skipped, {e.reason}")
            bar.update(len(problems))
    for be in live:
        if on_backend is not None:
            on_backend(be.name, describe_backend(be))
    dense_times: dict[tuple, float | None] = {}  # measured once per sweep, beside its sparse runs
    for i, params in enumerate(problems):
        try:
            problem = generate(spec.name, params, dtype, seed)
        except MemoryError as e:  # the host cannot even hold the inputs: say so with the sizes, go on
            from .resources import out_of_memory_message

            for be in live:
                row = row_skeleton(spec, be.name, params)
                row.status = "oom"
                row.detail = out_of_memory_message(e, spec.name, params, dtype) + " while generating it"
                emit(row, i)
            continue
        for be in live:
            emit(measure(be, spec, problem, dtype, seed, repeat, dense, dense_times), i)


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
        shape = "x".join(str(v) for v in _describe_shape(problem.kernel, problem.params))
        return Row(be_name, spec.name, shape, spec.sparsity(problem), "ok", params=_jsonable(problem.params))
    try:
        shape = "x".join(str(v) for v in _describe_shape(spec.name, params))
    except KeyError:
        shape = "?"
    return Row(be_name, spec.name, shape, params.get("sparsity"), "ok", params=_jsonable(params))


def measure(be, spec, problem, dtype, seed, repeat, dense, dense_times, timer=None) -> Row:
    """One problem on one backend beside its dense_mm of the equivalent shape; never raises."""
    from .resources import is_out_of_memory, out_of_memory_message

    timer = timer or time_plan
    row = row_skeleton(spec, be.name, problem.params, problem)
    eq = spec.dense_equivalent(problem) if dense and spec.name != "dense_mm" else None
    try:
        plan = be.prepare(problem)
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


def _describe_shape(kernel: str, p: dict) -> tuple:
    if kernel == "lif":
        return (p["n_in"], p["n_out"], p["steps"])
    if kernel == "kwta":
        return (p["m"], p["n"])
    return (p["m"], p["k"], p["n"])


def _jsonable(params: dict) -> dict:
    from .problem import summary_params

    out = summary_params(params)
    for k, v in list(out.items()):
        if isinstance(v, tuple):
            out[k] = list(v)
        elif not isinstance(v, (int, float, str, bool, list, type(None))):
            out[k] = str(v)
    return out


class _NoBar:
    def update(self, n=1):  # noqa: D401 - trivial
        pass

    def close(self):
        pass


def _progress(total: int, enabled: bool, desc: str):
    if not enabled or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="run", file=sys.stderr, leave=False)


def rows_as_dicts(rows: list[Row]) -> list[dict]:
    return [asdict(r) for r in rows]

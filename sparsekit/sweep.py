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

Row statuses: see ``sparsekit.measure``.
"""
from __future__ import annotations

import sys
from typing import Callable

from ._errors import BackendUnavailable
from ._worker import run_isolated
# sparsekit.kernels (the attribute) is the kernels() function: import the names directly.
from .kernels import get_kernel
from .measure import FAULTS, BadProblem, Row, describe_backend, generate, measure, row_skeleton  # noqa: F401 (re-exported)
from .metrics import BreakEven, break_even
from .registry import backend as get_backend

#: default per-problem limit of an isolated run, in seconds (prepare + dense baseline + timing)
DEFAULT_TIMEOUT = 600.0


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
            from .preflight import out_of_memory_message

            for be in live:
                row = row_skeleton(spec, be.name, params)
                row.status = "oom"
                row.detail = out_of_memory_message(e, spec.name, params, dtype) + " while generating it"
                emit(row, i)
            continue
        for be in live:
            emit(measure(be, spec, problem, dtype, seed, repeat, dense, dense_times), i)


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

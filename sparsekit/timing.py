"""Timing prepared calls: the suite's one timing primitive.

``time_calls`` times one callable, or several compared side by side, and is what
every other timer of the suite is made of (``time_plan`` for sweeps, calibration's
best-of-N, the workloads' interleaved comparisons, Lava's per-call figures).

Protocol: one warm-up call (first-touch page faults, lazy initialisation, JIT are not
the kernel), then one timed call to choose ``number``, the calls per sample, so a
sample lasts at least ``min_time`` (short kernels are otherwise dominated by the
clock's resolution); then up to ``repeat`` samples, stopping early once ``max_time``
is spent (keeping at least three). Several callables are timed round by round
(A, B, C, A, B, C, ...) rather than one after the other, so load from other
processes falls on all of them alike and their ratios stay meaningful on a busy
host; before each block the host idles ``settle`` seconds and makes one untimed call,
so no block pays for the previous one's spinning thread pool (OpenBLAS's workers spin
about 0.1 s after a call and would take a core from a Numba or OpenCL kernel).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Timing:
    """Seconds per call: median and best over the samples, how many samples, calls per sample."""

    median: float
    best: float
    repeats: int
    number: int  # calls per repeat
    samples: tuple = field(default=(), repr=False)


def time_calls(calls, repeat: int = 7, min_time: float = 0.05, max_time: float = 5.0, *,
               settle: float = 0.0, warmup: bool = True, number: int | None = None):
    """Seconds per call of ``calls``: one callable (returns a ``Timing``) or a dict of them
    (returns a dict of ``Timing``, same keys), timed in alternation (see the module doc).

    ``number``: calls per sample, fixed (default: chosen from a first timed call to reach
    ``min_time``). ``warmup=False``: no untimed first call (the caller made it).
    ``settle``: seconds of idle before each block when several callables alternate.
    """
    single = callable(calls)
    fns: dict = {None: calls} if single else dict(calls)
    counts = {}
    for key, fn in fns.items():
        if warmup:
            fn()
        if number is not None:
            counts[key] = max(1, int(number))
            continue
        t0 = time.perf_counter()
        fn()
        first = time.perf_counter() - t0
        counts[key] = max(1, int(min_time / first)) if first > 0 else 1000
    samples: dict = {key: [] for key in fns}
    spent = 0.0
    for i in range(max(repeat, 1)):
        for key, fn in fns.items():
            if settle and len(fns) > 1:
                time.sleep(settle)
                fn()
            t0 = time.perf_counter()
            for _ in range(counts[key]):
                fn()
            dt = time.perf_counter() - t0
            samples[key].append(dt / counts[key])
            spent += dt
        if spent > max_time and i >= 2:
            break
    out = {key: Timing(statistics.median(v), min(v), len(v), counts[key], tuple(v)) for key, v in samples.items()}
    return out[None] if single else out


def time_plan(plan: Callable[[], object], repeat: int = 7, min_time: float = 0.05, max_time: float = 5.0) -> Timing:
    """Median seconds per call of ``plan()`` (``sparsekit run``'s protocol; see the module doc)."""
    return time_calls(plan, repeat, min_time, max_time)


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` single calls after a warm-up (calibration: a machine's limit
    is the best it did, not the typical)."""
    return time_calls(fn, repeats, number=1, max_time=float("inf")).best

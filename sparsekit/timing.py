"""Timing a prepared plan: warm-up, then repeats of the synchronised call, median kept."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    median: float
    best: float
    repeats: int
    number: int  # calls per repeat


def time_plan(plan, repeat: int = 7, min_time: float = 0.05, max_time: float = 5.0) -> Timing:
    """Median seconds per call of ``plan()``.

    One warm-up call (caches, lazy allocation, JIT), then one timed call to choose
    ``number``. Each repeat runs ``number`` calls, so that a repeat lasts at least ``min_time`` (short
    kernels are otherwise dominated by the clock's resolution); repeats stop early
    once ``max_time`` is spent, keeping at least three.
    """
    plan()  # warm-up: first-touch page faults and lazy initialisation are not the kernel
    t0 = time.perf_counter()
    plan()
    first = time.perf_counter() - t0
    number = max(1, int(min_time / first)) if first > 0 else 1000
    samples = []
    spent = 0.0
    for i in range(max(repeat, 1)):
        t0 = time.perf_counter()
        for _ in range(number):
            plan()
        dt = time.perf_counter() - t0
        samples.append(dt / number)
        spent += dt
        if spent > max_time and i >= 2:
            break
    return Timing(statistics.median(samples), min(samples), len(samples), number)

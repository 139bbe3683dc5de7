"""Tuning: where the inspector cannot decide, time its shortlist once and remember the winner.

Off by default, so a timed benchmark never times candidates in ``prepare``: then
the model's choice runs, unless wisdom from an earlier tuning exists for the
problem's class (``wisdom``). On with ``SPARSEKIT_CPU_TUNE=1``, with
``CpuBackend.tune = True``, or for a whole list of problems with ``tune()``
(what ``sparsekit calibrate --tune`` calls).

Candidates are timed with ``sparsekit.timing.time_plan`` over the same prepared
operands, interleaved over a few rounds with a short idle between candidates
(a BLAS pool spins for a while after a call and would slow the next one), and
the best time per candidate decides (``measure``). Tune on a quiet machine: the
remembered choice is only as good as that measurement.
"""
from __future__ import annotations

import os
import time

from sparsekit.timing import time_plan

#: interleaved rounds, seconds per timed repeat, idle seconds between candidates
ROUNDS, MIN_TIME, SETTLE = 3, 0.01, 0.1


def enabled() -> bool:
    """SPARSEKIT_CPU_TUNE set to 1/true/yes/on."""
    return os.environ.get("SPARSEKIT_CPU_TUNE", "").strip().lower() in ("1", "true", "yes", "on")


def measure(runs: dict) -> dict:
    """Seconds per call of each no-argument callable in ``runs``: the best sample over
    interleaved rounds. The best, not the median: on a shared host a parallel kernel
    whose second thread is descheduled waits a whole scheduler tick (4 ms), and what
    decides between strategies is what each can do, not how often it was interrupted."""
    samples = {name: [] for name in runs}
    names = list(runs)
    for r in range(ROUNDS):
        for name in names[r % len(names):] + names[: r % len(names)]:
            time.sleep(SETTLE)
            samples[name].append(time_plan(runs[name], repeat=3, min_time=MIN_TIME, max_time=1.0).best)
    return {name: min(v) for name, v in samples.items()}


def settle(choice, key: str, wisdom, build, tune: bool):
    """(strategy, how it was decided, times or None) for a problem of class ``key``.

    ``choice``: the inspector's ``Choice``; ``build(name)`` makes a candidate's call.
    Remembered wisdom wins if it names one of the shortlist; else, with ``tune``
    and more than one candidate, the shortlist is timed and the winner remembered."""
    entry = wisdom.get(key)
    if entry and entry["strategy"] in choice.candidates:
        times = entry.get("times") or {}
        return entry["strategy"], f"remembered from tuning on this machine ({_fmt(times)})", times
    if tune and len(choice.candidates) > 1:
        times = measure({name: build(name) for name in choice.candidates})
        best = min(times, key=times.get)
        wisdom.put(key, best, times)
        return best, f"tuned: timed {_fmt(times)}", times
    return choice.name, choice.reason, None


def _fmt(times: dict) -> str:
    return ", ".join(f"{k} {v * 1e3:.3g} ms" for k, v in sorted(times.items(), key=lambda kv: kv[1]))


def default_problems() -> list[dict]:
    """``make_problem`` keywords of the problems ``tune()`` visits by default: the suite's
    CSR SpMM grid and targets (uniform, power-law rows, DLMC masks) and the selector."""
    from sparsekit.io import DLMC_LEVELS, DLMC_MATRICES

    out = []
    for shape in ((2048, 2048), (4096, 4096)):
        for n in (1, 64, 128):
            for s in (0.5, 0.7, 0.9, 0.99):
                for pattern in ("uniform", "powerlaw"):
                    out.append(dict(kernel="spmm", m=shape[0], k=shape[1], n=n, sparsity=s, pattern=pattern))
    out.append(dict(kernel="spmm", m=16384, k=16384, n=1, sparsity=0.9, pattern="uniform"))
    for name in DLMC_MATRICES:
        for s in DLMC_LEVELS:
            for n in sorted({DLMC_MATRICES[name][1], 256}):
                out.append(dict(kernel="spmm", pattern="dlmc", matrix=name, sparsity=s, n=n))
    for n in (1, 8, 64):
        out.append(dict(kernel="gather_mm", m=20000, k=1000, n=n, rows=1000))
    return out


def tune(problems=None, progress=print, dtype: str = "float32") -> list[dict]:
    """Tune the cpu backend on ``problems`` (``make_problem`` keyword dicts with a
    ``kernel``; default ``default_problems()``), saving wisdom for this machine.

    Only problems whose class the inspector cannot decide are timed; the others
    cost one inspection. ``progress(line)`` is called per problem (None: silent).
    Returns one dict per problem: problem, strategy, reason."""
    import sparsekit

    # a fresh instance of the registered cpu backend, tuning on (found through the registry, which
    # the backend module itself imports this module from: no import circle)
    be = type(sparsekit.backend("cpu"))()
    be.tune = True
    rows = []
    for kw in problems if problems is not None else default_problems():
        kw = dict(kw)
        kernel = kw.pop("kernel")
        kw.setdefault("dtype", dtype)
        problem = sparsekit.make_problem(kernel, **kw)
        with be.prepare(problem) as plan:
            st = plan.strategy
        rows.append({"problem": problem.describe(), "strategy": st.name, "reason": st.reason})
        if progress:
            progress(f"{problem.describe()}: {st.name} ({st.reason})")
    return rows

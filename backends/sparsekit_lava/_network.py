"""One compiled, running Lava network and its lifecycle: run in cycles, stop exactly once.

Lava's simulator runs every process in its own forked OS process. A network that
is never stopped keeps those children alive and the interpreter hangs at exit
(multiprocessing joins them); running a network after ``stop()`` segfaults. So:

* every ``Network`` is stopped by ``Plan.close()``; whatever is still running when
  the interpreter shuts down is stopped by a hook that runs *before* Python joins
  threads and child processes (``threading._register_atexit``, what
  ``concurrent.futures`` uses; plain ``atexit`` where it does not exist), so a
  failing test or an interrupted benchmark cannot hang the exit;
* a stopped network refuses to run again (``RuntimeError``) instead of crashing;
* at most one network is live per process: compiling a new one stops the others
  (two live Lava networks in one process hang when stopped).

Time alignment. The synapse processes deliver their output one step late. Inputs
come from a ``RingBuffer`` of ``cycle`` columns whose column 0 is silent (zeros);
``prepare`` runs one warm-up step (the silent column), after which every call runs
exactly ``cycle`` steps: steps 2..cycle inject the real columns and the outputs
read at those steps plus the next are the results of this call only, whatever
state the previous call left (the silent step flushes it; LIF state is reset
by ``Reset`` processes at the same phase).
"""
from __future__ import annotations

import atexit
import threading
import weakref

import numpy as np

_live: "weakref.WeakSet[Network]" = weakref.WeakSet()
_hook_installed = False


def stop_all() -> int:
    """Stop every network still running (the interpreter-exit hook); returns how many."""
    n = 0
    for net in list(_live):
        if net.running:
            net.stop()
            n += 1
    return n


def live_networks() -> int:
    """How many networks are compiled and not yet stopped (tests use this)."""
    return sum(1 for net in list(_live) if net.running)


def _install_exit_hook() -> None:
    global _hook_installed
    if _hook_installed:
        return
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(stop_all)
    else:  # pragma: no cover - CPython < 3.9
        atexit.register(stop_all)
    _hook_installed = True


class Network:
    """A Lava network driven from ``source`` and read through ``extractors``.

    ``cycle``: steps per call. ``compile(run_cfg)`` builds, compiles and runs the
    warm-up step; ``run_cycle()`` runs one call and returns, per extractor, a
    (cycle, size) float64 array of what it received at each step.
    """

    def __init__(self, source, extractors, cycle: int):
        self.source = source
        self.extractors = list(extractors)
        self.cycle = int(cycle)
        self.steps_run = 0
        self._compiled = False
        self._stopped = False

    @property
    def running(self) -> bool:
        return self._compiled and not self._stopped

    def compile(self, run_cfg, RunSteps) -> None:
        self._RunSteps = RunSteps
        _install_exit_hook()
        # One live network per process: Lava forks its processes, and a second network's
        # children inherit the first one's channels, after which stopping either hangs
        # in join (seen with lava 0.10.0). So an older network is stopped first; its plan
        # then refuses to run (RuntimeError) instead of hanging.
        stop_all()
        _live.add(self)
        try:
            # the first run builds, compiles and starts the processes: the warm-up step
            self.source.run(condition=RunSteps(num_steps=1), run_cfg=run_cfg)
            self._compiled = True
            for ext in self.extractors:
                ext.receive()  # the silent column's output (zeros)
        except BaseException:
            self._compiled = True  # whatever started must be stopped
            self.stop()
            raise
        self.steps_run = 1

    def run_cycle(self) -> list[np.ndarray]:
        if self._stopped:
            raise RuntimeError("this Lava network was stopped (plan closed); it cannot run again")
        if not self._compiled:
            raise RuntimeError("the Lava network has not been compiled")
        n = self.cycle
        # non-blocking run: the extractors' channels are drained while the network steps
        self.source.run(condition=self._RunSteps(num_steps=n, blocking=False))
        try:
            outs = [np.empty((n,) + tuple(ext._shape), dtype=np.float64) for ext in self.extractors]
            for t in range(n):
                for out, ext in zip(outs, self.extractors):
                    out[t] = ext.receive()
        finally:
            self.source.wait()
        self.steps_run += n
        return outs

    def stop(self) -> None:
        """Stop the runtime (idempotent); the network can never run again."""
        if self._stopped:
            return
        self._stopped = True
        if self._compiled:
            try:
                self.source.stop()
            finally:
                _live.discard(self)

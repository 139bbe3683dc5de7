"""One compiled, running Lava network and its lifecycle: run in cycles, stop exactly once.

Lava's simulator runs every process of a network in its own forked OS process
(``sparsekit_lava._children``); they are not daemons, so ``multiprocessing`` joins
them when the interpreter exits, and they only end when the network is stopped.

Why a network must be stopped explicitly, and what happened when it was not:
Lava's ``Runtime.__del__`` would stop it, but it never runs -- Lava's global
``ProcessServer`` keeps a reference to every process ever built, and each process
to its runtime. So a plan dropped without ``close()`` left its network running
with no handle left to stop it. The registry used to be a ``WeakSet``: the dropped
``Network`` vanished from it, the interpreter-exit hook found nothing to stop, and
``multiprocessing`` then joined children that were still waiting for their next
command -- the exit hung. The next ``prepare`` also forked a new network while the
orphan was still running, breaking the one-live-network rule below. Interleaving
other backends mattered only through the caller's variable: ``plan =
backend(b).prepare(p)`` for a non-Lava ``b`` dropped the last Lava plan *before* the
next Lava ``prepare``, whereas a Lava-only loop still held the old plan while the
next one compiled (and stopped it), and still held the last one at exit.

The rules now:

* the registry holds every live network strongly: a live network is an OS
  resource, released only by stopping it, never by the garbage collector;
* a ``Plan`` dropped without ``close()`` stops its network (``bind``: a
  ``weakref.finalize`` on the plan). A finalizer can run at any point, in any
  thread (a plan caught in a reference cycle is finalised by the cyclic GC), so
  it stops the network at once only when no other network operation is in
  progress; otherwise the network is marked orphaned and whoever holds the lock
  stops it when its operation ends (at the latest, the exit hook does);
* whatever is still running when the interpreter shuts down is stopped by a hook
  that runs *before* Python joins threads and child processes
  (``threading._register_atexit``, what ``concurrent.futures`` uses);
* a stop never hangs: Lava's graceful stop runs in a helper thread with a deadline
  (``STOP_TIMEOUT_S``) and only when every child is alive and the network is
  idle; otherwise -- interrupted mid-run (Ctrl-C), a child gone, no answer in
  time -- the children are killed. The children also die with this process
  (SIGTERM, SIGKILL) and ignore Ctrl-C (``sparsekit_lava._children``);
* a stopped network refuses to run again (``RuntimeError``) instead of crashing;
* at most one network is live per process: compiling a new one stops the others
  (two live Lava networks in one process hang when stopped: the second network's
  children inherit the first one's channels);
* stopping removes the network's processes from Lava's ``ProcessServer``, so a
  closed or dropped plan's weights and channels can be freed.

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
import contextlib
import multiprocessing
import os
import threading
import warnings
import weakref

import numpy as np

from . import _children

#: how long Lava's graceful stop may take before the network's processes are killed
#: (a healthy stop takes ~10 ms)
STOP_TIMEOUT_S = 5.0

_live: "set[Network]" = set()
#: one network operation (compile, call, stop) at a time, in any thread
_lock = threading.Lock()
_hook_pid: int | None = None  # the process whose networks the exit hook stops


def _reset_in_child() -> None:
    # a forked child (Lava's own processes among them: Lava forks while compile holds the
    # lock) inherits the registry and the lock, but none of the networks are its own
    global _lock, _live
    _lock = threading.Lock()
    _live = set()


os.register_at_fork(after_in_child=_reset_in_child)


@contextlib.contextmanager
def _exclusive():
    """Hold the lock for one operation; stop networks orphaned meanwhile before letting go."""
    with _lock:
        try:
            yield
        finally:
            _stop_orphans_locked()


def _stop_orphans_locked() -> None:
    for net in list(_live):
        if net._orphaned:
            net._stop_locked()


def _stop_all_locked() -> int:
    n = 0
    for net in list(_live):
        if net.running:
            net._stop_locked()
            n += 1
    return n


def stop_all() -> int:
    """Stop every network still running; returns how many."""
    with _exclusive():
        return _stop_all_locked()


def live_networks() -> int:
    """How many networks are compiled and not yet stopped (tests use this)."""
    return sum(1 for net in list(_live) if net.running)


def _at_exit() -> None:
    if os.getpid() != _hook_pid:  # a forked child inherits the hook: its networks are not its own
        return
    if _lock.acquire(timeout=STOP_TIMEOUT_S):
        try:
            _stop_all_locked()
        finally:
            _lock.release()
    else:  # another thread is stuck inside a network operation: do not wait on Lava at all
        for net in list(_live):
            net._kill()


def _install_exit_hook() -> None:
    global _hook_pid
    if _hook_pid == os.getpid():
        return
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(_at_exit)
    else:  # pragma: no cover - CPython < 3.9
        atexit.register(_at_exit)
    _hook_pid = os.getpid()


def _on_plan_dropped(net: "Network") -> None:
    """``weakref.finalize`` callback of a plan garbage-collected without ``close()``."""
    net._orphaned = True
    if _lock.acquire(blocking=False):
        try:
            _stop_orphans_locked()
        finally:
            _lock.release()
    # else an operation is in progress (maybe in this very thread, if the cyclic GC ran
    # inside it): _exclusive stops the orphan when that operation ends


def _call_within(seconds: float, fn) -> tuple[bool, BaseException | None]:
    """Run ``fn`` in a helper thread: (finished within ``seconds``, its exception)."""
    box: list = [None]

    def target():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - reported to the caller
            box[0] = e

    t = threading.Thread(target=target, daemon=True, name="sparsekit-lava-stop")
    try:
        t.start()
    except RuntimeError:  # no new threads while the interpreter finalises
        return False, None
    t.join(seconds)
    return not t.is_alive(), box[0]


class Network:
    """A Lava network driven from ``source`` and read through ``extractors``.

    ``cycle``: steps per call. ``processes``: every Lava process of the network
    (dropped from Lava's global registries when it stops, see ``_release``). ``compile(run_cfg)``
    builds, compiles and runs the warm-up step; ``run_cycle()`` runs one call and
    returns, per extractor, a (cycle, size) float64 array of what it received at
    each step. ``bind(plan)`` ties the network's life to the plan's.
    """

    def __init__(self, source, extractors, cycle: int, processes):
        self.source = source
        self.extractors = list(extractors)
        self.cycle = int(cycle)
        self.processes = list(processes)
        self.steps_run = 0
        self._compiled = False
        self._stopped = False
        self._orphaned = False
        self._children: list = []
        self._finalizer = None

    @property
    def running(self) -> bool:
        return self._compiled and not self._stopped

    def compile(self, run_cfg, RunSteps) -> None:
        self._RunSteps = RunSteps
        _install_exit_hook()
        with _exclusive():
            # one live network per process (see the module doc): older ones stop first,
            # and their plans then refuse to run (RuntimeError) instead of hanging
            _stop_all_locked()
            _live.add(self)
            before = set(multiprocessing.active_children())
            try:
                try:
                    with _children.forking_network():
                        # the first run builds, compiles and starts the processes: the warm-up step
                        self.source.run(condition=RunSteps(num_steps=1), run_cfg=run_cfg)
                finally:
                    self._compiled = True  # whatever started must be stopped
                    self._children = _children.lava_children(set(multiprocessing.active_children()) - before)
                for ext in self.extractors:
                    ext.receive()  # the silent column's output (zeros)
            except BaseException:
                self._stop_locked(graceful=False)
                raise
        self.steps_run = 1

    def bind(self, plan) -> None:
        """Stop this network when ``plan`` is garbage-collected without ``close()``."""
        self._finalizer = weakref.finalize(plan, _on_plan_dropped, self)
        self._finalizer.atexit = False  # the exit hook has stopped everything by then

    def run_cycle(self) -> list[np.ndarray]:
        with _exclusive():
            if self._stopped:
                raise RuntimeError("this Lava network was stopped (plan closed, or a newer network "
                                   "compiled in this process); it cannot run again")
            if not self._compiled:
                raise RuntimeError("the Lava network has not been compiled")
            n = self.cycle
            try:
                # non-blocking run: the extractors' channels are drained while the network steps
                self.source.run(condition=self._RunSteps(num_steps=n, blocking=False))
                outs = [np.empty((n,) + tuple(ext._shape), dtype=np.float64) for ext in self.extractors]
                for t in range(n):
                    for out, ext in zip(outs, self.extractors):
                        out[t] = ext.receive()
                self.source.wait()
            except BaseException:
                # interrupted mid-run (Ctrl-C) or failed: the runtime is still stepping, its
                # outputs unread, so it can be neither waited for nor stopped gracefully
                self._stop_locked(graceful=False)
                raise
            self.steps_run += n
            return outs

    def stop(self) -> None:
        """Stop the runtime (idempotent); the network can never run again."""
        with _exclusive():
            self._stop_locked()

    def _stop_locked(self, graceful: bool = True) -> None:
        if self._stopped:
            return
        self._stopped = True
        _live.discard(self)
        if self._finalizer is not None:
            self._finalizer.detach()
        stopped = False
        try:
            if graceful and self._compiled and all(p.is_alive() for p in self._children):
                stopped, error = _call_within(STOP_TIMEOUT_S, self.source.stop)
                if error is not None or not stopped:
                    why = f"failed ({error!r})" if error is not None else f"did not answer within {STOP_TIMEOUT_S} s"
                    warnings.warn(f"stopping a Lava network {why}; its processes were killed", RuntimeWarning,
                                  stacklevel=3)
                    stopped = False
        finally:
            if not stopped:
                self._kill()
            self._release()

    def _kill(self) -> None:
        """End the network's processes without Lava's protocol (they may be dead or mid-run)."""
        _children.kill(self._children)
        rt = self.source.runtime
        if rt is not None:
            # Lava's Runtime.__del__ calls stop() while it believes it is started, which would
            # block forever on the dead children once the runtime is garbage-collected
            rt._is_started = False
            rt._is_running = False
            with contextlib.suppress(Exception):
                rt.join()  # releases its ports' threads
            # the killed SharedMemoryManager server cannot unlink the channels' segments;
            # unlink them here (else multiprocessing's resource tracker reports them leaked)
            smm = getattr(getattr(rt, "_messaging_infrastructure", None), "smm", None)
            for handle in getattr(smm, "_shared_memory_handles", ()):
                with contextlib.suppress(Exception):
                    handle.close()
                    handle.unlink()

    def _release(self) -> None:
        """Free what Lava's stop leaves behind: the extractors' host-side ports (their
        threads wait forever otherwise, one per network), and this network's entries in
        Lava's global ``ProcessServer`` and ``VarServer``, which keep every process and Var
        ever built -- and through them the runtime, the weights and the channels -- alive."""
        from lava.magma.core.process.process import ProcessServer
        from lava.magma.core.process.variable import VarServer

        for ext in self.extractors:
            port = getattr(ext.out_port, "external_pipe_csp_recv_port", None)
            if port is not None:
                port.join()  # tells its thread to end ...
                if getattr(port, "thread", None) is not None:
                    port.thread.join(_children.REAP_TIMEOUT_S)  # ... and waits until it has

        # both registries only hand out ids (a counter) and append: removing entries is safe
        procs = ProcessServer()
        mine = {id(p) for p in self.processes}
        procs.processes = [p for p in procs.processes if id(p) not in mine]
        variables = VarServer()
        mine = {id(v) for p in self.processes for v in p.vars}
        variables.vars = [v for v in variables.vars if id(v) not in mine]

"""Fault isolation for sweeps: each backend runs in a worker process.

A native library that segfaults, a simulator that hangs or a device that runs
out of memory must cost one row of a sweep, not the sweep. ``run_isolated``
(used by ``sweep(isolate=True)`` and so by ``sparsekit run``) starts one worker
per backend with the ``spawn`` start method -- a fresh interpreter: nothing is
forked after a GPU runtime has started -- keeps it for all of that backend's
problems (its JIT caches and dense baselines stay warm) and sends it one problem
at a time as parameters; the worker regenerates the problem from its seed
(generation is deterministic), measures it with ``sparsekit.measure.measure`` and sends
back the Row.

- no answer within ``timeout`` seconds: the worker's whole process group is
  killed, the row reads ``timeout``, the next problem gets a fresh worker;
- the worker dies (a signal, ``os._exit``): the row reads ``crashed`` with the
  signal's name, and the next problem gets a fresh worker;
- it raises: ``error`` with the message (``oom`` for out-of-memory errors).

Each worker leads its own session (``os.setsid``): a terminal's Ctrl-C reaches
only the main process, which kills every worker's process group -- with
whatever the worker started, such as a Lava runtime -- before it returns.
"""
from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import signal
import time

_CTX = mp.get_context("spawn")
#: seconds a worker gets to exit after being asked to, before it is killed
_GRACE = 5.0
_live: set["Worker"] = set()
#: seconds a worker may take to start and load its backend (at least; --timeout if larger)
STARTUP_TIMEOUT = 120.0


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


class Worker:
    """One backend's worker process, talking over a pipe."""

    def __init__(self, backend: str):
        self.backend = backend
        parent, child = _CTX.Pipe(duplex=True)
        self.proc = _CTX.Process(target=serve, args=(child, backend), name=f"sparsekit-worker-{backend}")
        # not daemonic: a daemonic process may not start children, and Lava's runtime is made of them
        self.proc.start()
        child.close()  # so that the worker's death reads as EOF here
        self.conn = parent
        _live.add(self)

    def request(self, message, timeout: float | None):
        try:
            self.conn.send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
            return self._died()
        return self.wait(timeout)

    def wait(self, timeout: float | None):
        """("msg", payload), ("timeout", None) or ("crashed", reason)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:  # poll in slices so Ctrl-C is seen promptly
            left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if left <= 0:
                return "timeout", None
            if self.conn.poll(left):
                try:
                    return "msg", self.conn.recv()
                except (EOFError, OSError, ConnectionResetError):
                    return self._died()
            if not self.proc.is_alive() and not self.conn.poll(0):
                return self._died()

    def _died(self):
        self.proc.join(_GRACE)
        code = self.proc.exitcode
        self.kill()  # its children, if any
        if code is None:
            return "crashed", "worker stopped answering"
        if code < 0:
            return "crashed", f"worker killed by {_signal_name(-code)}"
        return "crashed", f"worker exited with status {code}"

    def stop(self) -> None:
        """Ask the worker to finish; kill it if it does not."""
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.proc.join(_GRACE)
        self.kill()

    def kill(self) -> None:
        """Kill the worker's process group (the worker and anything it started) and reap it."""
        pid = self.proc.pid
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)  # the worker leads its own group (setsid in serve)
            except (ProcessLookupError, PermissionError):
                pass
            if self.proc.is_alive():
                try:
                    os.kill(pid, signal.SIGKILL)  # killed before it reached setsid
                except ProcessLookupError:
                    pass
            self.proc.join(_GRACE)
        try:
            self.conn.close()
        except OSError:
            pass
        _live.discard(self)


@atexit.register
def _kill_all() -> None:  # an interpreter exiting through an unexpected path leaves no worker behind
    for w in list(_live):
        w.kill()


def run_isolated(kernel, names, problems, *, dtype, seed, repeat, dense, timeout, emit, notes,
                 on_backend=None, skip=lambda n: None) -> None:
    """The body of ``sweep(isolate=True)``: backend by backend, each in its worker."""
    from .kernels import get_kernel
    from .registry import backends
    from .preflight import footprint_bytes
    from .resources import format_bytes
    from .measure import BadProblem, row_skeleton

    spec = get_kernel(kernel)
    records = {r.name: r for r in backends()}
    for name in names:
        rec = records.get(name)
        if rec is not None and not rec.available:
            notes.append(f"{name}: skipped, {rec.reason}")
            skip(len(problems))
            continue
        worker = None
        announced = False
        try:
            for i, params in enumerate(problems):
                if worker is None:
                    worker = Worker(name)
                    # importing a backend (CUDA context, OpenCL compiler) is not a problem's time: it gets
                    # its own, larger allowance, so a short --timeout does not misfire on a loaded host
                    state, msg = worker.wait(None if timeout is None else max(timeout, STARTUP_TIMEOUT))
                    if state == "msg" and msg[0] == "unavailable":
                        notes.append(f"{name}: skipped, {msg[1]}")
                        worker.stop()
                        worker = None
                        skip(len(problems) - i)
                        break
                    if state != "msg":  # died or hung while importing the backend
                        worker.kill()
                        worker = None
                        row = row_skeleton(spec, name, params)
                        row.status = state
                        row.detail = (f"timed out after {max(timeout, STARTUP_TIMEOUT):g} s loading the backend"
                                      if state == "timeout"
                                      else f"{msg} while loading the backend")
                        emit(row, i)
                        continue
                    if not announced and on_backend is not None:
                        on_backend(name, msg[1])
                    announced = True
                state, msg = worker.request(("run", kernel, params, dtype, seed, repeat, dense), timeout)
                if state == "msg" and msg[0] == "row":
                    emit(msg[1], i)
                    continue
                if state == "msg" and msg[0] == "bad-problem":
                    raise BadProblem(msg[1])
                row = row_skeleton(spec, name, params)
                row.status = state
                if state == "timeout":
                    worker.kill()
                    row.detail = f"timed out after {timeout:g} s (worker killed)"
                else:
                    row.detail = str(msg)
                    if "SIGKILL" in row.detail:
                        need = footprint_bytes(kernel, params, dtype)
                        row.detail += (f" (possibly the kernel's out-of-memory killer: this problem needs about "
                                       f"{format_bytes(need)})")
                worker = None
                emit(row, i)
        except BaseException:
            if worker is not None:
                worker.kill()  # busy or not: Ctrl-C and errors must not wait for a kernel to finish
                worker = None
            raise
        finally:
            if worker is not None:
                worker.stop()


def serve(conn, backend: str) -> None:
    """Worker main loop: load ``backend``, then measure each problem sent until told to stop."""
    try:
        os.setsid()  # own session and process group: the parent can kill everything we start
    except OSError:
        pass
    # The spawn bootstrap fixed this process's default start method; a backend may choose its own
    # (Lava calls mp.set_start_method("fork") on import and fails if one is set): unset it.
    mp.set_start_method(None, force=True)
    from .host import pin_malloc_threshold

    pin_malloc_threshold()  # large temporaries cost the same whatever the worker ran before
    from ._errors import BackendUnavailable, UnknownBackendError
    from .kernels import get_kernel
    from .registry import backend as get_backend
    from .preflight import out_of_memory_message
    from .measure import BadProblem, describe_backend, generate, measure, row_skeleton

    try:
        be = get_backend(backend)
    except BackendUnavailable as e:
        conn.send(("unavailable", e.reason))
        return
    except UnknownBackendError:
        conn.send(("unavailable", "not registered through an entry point (registry.register() is seen only by "
                                  "the process that called it): run it with --in-process / isolate=False"))
        return
    conn.send(("ready", describe_backend(be)))
    dense_times: dict = {}
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if msg is None:
            return
        _, kernel, params, dtype, seed, repeat, dense = msg
        spec = get_kernel(kernel)
        try:
            problem = generate(kernel, params, dtype, seed)
        except BadProblem as e:
            conn.send(("bad-problem", str(e)))
            continue
        except MemoryError as e:
            row = row_skeleton(spec, backend, params)
            row.status, row.detail = "oom", out_of_memory_message(e, kernel, params, dtype) + " while generating it"
            conn.send(("row", row))
            continue
        row = measure(be, spec, problem, dtype, seed, repeat, dense, dense_times)
        del problem
        conn.send(("row", row))

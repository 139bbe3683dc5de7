"""The OS processes Lava forks for a network: they never outlive this process.

Lava's simulator runs every process of a network (and its runtime service and a
``SharedMemoryManager`` server) in a child forked with ``multiprocessing``; the
children are not daemons and wait on shared-memory channels for the next command
from this process. Nothing in Lava ends them when this process dies without
stopping the network, so a parent killed by SIGTERM or SIGKILL left them blocked
forever (reparented to init), each holding its share of the network's memory.

While ``forking_network()`` is active (the compile step, where Lava forks), every
forked child

* watches a pipe whose write end only this process holds, and exits as soon as it
  reads end-of-file: the kernel closes that end when this process ends, however
  it ends. (Unlike ``PR_SET_PDEATHSIG`` this is not tied to the *thread* that forked,
  and it is not Linux-only);
* ignores SIGINT, so a Ctrl-C at the terminal (sent to the whole process group)
  interrupts this process only. Its ``KeyboardInterrupt`` then stops the network
  through the normal path; a child that died of the same Ctrl-C would instead
  leave the network unable to stop gracefully.

Every fork -- ours or not -- closes its copy of the write end, so only this process
holds it and its death alone is what the children see.

``kill(processes)`` ends children that cannot be stopped gracefully (interrupted
mid-run, a dead sibling, a stop that did not answer in time).
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading

_pipe: tuple[int, int] | None = None  # (read end, write end); created once, in the parent
_forking = False  # True (in the parent, hence in its fork) while a network is being built
_hook_installed = False
_setup_lock = threading.Lock()

#: how long to wait for a killed child to be reaped
REAP_TIMEOUT_S = 5.0


def _after_fork_in_child() -> None:
    global _pipe
    if _pipe is None:
        return
    r, w = _pipe
    _pipe = None  # a child of this child is not watched through our pipe
    os.close(w)  # only the parent may hold the write end
    if not _forking:
        os.close(r)
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_parent_dies, args=(r,), daemon=True,
                     name="sparsekit-lava-parent-watch").start()


def _exit_when_parent_dies(r: int) -> None:
    # nobody ever writes to the pipe: read returns b"" only once the parent's end is closed
    while os.read(r, 1):
        pass
    os._exit(1)


def _install() -> None:
    global _pipe, _hook_installed
    with _setup_lock:
        if _pipe is None:
            _pipe = os.pipe()  # non-inheritable: an exec'd program never holds it
        if not _hook_installed:
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _hook_installed = True


@contextlib.contextmanager
def forking_network():
    """Within the block, forked children die with this process and ignore SIGINT."""
    global _forking
    _install()
    _forking = True
    try:
        yield
    finally:
        _forking = False


def lava_children(processes) -> list:
    """Of ``multiprocessing`` children, those Lava starts for a network: its actors
    (``SystemProcess``) and the ``SharedMemoryManager`` server."""
    from lava.magma.runtime.message_infrastructure.multiprocessing import SystemProcess

    return [p for p in processes
            if isinstance(p, SystemProcess) or p.name.startswith("SharedMemoryManager")]


def kill(processes) -> None:
    """SIGKILL every process still alive, then reap them (bounded wait)."""
    for p in processes:
        with contextlib.suppress(Exception):
            if p.is_alive():
                p.kill()
    from multiprocessing.process import BaseProcess

    for p in processes:
        with contextlib.suppress(Exception):
            # the base class's join: Lava's SystemProcess.join takes no timeout
            BaseProcess.join(p, REAP_TIMEOUT_S)

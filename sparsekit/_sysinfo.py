"""Cheap facts about the host, for backend descriptions and result metadata."""
from __future__ import annotations

import functools
import os
import platform


@functools.lru_cache(maxsize=None)
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def thread_policy() -> int:
    """Threads a host library should use: SPARSEKIT_NUM_THREADS, else OMP_NUM_THREADS,
    else every usable core (the Makefile and benchmarks pin all pools the same way)."""
    for var in ("SPARSEKIT_NUM_THREADS", "OMP_NUM_THREADS"):
        env = os.environ.get(var, "").strip()
        if env:
            try:
                return max(1, int(env.split(",")[0]))  # OMP_NUM_THREADS may list nested levels
            except ValueError:
                raise ValueError(f"{var} must be an integer, got {env!r}") from None
    return cpu_count()


def cpu_description() -> str:
    return f"{cpu_model()}, {cpu_count()} cores"


def machine_name() -> str:
    """A stable asv machine name for this kind of host: CPU model and core count.

    Hostnames of sandboxes and CI runners change from run to run; results of the
    same hardware should land in one ``results/<machine>`` folder.
    """
    import re

    model = re.sub(r"[^a-z0-9]+", "-", cpu_model().lower()).strip("-")
    model = re.sub(r"-(processor|cpu|\d+-core)$", "", model)
    return f"{model or 'cpu'}-{cpu_count()}c"


if __name__ == "__main__":  # used by the Makefile
    print(machine_name())

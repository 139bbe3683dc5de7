"""Memory: how much the host has, sizes for people, and out-of-memory errors recognised.

The loaders use ``available_memory`` to reject files whose headers declare more data
than the host could hold; a problem's own footprint, estimated before it is generated,
is ``sparsekit.preflight``'s (it needs the kernel catalogue, which this module does not).
"""
from __future__ import annotations

import os


class TooLarge(ValueError):
    """A problem or file whose estimated footprint exceeds the memory available."""


def available_memory() -> int | None:
    """Bytes the host can give a new allocation now (``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def format_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``: sizes in error messages, binary units."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


#: substrings of device-library errors that mean "the device ran out of memory"
_OOM_MARKERS = ("out of memory", "outofmemory", "cudaerrormemoryallocation", "mem_object_allocation_failure",
                "cl_out_of_resources", "out_of_host_memory", "cannot allocate memory", "failed to allocate")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for MemoryError and device OOM errors (CuPy, torch, OpenCL), recognised by type or message."""
    if isinstance(exc, MemoryError):
        return True
    text = f"{type(exc).__name__} {exc}".lower().replace(" ", "")
    return any(marker.replace(" ", "") in text for marker in _OOM_MARKERS)

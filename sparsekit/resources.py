"""Memory: how much a problem will need, how much the host has, and messages with sizes.

``sparsekit run`` estimates a problem's footprint from its parameters *before*
generating it and refuses one that cannot fit (``--force`` overrides), so a
typo such as ``--shape 409600x4096x128`` gives a sentence with sizes instead
of the kernel's OOM killer. The loaders use ``available_memory`` to reject
files whose headers declare more data than the host could hold.
"""
from __future__ import annotations

import os

import numpy as np


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


def _itemsize(dtype) -> int:
    try:
        return np.dtype(dtype).itemsize
    except TypeError:  # bfloat16 and friends are stored as float32 on the host
        return 4


#: interpreter, libraries and small temporaries: present whatever the problem's size
_BASELINE = 64 * 2**20


def footprint_bytes(kernel: str, params: dict, dtype="float32") -> int:
    """Estimated peak host bytes to generate, check and time one problem (``run``'s pre-flight check).

    Counts what is allocated from the parameters alone -- before anything is
    generated. The float64 oracle, the error bound (|W| @ |X| in float64), the
    mask generation and the dense baseline each hold m*k- or m*n-sized float64
    arrays for a while; the factors were fitted to the peaks ``tracemalloc``
    measured on the numpy backend (spmm, sddmm, gather_mm, sparse_sparse, kwta,
    lif, moe, dense_mm; float32 and float64) and are rounded up: an estimate
    that errs high by 2x costs a ``--force``, one that errs low costs an OOM kill.
    """
    it = max(_itemsize(dtype), 8)  # the oracles work in float64 whatever the problem's dtype
    p = dict(params)
    s = p.get("sparsity")
    density = 1.0 if s is None else min(1.0, max(0.0, 1.0 - float(s)))
    if kernel == "lif":
        n_in, n_out, steps = (int(p.get(k) or 0) for k in ("n_in", "n_out", "steps"))
        return int(_BASELINE + 4 * n_in * n_out * it + 4 * steps * (n_in + n_out) * it)
    if kernel == "kwta":
        m, n = (int(p.get(k) or 0) for k in ("m", "n"))
        return int(_BASELINE + 8 * m * n * it)
    m, k, n = (int(p.get(key) or 0) for key in ("m", "k", "n"))
    if kernel == "moe":
        experts = int(p.get("experts") or 8)
        return int(_BASELINE + 3 * experts * m * k * it + 6 * (k * n + m * n) * it)
    if kernel == "gather_mm":  # all m rows are stored, only the selected (1 - sparsity) are worked on
        mk = (2 + 12 * density) * m * k
    else:
        mk = (4 if kernel == "dense_mm" else 14) * m * k  # sparse kernels also hold their dense baseline
    total = _BASELINE + mk * it + 6 * (k * n + m * n) * it
    if kernel == "sddmm":  # the oracle gathers a k-vector per output nonzero
        total += density * m * n * k * it
    return int(total)


def check_fits(kernel: str, params: dict, dtype="float32", available: int | None = None) -> None:
    """Raise ``TooLarge`` naming the sizes when ``footprint_bytes`` exceeds available memory."""
    available = available_memory() if available is None else available
    if available is None:
        return
    need = footprint_bytes(kernel, params, dtype)
    if need > available:
        shape = "x".join(str(params[k]) for k in ("m", "k", "n", "n_in", "n_out", "steps") if params.get(k))
        raise TooLarge(
            f"{kernel} {shape or ''} ({dtype}) needs about {format_bytes(need)} of host memory but only "
            f"{format_bytes(available)} is available; use a smaller --shape, or --force to try anyway"
        )


def out_of_memory_message(exc: BaseException, kernel: str, params: dict, dtype="float32") -> str:
    """'out of memory: ...' with the problem's estimated footprint and what the host has."""
    need = footprint_bytes(kernel, params, dtype)
    avail = available_memory()
    have = f", {format_bytes(avail)} available on the host" if avail is not None else ""
    what = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return f"out of memory: problem needs about {format_bytes(need)}{have} ({what})"


#: substrings of device-library errors that mean "the device ran out of memory"
_OOM_MARKERS = ("out of memory", "outofmemory", "cudaerrormemoryallocation", "mem_object_allocation_failure",
                "cl_out_of_resources", "out_of_host_memory", "cannot allocate memory", "failed to allocate")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for MemoryError and device OOM errors (CuPy, torch, OpenCL), recognised by type or message."""
    if isinstance(exc, MemoryError):
        return True
    text = f"{type(exc).__name__} {exc}".lower().replace(" ", "")
    return any(marker.replace(" ", "") in text for marker in _OOM_MARKERS)

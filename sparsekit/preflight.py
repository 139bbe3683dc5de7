"""Before a problem is generated: how much memory it will need, and a refusal with sizes.

``sparsekit run`` estimates each problem's footprint from its parameters *before*
generating it (each kernel's ``KernelSpec.footprint_bytes``) and refuses one that
cannot fit (``--force`` overrides), so a typo such as ``--shape 409600x4096x128``
gives a sentence with sizes instead of the kernel's OOM killer.
"""
from __future__ import annotations

from .kernels import get_kernel
from .resources import TooLarge, available_memory, format_bytes


def footprint_bytes(kernel: str, params: dict, dtype="float32") -> int:
    """Estimated peak host bytes to generate, check and time one problem (``run``'s pre-flight check).

    Each kernel's ``KernelSpec.footprint_bytes`` counts what is allocated from the
    parameters alone -- before anything is generated. The float64 oracle, the error bound
    (|W| @ |X| in float64), the mask generation and the dense baseline each hold m*k- or
    m*n-sized float64 arrays for a while; the factors were fitted to the peaks
    ``tracemalloc`` measured on the numpy backend (every kernel, float32 and float64) and
    are rounded up: an estimate that errs high by 2x costs a ``--force``, one that errs low
    costs an OOM kill.
    """
    return int(get_kernel(kernel).footprint_bytes(dict(params), dtype))


def check_fits(kernel: str, params: dict, dtype="float32", available: int | None = None) -> None:
    """Raise ``TooLarge`` naming the sizes when ``footprint_bytes`` exceeds available memory."""
    available = available_memory() if available is None else available
    if available is None:
        return
    need = footprint_bytes(kernel, params, dtype)
    if need > available:
        axes = get_kernel(kernel).shape_axes
        shape = "x".join(str(params[k]) for k in axes if params.get(k))
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

"""Floating-point types a problem can be posed in, and their rounding units.

Half precision is held on the host as float32 arrays whose values are exactly
representable in the half type (``bfloat16`` has no NumPy dtype, and
``scipy.sparse`` has no float16), so a backend converting them loses nothing.
"""
from __future__ import annotations

import numpy as np

#: unit roundoff u = 2**-p for a p-bit significand (round to nearest)
UNIT_ROUNDOFF = {
    "float16": 2.0**-11,
    "bfloat16": 2.0**-8,
    "float32": 2.0**-24,
    "float64": 2.0**-53,
}
DTYPES = tuple(UNIT_ROUNDOFF)
_HOST = {"float16": np.float32, "bfloat16": np.float32, "float32": np.float32, "float64": np.float64}


def check_dtype(name) -> str:
    """Return the canonical dtype name, or raise ``ValueError`` naming the choices."""
    if isinstance(name, np.dtype) or (isinstance(name, type) and issubclass(name, np.generic)):
        name = np.dtype(name).name
    if not isinstance(name, str) or name not in UNIT_ROUNDOFF:
        raise ValueError(f"unknown dtype {name!r}: choose one of {', '.join(DTYPES)}")
    return name


def host_dtype(name: str) -> np.dtype:
    """NumPy dtype of the host arrays for a problem of dtype ``name``."""
    return np.dtype(_HOST[check_dtype(name)])


def to_host(a: np.ndarray, name: str) -> np.ndarray:
    """Cast ``a`` to the host representation of dtype ``name`` (rounding as that type would)."""
    name = check_dtype(name)
    if name == "float16":
        with np.errstate(over="ignore"):  # out-of-range values become inf, as float16 does
            return np.ascontiguousarray(np.asarray(a).astype(np.float16).astype(np.float32))
    if name != "bfloat16":
        return np.ascontiguousarray(a, dtype=_HOST[name])
    # Round float32 to the nearest bfloat16 (ties to even) by its bit pattern.
    f = np.ascontiguousarray(a, dtype=np.float32)
    bits = f.view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    out = rounded.view(np.float32)
    return np.where(np.isfinite(f), out, f)


def unit_roundoff(name: str) -> float:
    return UNIT_ROUNDOFF[check_dtype(name)]

"""Backend discovery through the ``sparsekit.backends`` entry-point group.

An entry point names a cheap ``info()`` callable in the backend's package (its
``__init__`` must not import the heavy library). ``info()`` returns a dict::

    {"name": "cpu", "device": "...", "kernels": {"spmm": ("csr", "bsr"), ...},
     "dtypes": ("float32", "float64"), "requires": ("scipy", "numba"),
     "load": "sparsekit_cpu.backend:CpuBackend",
     "probe": <optional callable returning None, or a reason string why it cannot run>}

So ``sparsekit.backends()`` can list every backend, with why one is unavailable,
without importing CuPy, PyOpenCL, Lava or torch. ``backend(name)`` imports and
instantiates it on first use and caches the instance. A third-party package
registers the same way; tests may also call ``register``.
"""
from __future__ import annotations

import importlib
import importlib.util
import warnings
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Callable

from ._errors import BackendUnavailable, UnknownBackendError

GROUP = "sparsekit.backends"


@dataclass
class BackendRecord:
    """What ``sparsekit.backends()`` reports for one registered backend."""

    name: str
    available: bool
    reason: str
    device: str
    kernels: dict
    dtypes: tuple = ()
    load: str = ""
    source: str = ""
    requires: tuple = field(default_factory=tuple)

    def __str__(self) -> str:
        state = "available" if self.available else f"unavailable: {self.reason}"
        return f"{self.name} ({self.device}; {state})"


_extra: dict[str, Callable[[], dict]] = {}
_records: dict[str, BackendRecord] | None = None
_instances: dict[str, object] = {}


def register(name: str, info: Callable[[], dict]) -> None:
    """Register a backend without an installed entry point (tests, notebooks)."""
    _extra[name] = info
    reset()


def unregister(name: str) -> None:
    _extra.pop(name, None)
    reset()


def reset() -> None:
    """Forget cached discovery results and instances."""
    global _records
    _records = None
    _instances.clear()


def _record_from(name: str, source: str, get_info: Callable[[], dict]) -> BackendRecord:
    try:
        info = get_info()
    except Exception as e:  # a broken third-party package must not break the listing
        return BackendRecord(name, False, f"its info() failed: {type(e).__name__}: {e}", "?", {}, source=source)
    requires = tuple(info.get("requires", ()))
    missing = [mod for mod in requires if importlib.util.find_spec(mod) is None]
    reason = ""
    if missing:
        reason = f"missing Python package(s): {', '.join(missing)}"
    elif info.get("probe") is not None:
        try:
            reason = info["probe"]() or ""
        except Exception as e:
            reason = f"probe failed: {type(e).__name__}: {e}"
    return BackendRecord(
        name=name,  # the registered name is what backend(name) looks up
        available=not reason,
        reason=reason,
        device=str(info.get("device", "?")),
        kernels=dict(info.get("kernels", {})),
        dtypes=tuple(info.get("dtypes", ())),
        load=info.get("load", ""),
        source=source,
        requires=requires,
    )


def _discover() -> dict[str, BackendRecord]:
    global _records
    if _records is not None:
        return _records
    found: dict[str, BackendRecord] = {}
    for ep in unique_entry_points(GROUP, "backend"):
        try:
            get_info = ep.load()
        except Exception as e:
            found[ep.name] = BackendRecord(ep.name, False, f"cannot import {ep.value}: {type(e).__name__}: {e}", "?", {}, source=ep.value)
            continue
        found[ep.name] = _record_from(ep.name, ep.value, get_info)
    for name, get_info in _extra.items():
        if name in found:
            warnings.warn(f"sparsekit: register({name!r}) replaces the backend of that name from {found[name].source}",
                          stacklevel=3)
        found[name] = _record_from(name, "register()", get_info)
    _records = found
    return found


def unique_entry_points(group: str, what: str) -> list:
    """The group's entry points sorted by name, one per name: when two distributions
    register the same name, the first (by distribution name) is kept and a warning names
    both, instead of one silently shadowing the other."""
    kept: dict = {}
    for ep in sorted(entry_points(group=group), key=lambda e: (e.name, _dist_name(e))):
        if ep.name in kept:
            if ep.value != kept[ep.name].value:
                warnings.warn(f"sparsekit: two {what}s are registered as {ep.name!r}: {kept[ep.name].value} "
                              f"({_dist_name(kept[ep.name])}) is used, {ep.value} ({_dist_name(ep)}) is ignored",
                              stacklevel=4)
            continue
        kept[ep.name] = ep
    return list(kept.values())


def _dist_name(ep) -> str:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "name", "") or ""


def backends() -> list[BackendRecord]:
    """Every registered backend, available or not (with the reason), without heavy imports."""
    return list(_discover().values())


def backend_names() -> list[str]:
    return list(_discover())


def backend(name: str):
    """The backend instance called ``name`` (imported on first use, then cached).

    Raises ``UnknownBackendError`` (a KeyError) for a name nobody registers and
    ``BackendUnavailable`` when it cannot run here, with the reason.
    """
    if name in _instances:
        return _instances[name]
    records = _discover()
    if name not in records:
        raise UnknownBackendError(f"unknown backend {name!r}: registered are {', '.join(records) or 'none'}")
    rec = records[name]
    if not rec.available:
        raise BackendUnavailable(name, rec.reason)
    module, _, attr = rec.load.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
        inst = cls()
    except Exception as e:
        rec.available = False
        rec.reason = f"failed to load {rec.load}: {type(e).__name__}: {e}"
        raise BackendUnavailable(name, rec.reason) from e
    _instances[name] = inst
    return inst

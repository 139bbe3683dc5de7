"""The kernel catalogue: every kernel is defined here once, for all backends.

Each kernel module's class docstring is the contract for backends: the names,
shapes and layout of ``problem.inputs`` and of the result.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import dtypes
from .._errors import UnknownKernelError
from ..problem import Problem
from .base import BenchGrid, BenchPoint, Case, Check, KernelSpec, Ops, rel_error
from .dense_mm import DenseMM
from .gather_mm import GatherMM
from .kwta import KWTA
from .lif import LIF
from .moe import MoE
from .sddmm import SDDMM
from .sparse_sparse import SparseSparse
from .spmm import SpMM

#: the entry-point group through which a package adds kernels to the catalogue (as
#: ``sparsekit.backends`` adds backends): ``name = "package.module:SpecClass"``
GROUP = "sparsekit.kernels"
#: the core's own kernels, always present (even when sparsekit runs from a source tree
#: without an install, as the offline GPU kit does), in catalogue order
BUILTIN = (DenseMM, SpMM, SDDMM, GatherMM, KWTA, SparseSparse, LIF, MoE)

_specs: dict[str, KernelSpec] | None = None
_extra: dict[str, KernelSpec] = {}


def _catalogue() -> dict[str, KernelSpec]:
    """name -> spec: the built-in kernels, then those registered through ``GROUP``, then ``register_kernel``'s."""
    global _specs
    if _specs is None:
        from ..registry import unique_entry_points

        specs = {cls.name: cls() for cls in BUILTIN}
        for ep in unique_entry_points(GROUP, "kernel"):
            if ep.name in specs and type(specs[ep.name]).__module__.startswith(__name__):
                continue  # the distribution's own entry point for a built-in
            try:
                obj = ep.load()
                spec = _as_spec(obj() if isinstance(obj, type) else obj, ep.name)
            except Exception as e:  # noqa: BLE001 - one broken plug-in must not hide the catalogue
                warnings.warn(f"sparsekit: kernel {ep.name!r} ({ep.value}) could not be loaded: {type(e).__name__}: {e}",
                              stacklevel=3)
                continue
            specs[ep.name] = spec
        specs.update(_extra)
        _specs = specs
    return _specs


def _as_spec(spec, name: str) -> KernelSpec:
    if not isinstance(spec, KernelSpec):
        raise TypeError(f"kernel {name!r} is a {type(spec).__name__}, not a sparsekit KernelSpec")
    if spec.name != name:
        raise ValueError(f"kernel registered as {name!r} calls itself {spec.name!r}")
    return spec


def register_kernel(spec: KernelSpec) -> None:
    """Add a kernel without an installed entry point (tests, notebooks; this process only)."""
    global _specs
    spec = _as_spec(spec, getattr(spec, "name", ""))
    _extra[spec.name] = spec
    _specs = None


def unregister_kernel(name: str) -> None:
    global _specs
    _extra.pop(name, None)
    _specs = None


def kernels() -> list[str]:
    """Names of the catalogue's kernels, in catalogue order (built-ins first)."""
    return list(_catalogue())


def specs() -> list[KernelSpec]:
    """Every kernel's spec, in catalogue order."""
    return list(_catalogue().values())


def get_kernel(name: str) -> KernelSpec:
    try:
        return _catalogue()[name]
    except (KeyError, TypeError):
        raise UnknownKernelError(f"unknown kernel {name!r}: choose one of {', '.join(_catalogue())}") from None


def make_problem(kernel: str, *, dtype="float32", seed: int = 0, **params) -> Problem:
    """Generate a seeded problem; see each kernel's docstring for its parameters."""
    spec = get_kernel(kernel)
    unknown = sorted(set(params) - set(spec.defaults))
    if unknown:
        raise TypeError(f"{kernel}: unknown parameter(s) {', '.join(unknown)}; accepted: {', '.join(spec.defaults)}")
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise TypeError(f"seed must be an integer, got {seed!r}") from None
    full = {**spec.defaults, **params, "dtype": dtypes.check_dtype(dtype), "seed": seed}
    if "blocksize" in full and full["blocksize"] is not None:
        from ..patterns import _check_blocksize

        full["blocksize"] = _check_blocksize(full["blocksize"])
    rng = np.random.default_rng([seed, _kernel_salt(kernel)])
    full, inputs = spec.generate(rng, full)
    return Problem(kernel, full, inputs, spec=spec)


def _kernel_salt(kernel: str) -> int:
    # Different kernels with the same seed draw independent streams, reproducibly.
    return sum((i + 1) * ord(c) for i, c in enumerate(kernel))


def reference(problem: Problem) -> np.ndarray:
    """The float64 oracle result of ``problem`` (lif: the spike raster), cached on it."""
    return problem.cached("reference", lambda: problem.spec.reference(problem))


def check(problem: Problem, result, backend=None) -> Check:
    """Compare a backend's result with the oracle under the dtype-derived tolerance.

    ``backend``: the backend instance that produced ``result``; one that computes in its
    own number format widens the bound by its ``error_allowance(problem)`` (None for most).
    """
    allowance = backend.error_allowance(problem) if backend is not None and hasattr(backend, "error_allowance") else None
    if allowance is None:
        return problem.spec.check(problem, result)
    return problem.spec.check(problem, result, allowance=allowance)


def ops(problem: Problem) -> Ops:
    return problem.cached("ops", lambda: problem.spec.ops(problem))


def compulsory_bytes(problem: Problem) -> int:
    return problem.cached("bytes", lambda: problem.spec.compulsory_bytes(problem))


__all__ = ["BUILTIN", "BenchGrid", "BenchPoint", "Case", "Check", "GROUP", "KernelSpec", "Ops", "check", "compulsory_bytes",
           "get_kernel", "kernels", "make_problem", "ops", "reference", "register_kernel", "rel_error", "specs",
           "unregister_kernel"]

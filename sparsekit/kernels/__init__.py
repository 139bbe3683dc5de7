"""The kernel catalogue: every kernel is defined here once, for all backends.

Each kernel module's class docstring is the contract for backends: the names,
shapes and layout of ``problem.inputs`` and of the result.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from .._errors import UnknownKernelError
from ..problem import Problem
from .base import Check, KernelSpec, Ops, rel_error
from .dense_mm import DenseMM
from .gather_mm import GatherMM
from .kwta import KWTA
from .lif import LIF
from .moe import MoE
from .sddmm import SDDMM
from .sparse_sparse import SparseSparse
from .spmm import SpMM

_SPECS: dict[str, KernelSpec] = {
    spec.name: spec for spec in (DenseMM(), SpMM(), SDDMM(), GatherMM(), KWTA(), SparseSparse(), LIF(), MoE())
}


def kernels() -> list[str]:
    """Names of the catalogue's kernels, in catalogue order."""
    return list(_SPECS)


def get_kernel(name: str) -> KernelSpec:
    try:
        return _SPECS[name]
    except (KeyError, TypeError):
        raise UnknownKernelError(f"unknown kernel {name!r}: choose one of {', '.join(_SPECS)}") from None


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
    return Problem(kernel, full, inputs)


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


__all__ = ["Check", "KernelSpec", "Ops", "check", "compulsory_bytes", "get_kernel", "kernels", "make_problem", "ops", "reference", "rel_error"]

"""The ``Problem``: one seeded, fully generated instance of a kernel.

(kernel, shape, dtype, sparsity, pattern, seed) always gives the same arrays, so
two backends, two machines or two commits measure exactly the same work.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp


@dataclass(eq=False)
class Problem:
    """A generated kernel instance.

    ``kernel``: catalogue name. ``params``: every parameter that defines it
    (shape, dtype, seed, sparsity, pattern, format, ...). ``inputs``: host arrays
    in the problem's dtype (sparse ones as canonical ``scipy.sparse.csr_matrix``);
    see each kernel's docstring (``sparsekit.kernels``) for the names.
    """

    kernel: str
    params: dict
    inputs: dict
    #: the kernel's ``KernelSpec`` (``make_problem`` sets it; a problem built by hand passes it)
    spec: Any = field(default=None, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.spec is None:
            raise TypeError(f"Problem({self.kernel!r}, ...) needs spec=sparsekit.get_kernel({self.kernel!r}); "
                            "sparsekit.make_problem builds problems with it")

    @property
    def dtype(self) -> str:
        return self.params["dtype"]

    @property
    def sparsity(self) -> float:
        """The sparsity this kernel exploits, as measured on the generated data."""
        return self.spec.sparsity(self)

    def cached(self, key: str, compute):
        """Memoise an expensive derived quantity (reference, op counts) on the problem."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def describe(self) -> str:
        shown = {k: v for k, v in self.params.items() if not isinstance(v, (np.ndarray, sp.spmatrix))}
        return f"{self.kernel}(" + ", ".join(f"{k}={v}" for k, v in shown.items()) + ")"

    def __repr__(self) -> str:
        return f"<Problem {self.describe()}>"


def summary_params(params: dict) -> dict[str, Any]:
    """The JSON-friendly subset of params (arrays dropped) for reports."""
    out = {}
    for k, v in params.items():
        if isinstance(v, (np.ndarray, sp.spmatrix)):
            continue
        out[k] = v.item() if isinstance(v, np.generic) else v
    return out

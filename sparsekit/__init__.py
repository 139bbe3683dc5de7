"""sparsekit: at what sparsity does sparse beat dense, on this hardware, for this operation?

Public API (a contract: keep it stable)::

    import sparsekit as sk
    sk.kernels()                       # catalogue names
    sk.backends()                      # BackendRecord per registered backend (no heavy imports)
    p = sk.make_problem("spmm", m=4096, k=4096, n=128, sparsity=0.9, pattern="uniform",
                        dtype="float32", seed=0)
    sk.reference(p)                    # float64 oracle
    plan = sk.backend("cpu").prepare(p); plan(); y = plan.result()
    sk.check(p, y)                     # Check(ok, error, detail) under the dtype's tolerance
    sk.Unsupported                     # raised by prepare() for what a backend does not do

The core never imports a backend module: backends are found through the
``sparsekit.backends`` entry-point group (see ``sparsekit.registry``).
"""
from ._errors import (
    BackendUnavailable,
    SparsekitError,
    UnknownBackendError,
    UnknownKernelError,
    Unsupported,
)
from .backend import Backend, BackendInfo, Plan, Strategy
from .kernels import check, compulsory_bytes, get_kernel, kernels, make_problem, ops, reference
from .metrics import BreakEven, break_even
from .problem import Problem
from .registry import BackendRecord, backend, backends

__version__ = "0.1.0"

__all__ = [
    "Backend", "BackendInfo", "BackendRecord", "BackendUnavailable", "BreakEven", "Plan", "Problem", "Strategy",
    "SparsekitError", "UnknownBackendError", "UnknownKernelError", "Unsupported",
    "backend", "backends", "break_even", "check", "compulsory_bytes", "get_kernel", "kernels",
    "make_problem", "ops", "reference",
]

"""``KernelSpec``: what a kernel computes, defined once for every backend.

A spec supplies a seeded generator, a float64 NumPy reference (the oracle), an
op-count model (NeuroBench: dense MACs count every multiply-accumulate,
effective MACs only those whose two operands are both nonzero), a
compulsory-bytes model (the least data any implementation must move) and the
correctness check with its dtype-derived tolerance.

Tolerance, for the products (dense_mm, spmm, sddmm, gather_mm, sparse_sparse):
a dot product of length K in a type with unit roundoff u satisfies
|fl(y) - y| <= gamma_K * (|A| @ |B|) with gamma_K = K u / (1 - K u), whatever
the summation order (Higham, *Accuracy and Stability*, 3.1). The check applies
that bound elementwise, with K the reduction length plus one for the final
rounding to the output type and a factor 2 because the float64 oracle carries
its own (much smaller) rounding. A wrong or missing term is far larger than
this bound for the sizes the tests draw, so the check cannot pass by accident.

Half precision (float16, bfloat16): the catalogue's contract is that products
accumulate in float32 and round once to the half type, as tensor cores,
cuBLAS's default and every CPU half GEMM do. Inputs are exact in the half type,
so the bound is gamma_{K+1}(float32) (|A| @ |B|) + u_half |Y|, doubled as above.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np

from .. import dtypes
from ..problem import Problem


@dataclass(frozen=True)
class Ops:
    """Operation counts of one kernel call, in multiply-accumulates (MACs).

    NeuroBench definitions: ``dense`` counts every MAC the dense formulation
    performs; ``effective`` counts MACs whose operands are both nonzero (with
    0/1 spike inputs these are accumulates, ACs). FLOPs = 2 x MACs.
    """

    dense: int
    effective: int


@dataclass(frozen=True)
class Check:
    """Outcome of comparing a backend's result with the oracle."""

    ok: bool
    error: float  # the tracked figure, see ``KernelSpec.error_unit``
    detail: str = ""


def dim(name: str, value, minimum: int = 1) -> int:
    """Validate an integer dimension, naming it in the error."""
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def rel_error(y, yref) -> float:
    """max|Y - Yref| / max|Yref| (0 when both are all zero; inf when Y is not finite)."""
    y = np.asarray(y, dtype=np.float64)
    yref = np.asarray(yref, dtype=np.float64)
    if y.size == 0:
        return 0.0
    if not np.all(np.isfinite(y)):
        return float("inf")
    diff = float(np.max(np.abs(y - yref)))
    scale = float(np.max(np.abs(yref)))
    if scale == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / scale


def effective_macs(w_col_nnz: np.ndarray, x_row_nnz: np.ndarray) -> int:
    """MACs with both operands nonzero in W @ X: sum over l of nnz(W[:, l]) * nnz(X[l, :])."""
    return int(np.dot(w_col_nnz.astype(np.int64), x_row_nnz.astype(np.int64)))


def nonzero_counts(a, axis: int) -> np.ndarray:
    """Nonzeros per column (axis=0) or per row (axis=1) of a dense or sparse matrix."""
    if hasattr(a, "tocsr"):
        a = a.tocsr()
        nz = a.copy()
        nz.data = (nz.data != 0).astype(np.int64)
        return np.asarray(nz.sum(axis=axis)).ravel().astype(np.int64)
    return np.count_nonzero(a, axis=axis).astype(np.int64)


class KernelSpec:
    """Base class of the catalogue entries; subclasses fill in the model."""

    name: str = ""
    summary: str = ""
    #: storage formats a backend may be asked for (``params["format"]``)
    formats: tuple[str, ...] = ("dense",)
    #: parameter name -> default (None: required or derived)
    defaults: dict = {}
    #: unit of the figure ``check`` returns as ``error``
    error_unit: str = "max|Y-Yref|/max|Yref|"

    # -- to implement -------------------------------------------------------
    def generate(self, rng: np.random.Generator, params: dict) -> tuple[dict, dict]:
        """Return (params completed with derived values, host inputs)."""
        raise NotImplementedError

    def reference(self, problem: Problem, absolute: bool = False) -> np.ndarray:
        """float64 result; with ``absolute`` the same computation on |inputs| (for the error bound)."""
        raise NotImplementedError

    def ops(self, problem: Problem) -> Ops:
        raise NotImplementedError

    def compulsory_bytes(self, problem: Problem) -> int:
        raise NotImplementedError

    def depth(self, problem: Problem) -> int:
        """Length of the longest reduction (the K of gamma_K)."""
        raise NotImplementedError

    def sparsity(self, problem: Problem) -> float:
        """The sparsity the kernel exploits, measured on the generated data (0 for dense)."""
        return 0.0

    def dense_equivalent(self, problem: Problem) -> dict | None:
        """(m, k, n) of the dense_mm that does the same job densely; None if there is none."""
        return None

    # -- shared -------------------------------------------------------------
    def check(self, problem: Problem, result, allowance=None) -> Check:
        """Compare ``result`` with the oracle under the dtype-derived bound (see module doc).

        ``allowance``: extra elementwise |Y - Yref| declared by a backend that computes in
        its own number format (``Backend.error_allowance``, e.g. lava-fixed's fixed point),
        added to the rounding bound; the error figure is still against the float64 oracle.
        """
        ref = problem.cached("reference", lambda: self.reference(problem))
        got = _as_result(result, ref.shape, self.name)
        err = rel_error(got, ref)
        if not np.all(np.isfinite(got)):
            return Check(False, err, "result holds NaN or Inf")
        bound = problem.cached("bound", lambda: self.bound(problem))
        if allowance is not None:
            bound = bound + allowance
        excess = np.abs(got - ref) - bound
        worst = int(np.argmax(excess)) if excess.size else 0
        if excess.size and excess.flat[worst] > 0:
            idx = np.unravel_index(worst, excess.shape)
            return Check(
                False,
                err,
                f"at {tuple(int(i) for i in idx)}: got {got[idx]!r}, oracle {ref[idx]!r}, "
                f"allowed |diff| <= {bound[idx]:.3g} (rounding bound in {problem.dtype}"
                + (" plus the backend's declared arithmetic allowance)" if allowance is not None else ")"),
            )
        return Check(True, err)

    def bound(self, problem: Problem) -> np.ndarray:
        """Elementwise allowed |Y - Yref| (see the module doc)."""
        return accumulation_bound(self.depth(problem), problem.dtype, self.reference(problem, absolute=True))


#: the type a dtype's products accumulate in (the catalogue's contract for half precision)
ACCUMULATOR = {"float16": "float32", "bfloat16": "float32", "float32": "float32", "float64": "float64"}


def accumulation_bound(depth: int, dtype: str, absref):
    """2 x (gamma_{depth+1} in the accumulator x |A||B|, plus the final rounding to a half type)."""
    acc = ACCUMULATOR[dtype]
    b = gamma(depth + 1, acc) * absref
    if acc != dtype:
        b = b + dtypes.unit_roundoff(dtype) * absref  # |Y| <= |A||B|
    return 2.0 * b


def gamma(k: int, dtype: str) -> float:
    """gamma_k = k u / (1 - k u) for the dtype's unit roundoff u (capped where k u nears 1)."""
    u = dtypes.unit_roundoff(dtype)
    return k * u / max(1.0 - k * u, 1e-3)


class ProductSpec(KernelSpec):
    """A kernel that is an m x k x n product, or a part of one: reduction length k, the
    swept sparsity recorded in params, and the full m x k x n dense_mm as its dense
    equivalent."""

    def depth(self, problem):
        return problem.params["k"]

    def sparsity(self, problem):
        return problem.params["sparsity"]

    def dense_equivalent(self, problem):
        return {key: problem.params[key] for key in ("m", "k", "n")}


class SparseWeightsProduct(ProductSpec):
    """Y = W @ X with W a CSR input ``w`` and X a dense input ``x`` (which may hold zeros)."""

    def reference(self, problem, absolute=False):
        w = problem.inputs["w"].astype(np.float64)
        x = problem.inputs["x"].astype(np.float64)
        if absolute:
            w, x = abs(w), np.abs(x)
        return np.asarray(w @ x)

    def ops(self, problem):
        w, x = problem.inputs["w"], problem.inputs["x"]
        return Ops(w.shape[0] * w.shape[1] * x.shape[1], effective_macs(nonzero_counts(w, 0), nonzero_counts(x, 1)))

    def depth(self, problem):
        # each output sums one row of W: the longest row is the longest reduction
        w = problem.inputs["w"]
        return int(np.diff(w.indptr).max()) if w.shape[0] else 0


def _as_result(result, shape, kernel: str) -> np.ndarray:
    got = np.asarray(result)
    if got.shape != tuple(shape):
        raise AssertionError(f"{kernel}: result has shape {got.shape}, expected {tuple(shape)}")
    return got.astype(np.float64)

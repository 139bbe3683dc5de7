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
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Case:
    """One conformance case of a kernel: fixed ``make_problem`` keywords (dtype and seed apart).

    ``representative``: one case per kernel (and spmm format) on which the interface's
    promises (result type, a second call, untouched inputs) are checked.
    """

    kernel: str
    label: str
    params: dict = field(default_factory=dict)
    representative: bool = False

    @property
    def id(self) -> str:
        return f"{self.kernel}-{self.label}"


@dataclass(frozen=True)
class BenchGrid:
    """One asv benchmark class of a kernel (``benchmarks/``; the backend is always the first
    parameter, before ``param_names``).

    ``default`` and ``full`` hold one fixed list of values per parameter (``full`` is the
    large grid, ``SPARSEKIT_FULL=1``; None: the same as default). A ``shape`` parameter is
    an "AxBxC" string over ``shape_axes`` (default: the kernel's). ``labels`` maps a
    parameter's value to the make_problem keywords it stands for (e.g. spmm's "bsr4x4");
    ``fixed`` holds keywords every point shares.
    """

    name: str
    param_names: tuple
    default: tuple
    full: tuple | None = None
    fixed: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    shape_axes: tuple | None = None

    def values(self, full: bool = False) -> list[list]:
        return [list(v) for v in (self.full if full and self.full is not None else self.default)]


@dataclass(frozen=True)
class BenchPoint:
    """Where one benchmark measurement sits in a break-even sweep (``KernelSpec.bench_point``)."""

    variant: str      # what distinguishes the sweep besides shape (pattern, format, DLMC matrix, ...)
    shape: str        # the shape shown
    dense_shape: str  # m x k x n of the dense_mm doing the same work
    sparsity: float | None


#: interpreter, libraries and small temporaries: present whatever the problem's size
BASELINE_BYTES = 64 * 2**20


def oracle_itemsize(dtype: str) -> int:
    """Bytes per element of the arrays a problem's checking holds: the oracles work in
    float64 whatever the problem's dtype."""
    return 8


def value_bytes(dtype: str) -> int:
    """Bytes per stored value of a problem in ``dtype`` as a device holds it (half types: 2)."""
    return {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}.get(str(dtype), 4)


#: bytes of a stored index (int32 column indices and row offsets)
INDEX_BYTES = 4


def shape_str(dims) -> str:
    return "x".join(str(int(d)) for d in dims)


def parse_shape(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in str(text).lower().split("x"))


class KernelSpec:
    """Base class of the catalogue entries; subclasses fill in the model.

    Everything the rest of the suite needs to know about a kernel lives here, so that
    adding one (in this package, or in a research group's own package registered
    through the ``sparsekit.kernels`` entry-point group) touches no other module:
    shape axes, example and conformance parameters, footprint and nominal op/byte
    models, result kind, Hypothesis strategy, benchmark grid.
    """

    name: str = ""
    summary: str = ""
    #: storage formats a backend may be asked for (``params["format"]``)
    formats: tuple[str, ...] = ("dense",)
    #: parameter name -> default (None: required or derived)
    defaults: dict = {}
    #: unit of the figure ``check`` returns as ``error``
    error_unit: str = "max|Y-Yref|/max|Yref|"
    #: the problem's shape parameters, in the order of ``--shape`` and of benchmark shape strings
    shape_axes: tuple[str, ...] = ("m", "k", "n")
    #: ``sparsekit run`` shape when ``--shape`` is not given
    example_shape: tuple[int, ...] = (1024, 1024, 64)
    #: the parameter a break-even sweeps ("sparsity"; None: not swept by ``--sparsity``)
    sweep_param: str | None = "sparsity"
    #: "values": a result in the problem's float type; "raster": 0/1 spikes in any real type
    result_kind: str = "values"
    #: asv benchmark classes of this kernel (``benchmarks/``)
    benchmarks: tuple[BenchGrid, ...] = ()
    #: substrings of ``make_problem`` ValueErrors that are documented refusals of a drawn
    #: parameter set (not bugs): the Hypothesis strategy discards such draws
    documented_refusals: tuple[str, ...] = ()

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

    def conformance_cases(self) -> list[Case]:
        """The fixed grid the conformance suite runs on every backend (small problems)."""
        raise NotImplementedError

    def small_params(self, fmt: str | None = None) -> dict:
        """make_problem keywords of a tiny problem in storage format ``fmt`` (None: the default)."""
        raise NotImplementedError

    def draw_kwargs(self, draw, sks, max_side: int) -> dict:
        """Hypothesis: draw make_problem keywords (dtype and seed apart). ``sks`` is
        ``sparsekit.testing.strategies`` (its strategies, and ``sks.st``, Hypothesis's), passed
        in so that the catalogue never imports Hypothesis."""
        raise NotImplementedError

    # -- with defaults --------------------------------------------------------
    def sparsity(self, problem: Problem) -> float:
        """The sparsity the kernel exploits, measured on the generated data (0 for dense)."""
        return 0.0

    def dense_equivalent(self, params: dict) -> dict | None:
        """(m, k, n) of the dense_mm that does the same job densely, from a problem's (or
        make_problem's) parameters; None if there is none."""
        return None

    def nominal_sparsity(self, params: dict) -> float | None:
        """The exploited sparsity a parameter set asks for, before anything is generated."""
        s = params.get("sparsity")
        return None if s is None else float(s)

    def shape_of(self, params: dict) -> tuple:
        """The shape parameters' values, in ``shape_axes`` order."""
        return tuple(params[a] for a in self.shape_axes)

    def params_from_shape(self, dims, axes: tuple | None = None) -> dict:
        """``--shape`` (or a benchmark shape string's) dimensions as make_problem keywords."""
        axes = axes or self.shape_axes
        dims = tuple(dims)
        if len(dims) != len(axes):
            raise ValueError(f"{self.name}: a shape needs {'x'.join(a.upper() for a in axes)}, got "
                             f"{'x'.join(map(str, dims))}")
        return dict(zip(axes, (int(d) for d in dims)))

    def footprint_bytes(self, params: dict, dtype: str) -> int:
        """Estimated peak host bytes to generate, check and time one problem, from its
        parameters alone (``sparsekit run``'s pre-flight check; see ``sparsekit.resources``).
        The default suits an m x k x n product with an m x k operand."""
        it = oracle_itemsize(dtype)
        m, k, n = (int(params.get(key) or 0) for key in ("m", "k", "n"))
        return int(BASELINE_BYTES + 14 * m * k * it + 6 * (k * n + m * n) * it)

    def nominal_model(self, params: dict) -> tuple[float, float] | None:
        """(FLOPs, compulsory bytes) a parameter set implies before generation (nnz taken as
        (1 - sparsity) x size): the report's roofline model for results that are numbers only.
        None: the work depends on more than the parameters (data-dependent)."""
        return None

    def bench_kwargs(self, grid: BenchGrid, params: dict) -> dict:
        """make_problem keywords of one point of ``grid`` (``params``: name -> value, no backend)."""
        kw = dict(grid.fixed)
        for name, value in params.items():
            if name == "shape":
                kw.update(self.params_from_shape(parse_shape(value), grid.shape_axes))
            elif name in grid.labels:
                kw.update(grid.labels[name][value])
            else:
                kw[name] = value
        return kw

    def bench_point(self, grid: BenchGrid, params: dict) -> BenchPoint | None:
        """The sweep point of a benchmark measurement, or None when it pairs with no dense_mm."""
        kw = self.bench_kwargs(grid, params)
        try:
            eq = self.dense_equivalent(kw)
        except (KeyError, ValueError, FileNotFoundError):
            return None
        if eq is None:
            return None
        dense = shape_str((eq["m"], eq["k"], eq["n"]))
        axes = {"backend", "shape", self.sweep_param, "matrix"}
        variant = ", ".join(
            str(v) if k in ("pattern", "format") else f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in params.items() if k not in axes)
        if kw.get("matrix") is not None:
            variant = ", ".join(x for x in (f"dlmc:{kw['matrix']}", variant) if x)
        shape = params.get("shape") or dense
        return BenchPoint(variant, str(shape), dense, self.nominal_sparsity(kw))

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

    def dense_equivalent(self, params):
        return {key: int(params[key]) for key in ("m", "k", "n")}


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

    def dense_equivalent(self, params):
        """m and k from the parameters, or from a DLMC matrix's header (before generation)."""
        if params.get("m") is None and params.get("matrix") is not None:
            from .. import io

            m, k = io.smtx_shape(io.dlmc_path(params["matrix"], params.get("sparsity")))
            return {"m": int(m), "k": int(k), "n": int(params["n"])}
        return super().dense_equivalent(params)

    def nominal_model(self, params):
        """W (1 - sparsity) dense of m x k, X dense k x n: CSR of W read once, X read, Y written."""
        eq = self.dense_equivalent(params)
        s = self.nominal_sparsity(params)
        if eq is None or s is None:
            return None
        m, k, n = eq["m"], eq["k"], eq["n"]
        v = value_bytes(params.get("dtype", "float32"))
        nnz = (1.0 - s) * m * k
        return 2.0 * nnz * n, nnz * (v + INDEX_BYTES) + (m + 1) * INDEX_BYTES + v * (k * n + m * n)


def _as_result(result, shape, kernel: str) -> np.ndarray:
    got = np.asarray(result)
    if got.shape != tuple(shape):
        raise AssertionError(f"{kernel}: result has shape {got.shape}, expected {tuple(shape)}")
    return got.astype(np.float64)

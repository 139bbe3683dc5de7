"""Hypothesis strategies for sparsekit, named after what they make.

One module, used by sparsekit's own suite and by anyone testing a backend::

    from hypothesis import given
    from sparsekit.testing import strategies as sks

    @given(p=sks.problems("spmm", dtype="float32"))
    def test_my_backend(p):
        ...

Edge cases are *drawn*, not hand-picked once: 1x1 and single-column shapes,
0% and 100% sparsity, empty rows and columns, all-zero and one-nonzero matrices,
unsorted and duplicate CSR column indices, k=0 and k=m winners, zero selected
rows, top_k equal to the number of experts. Sizes stay small (sides <= 64 by
default) so a few hundred examples run in seconds.

Strategies:

- ``dtypes()``: dtype names of ``sparsekit.dtypes.DTYPES``
- ``shapes()``: tuples of small positive sides
- ``sparsity_levels()``: floats in [0, 1], with 0.0 and 1.0 drawn often
- ``sparsity_patterns()``: names of the generated patterns (``sparsekit.patterns``)
- ``pattern_options(pattern, m, k)``: the extra keyword arguments a pattern takes
- ``masks()``: ``Mask`` (the generated CSR mask plus the request that made it)
- ``csr_matrices()``: scipy CSR matrices; ``canonical=False`` keeps unsorted and
  duplicate column indices in the matrix handed out
- ``csr_parts()``: ``RawCSR`` (data, indices, indptr, shape), structurally valid
  but with unsorted/duplicate indices allowed
- ``malformed_csr_parts()``: ``(RawCSR, what is wrong)`` for input-validation tests
- ``kwta_activations()``: ``(x, k)`` activations full of ties and zeros; wrap them
  with ``kwta_problem(x, k, dtype)`` (``make_problem`` draws its own, tie-free)
- ``weight_kwargs(m, k, max_side)``: keywords making a kernel's sparse weights (generated or a user's)
- ``problem_kwargs(kernel)``: keyword arguments for ``sparsekit.make_problem`` (each kernel's
  ``KernelSpec.draw_kwargs`` says what to draw; ``st`` is Hypothesis's strategies module)
- ``problems(kernel, dtype=...)``: seeded ``sparsekit.Problem`` instances
"""
from __future__ import annotations

import sys
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from hypothesis import assume
from hypothesis import strategies as st

import sparsekit
from sparsekit import dtypes as _dtypes
from sparsekit import patterns as _patterns
from sparsekit.problem import Problem

__all__ = [
    "DTYPES", "GENERATED_PATTERNS", "MAX_SIDE", "Mask", "RawCSR",
    "blocksizes", "nm_ratios", "csr_matrices", "csr_parts", "dtypes", "kwta_activations", "kwta_problem",
    "malformed_csr_parts", "masks", "pattern_options", "possible_dtypes", "problem_kwargs", "problems",
    "seeds", "shapes", "sides", "sparsity_levels", "sparsity_patterns", "st", "weight_kwargs",
]

DTYPES = _dtypes.DTYPES
#: patterns ``sparsekit.patterns.make_mask`` generates (``dlmc`` comes from files)
GENERATED_PATTERNS = tuple(p for p in _patterns.PATTERNS if p != "dlmc")
MAX_SIDE = 64
#: round levels the benchmarks sweep, drawn alongside arbitrary floats
_LEVELS = (0.0, 1.0, 0.5, 0.75, 0.875, 0.9, 0.95, 0.98, 0.99)


class RawCSR(NamedTuple):
    """CSR parts as a user might hand them over: maybe unsorted, maybe duplicated."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    shape: tuple

    def to_scipy(self) -> sp.csr_matrix:
        """The same parts as a scipy CSR matrix (SciPy keeps them as given)."""
        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)

    def dense(self) -> np.ndarray:
        """The dense matrix these parts mean, duplicates summed (SciPy's convention)."""
        out = np.zeros(self.shape, dtype=np.float64)
        for i in range(self.shape[0]):
            for p in range(int(self.indptr[i]), int(self.indptr[i + 1])):
                out[i, int(self.indices[p])] += float(self.data[p])
        return out


class Mask(NamedTuple):
    """A generated sparsity mask and the request that produced it."""

    mask: sp.csr_matrix
    pattern: str
    shape: tuple
    sparsity: float
    options: dict
    seed: int


# -- scalars and shapes --------------------------------------------------------

def dtypes(include=None) -> st.SearchStrategy[str]:
    """Dtype names (``sparsekit.dtypes.DTYPES``, or the subset ``include``)."""
    names = tuple(include) if include is not None else DTYPES
    for n in names:
        _dtypes.check_dtype(n)
    return st.sampled_from(names)


def possible_dtypes(kernel: str) -> tuple:
    """The dtypes ``make_problem`` can build ``kernel`` in: all of them, for every kernel."""
    return DTYPES


def seeds() -> st.SearchStrategy[int]:
    return st.integers(0, 2**32 - 1)


def sides(min_side: int = 1, max_side: int = MAX_SIDE) -> st.SearchStrategy[int]:
    """One dimension; the extremes (1 and ``max_side``) are drawn often."""
    return st.one_of(st.integers(min_side, max_side), st.sampled_from(sorted({min_side, max_side})))


def shapes(ndim: int = 2, min_side: int = 1, max_side: int = MAX_SIDE) -> st.SearchStrategy[tuple]:
    """Tuples of ``ndim`` sides in [min_side, max_side]; 1x1 and single rows/columns included."""
    return st.tuples(*[sides(min_side, max_side)] * ndim)


def sparsity_levels(min_value: float = 0.0, max_value: float = 1.0) -> st.SearchStrategy[float]:
    """Sparsities in [min_value, max_value]: 0.0 and 1.0, the swept levels, and any float."""
    levels = [s for s in _LEVELS if min_value <= s <= max_value]
    return st.one_of(
        st.sampled_from(levels or [min_value]),
        st.floats(min_value, max_value, allow_nan=False, allow_infinity=False),
    )


def sparsity_patterns(include=None) -> st.SearchStrategy[str]:
    """Names of the generated sparsity patterns (``GENERATED_PATTERNS`` or ``include``)."""
    names = tuple(include) if include is not None else GENERATED_PATTERNS
    bad = [n for n in names if n not in _patterns.PATTERNS]
    if bad:
        raise ValueError(f"unknown pattern(s) {bad}")
    return st.sampled_from(names)


def nm_ratios(max_m: int = 8) -> st.SearchStrategy[str]:
    """"N:M" strings: 2:4, 1:4, 1:8 and any 0 <= N <= M <= max_m."""
    drawn = st.integers(1, max_m).flatmap(lambda m: st.integers(0, m).map(lambda n: f"{n}:{m}"))
    return st.one_of(st.sampled_from(["2:4", "1:4", "1:8", "4:8"]), drawn)


def blocksizes(m: int | None = None, k: int | None = None, max_side: int = 8, divide: bool = False):
    """(bh, bw) block sizes; with ``divide`` they divide (m, k) exactly."""
    def side(n):
        if divide and n is not None:
            return st.sampled_from([d for d in range(1, min(n, max_side) + 1) if n % d == 0])
        return st.integers(1, max_side)

    return st.tuples(side(m), side(k))


@st.composite
def pattern_options(draw, pattern: str, m: int, k: int) -> dict:
    """Extra keyword arguments of ``pattern`` (blocksize, nm, alpha) for an m x k matrix."""
    if pattern == "block":
        return {"blocksize": draw(blocksizes(m, k))}
    if pattern == "nm":
        return {"nm": draw(nm_ratios())}
    if pattern == "powerlaw":
        return {"alpha": draw(st.sampled_from([0.0, 0.5, 1.0, 2.0]))}
    return {}


@st.composite
def masks(draw, patterns=None, max_side: int = MAX_SIDE) -> Mask:
    """A mask from ``sparsekit.patterns.make_mask`` with the request that made it."""
    pattern = draw(sparsity_patterns(patterns))
    m, k = draw(shapes(2, 1, max_side))
    opts = draw(pattern_options(pattern, m, k))
    seed = draw(seeds())
    if pattern == "nm":
        n_, m_ = _patterns.nm_ratio(None, opts["nm"])
        sparsity = 1.0 - n_ / m_
    else:
        sparsity = draw(sparsity_levels())
    mask = _patterns.make_mask(pattern, m, k, sparsity, np.random.default_rng(seed), **opts)
    return Mask(mask, pattern, (m, k), sparsity, opts, seed)


# -- CSR matrices ----------------------------------------------------------------

def _values():
    # Nonzero multiples of 1/4 up to 8: exact in every sparsekit dtype, so sums of
    # duplicates do not depend on the order they are added in.
    return st.integers(-32, 32).filter(lambda v: v != 0).map(lambda v: v / 4.0)


@st.composite
def csr_parts(draw, shape=None, max_side: int = 16, canonical: bool = False) -> RawCSR:
    """Structurally valid CSR parts. Drawn kinds: all zero, one nonzero, empty rows and
    columns, dense rows; unless ``canonical``, column indices may be unsorted and repeated."""
    if shape is None:
        shape = draw(shapes(2, 1, max_side))
    m, k = (int(s) for s in shape)
    kind = draw(st.sampled_from(["random", "all_zero", "one_nonzero", "dense_rows"]))
    rows: list[list[int]] = [[] for _ in range(m)]
    if m and k:
        if kind == "one_nonzero":
            rows[draw(st.integers(0, m - 1))] = [draw(st.integers(0, k - 1))]
        elif kind == "random":
            for i in range(m):
                rows[i] = draw(st.lists(st.integers(0, k - 1), max_size=min(k, 8), unique=True))
            # leave a few rows/columns explicitly empty
            for i in draw(st.lists(st.integers(0, m - 1), max_size=2)):
                rows[i] = []
            empty_col = draw(st.none() | st.integers(0, k - 1))
            if empty_col is not None:
                rows = [[c for c in r if c != empty_col] for r in rows]
        elif kind == "dense_rows":
            for i in draw(st.lists(st.integers(0, m - 1), min_size=1, max_size=3, unique=True)):
                rows[i] = list(range(k))
        if not canonical:
            for i, r in enumerate(rows):
                if r and draw(st.booleans()):
                    r = r + draw(st.lists(st.sampled_from(r), max_size=3))  # duplicates
                rows[i] = draw(st.permutations(r)) if len(r) > 1 else r  # unsorted
        else:
            rows = [sorted(set(r)) for r in rows]
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=indptr[1:])
    indices = np.array([c for r in rows for c in r], dtype=np.int32)
    data = np.array([draw(_values()) for _ in range(len(indices))], dtype=np.float64)
    return RawCSR(data, indices, indptr, (m, k))


@st.composite
def csr_matrices(draw, shape=None, max_side: int = 16, dtype=np.float64, canonical: bool = True) -> sp.csr_matrix:
    """scipy CSR matrices (empty rows/columns, all-zero, one nonzero, 1x1 among them).

    ``canonical=False``: the matrix keeps the unsorted and duplicate column indices it
    was built with (as a user's hand-made CSR may); its meaning is ``.toarray()``,
    which sums duplicates.
    """
    parts = draw(csr_parts(shape=shape, max_side=max_side, canonical=canonical))
    w = sp.csr_matrix((parts.data.astype(dtype), parts.indices, parts.indptr), shape=parts.shape)
    if canonical:
        assert w.has_canonical_format
    return w


@st.composite
def malformed_csr_parts(draw, max_side: int = 8):
    """``(RawCSR, what is wrong)``: CSR parts that ``sparsekit.io.csr_from_parts`` must reject."""
    m, k = draw(shapes(2, 1, max_side))
    good = draw(csr_parts(shape=(m, k), canonical=True))
    data, indices, indptr = good.data.copy(), good.indices.copy(), good.indptr.copy()
    nnz = len(indices)
    faults = ["indptr_too_short", "indptr_too_long", "indptr_not_zero_start", "nnz_mismatch", "nan_value", "inf_value"]
    if nnz:
        faults += ["index_too_large", "negative_index"]
    if m >= 2 and nnz:
        faults += ["indptr_decreasing"]
    fault = draw(st.sampled_from(faults))
    if fault == "indptr_too_short":
        indptr = indptr[:-1]
    elif fault == "indptr_too_long":
        indptr = np.append(indptr, indptr[-1])
    elif fault == "indptr_not_zero_start":
        indptr = indptr + 1
        indices = np.append(indices, 0)
        data = np.append(data, 1.0)
    elif fault == "nnz_mismatch":
        indices = np.append(indices, 0)  # data and indptr still say nnz
    elif fault == "nan_value":
        data = np.append(data, np.nan)
        indices = np.append(indices, 0)
        indptr[-1] += 1
    elif fault == "inf_value":
        data = np.append(data, -np.inf)
        indices = np.append(indices, k - 1)
        indptr[-1] += 1
    elif fault == "index_too_large":
        indices[draw(st.integers(0, nnz - 1))] = k + draw(st.integers(0, 3))
    elif fault == "negative_index":
        indices[draw(st.integers(0, nnz - 1))] = -1 - draw(st.integers(0, 3))
    elif fault == "indptr_decreasing":
        # a row offset above its successor (nnz and the ends still agree)
        i = draw(st.integers(1, m - 1))
        indptr[i] = nnz + 1
    return RawCSR(data, indices, indptr, (m, k)), fault


# -- activations -----------------------------------------------------------------

@st.composite
def kwta_activations(draw, max_side: int = 32, dtype=np.float64):
    """``(x, k)``: m x n activations full of ties, zeros and negatives, and 0 <= k <= m."""
    m, n = draw(shapes(2, 1, max_side))
    pool = draw(st.sampled_from([(-1.0, 0.0, 1.0), (-2.0, -0.5, 0.0, 0.5, 1.0, 2.0), (0.0,), (3.0,)]))
    kind = draw(st.sampled_from(["pool", "distinct", "mixed"]))
    if kind == "distinct":
        x = np.random.default_rng(draw(seeds())).standard_normal((m, n))
    else:
        x = np.array(draw(st.lists(st.sampled_from(pool), min_size=m * n, max_size=m * n)), dtype=np.float64).reshape(m, n)
        if kind == "mixed":
            x[:, ::2] = np.random.default_rng(draw(seeds())).standard_normal((m, len(range(0, n, 2))))
    k = draw(st.one_of(st.sampled_from([0, m]), st.integers(0, m)))
    return np.asarray(x, dtype=dtype), k


def kwta_problem(x: np.ndarray, k: int, dtype: str = "float32") -> Problem:
    """A kwta Problem around given activations (``make_problem`` only draws its own)."""
    dtype = _dtypes.check_dtype(dtype)
    m, n = x.shape
    params = {"m": m, "n": n, "k": int(k), "sparsity": 1.0 - k / m, "dtype": dtype, "seed": -1}
    return Problem("kwta", params, {"x": _dtypes.to_host(np.asarray(x, dtype=np.float64), dtype)},
                   spec=sparsekit.get_kernel("kwta"))


# -- whole problems --------------------------------------------------------------

@st.composite
def weight_kwargs(draw, m: int, k: int, max_side: int, allow_user: bool = True) -> dict:
    """Keyword arguments that make a kernel's sparse weights (generated or the user's)."""
    if allow_user and draw(st.sampled_from(["generated"] * 4 + ["user"])) == "user":
        return {"weights": draw(csr_matrices(shape=(m, k), canonical=False))}
    pattern = draw(sparsity_patterns())
    kw = {"m": m, "k": k, "pattern": pattern, **draw(pattern_options(pattern, m, k))}
    if pattern != "nm":
        kw["sparsity"] = draw(sparsity_levels())
    return kw


@st.composite
def problem_kwargs(draw, kernel: str, dtype=None, max_side: int = MAX_SIDE) -> dict:
    """Keyword arguments for ``sparsekit.make_problem(kernel, **kwargs)`` (seed and dtype
    included). ``dtype``: a name, or None to draw one from ``dtypes()``."""
    spec = sparsekit.get_kernel(kernel)
    if dtype is None:
        dtype = draw(dtypes(possible_dtypes(kernel)))
    kw: dict = {"dtype": _dtypes.check_dtype(dtype), "seed": draw(seeds())}
    # each kernel's spec says what to draw (KernelSpec.draw_kwargs): one place per kernel
    kw.update(spec.draw_kwargs(draw, _this_module(), max_side))
    return kw


def _this_module():
    return sys.modules[__name__]


@st.composite
def problems(draw, kernel: str, dtype=None, max_side: int = MAX_SIDE) -> Problem:
    """Seeded ``sparsekit.Problem`` instances of ``kernel`` built with ``make_problem``.

    ``dtype``: a dtype name, or None to draw it. Shapes up to ``max_side`` per side.
    """
    kw = draw(problem_kwargs(kernel, dtype=dtype, max_side=max_side))
    refusals = sparsekit.get_kernel(kernel).documented_refusals
    try:
        return sparsekit.make_problem(kernel, **kw)
    except ValueError as e:
        # a generator may refuse a drawn combination on purpose (moe: half-precision rounding of
        # the gate could flip the routing), saying so: such draws are discarded, others are bugs
        assume(not any(r in str(e) for r in refusals))
        raise

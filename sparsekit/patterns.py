"""Seeded sparsity patterns: which entries of an ``m x k`` matrix are nonzero.

Every generator returns a canonical ``scipy.sparse.csr_matrix`` of ones
(sorted indices, no duplicates) and hits the requested sparsity exactly where
the pattern's granularity allows it (uniform, power-law, selector and kwta:
exact nnz = round((1 - sparsity) * size); block: exact in blocks; nm: N/M per
group). Values are filled in by the kernel generators, not here.
"""
from __future__ import annotations


import numpy as np
import scipy.sparse as sp

PATTERNS = ("uniform", "block", "nm", "powerlaw", "selector", "kwta", "dlmc")


def check_sparsity(sparsity) -> float:
    try:
        s = float(sparsity)
    except (TypeError, ValueError):
        raise TypeError(f"sparsity must be a number in [0, 1], got {sparsity!r}") from None
    if not (0.0 <= s <= 1.0):  # also rejects NaN
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity!r}")
    return s


def _csr_from_sorted_linear(lin: np.ndarray, m: int, k: int) -> sp.csr_matrix:
    rows = lin // k
    cols = (lin % k).astype(np.int32)
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=m), out=indptr[1:])
    data = np.ones(len(cols), dtype=np.float64)
    return sp.csr_matrix((data, cols, indptr), shape=(m, k))


def _choose_sorted(rng: np.random.Generator, population: int, count: int) -> np.ndarray:
    """``count`` distinct integers of ``range(population)``, sorted, uniformly at random."""
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    if count >= population:
        return np.arange(population, dtype=np.int64)
    if count <= population // 2:
        chosen = rng.choice(population, size=count, replace=False)
        chosen.sort()
        return chosen.astype(np.int64)
    # Denser than half: drawing the complement is cheaper and just as uniform.
    keep = np.ones(population, dtype=bool)
    keep[rng.choice(population, size=population - count, replace=False)] = False
    return np.flatnonzero(keep).astype(np.int64)


def nnz_for(size: int, sparsity: float) -> int:
    return int(round((1.0 - sparsity) * size))


def uniform(m: int, k: int, sparsity: float, rng: np.random.Generator) -> sp.csr_matrix:
    """Nonzeros at positions drawn uniformly without replacement."""
    return _csr_from_sorted_linear(_choose_sorted(rng, m * k, nnz_for(m * k, sparsity)), m, k)


def block(m: int, k: int, sparsity: float, rng: np.random.Generator, blocksize=(4, 4)) -> sp.csr_matrix:
    """Whole ``bh x bw`` blocks kept uniformly at random (edge blocks are clipped)."""
    bh, bw = _check_blocksize(blocksize)
    gm, gk = -(-m // bh), -(-k // bw)
    blocks = _choose_sorted(rng, gm * gk, nnz_for(gm * gk, sparsity))
    br, bc = blocks // gk, blocks % gk
    dr, dc = np.meshgrid(np.arange(bh), np.arange(bw), indexing="ij")
    r = (br[:, None] * bh + dr.ravel()[None, :]).ravel()
    c = (bc[:, None] * bw + dc.ravel()[None, :]).ravel()
    inside = (r < m) & (c < k)
    lin = np.sort(r[inside].astype(np.int64) * k + c[inside])
    return _csr_from_sorted_linear(lin, m, k)


def nm_ratio(sparsity: float | None, nm=None) -> tuple[int, int]:
    """The N:M ratio to use: ``nm`` as given ("2:4" or (2, 4)), else derived from sparsity.

    Derived: the smallest M in 4, 8, ..., 128 for which (1 - sparsity) * M is a
    whole number (0.5 -> 2:4, 0.75 -> 1:4, 0.875 -> 1:8), else N rounded at M=128.
    """
    if nm is not None:
        if isinstance(nm, str):
            try:
                n_, m_ = (int(t) for t in nm.split(":"))
            except ValueError:
                raise ValueError(f"nm must look like 'N:M', got {nm!r}") from None
        else:
            n_, m_ = (int(t) for t in nm)
        if not (m_ >= 1 and 0 <= n_ <= m_):
            raise ValueError(f"N:M needs 0 <= N <= M and M >= 1, got {n_}:{m_}")
        if sparsity is not None and abs((1 - n_ / m_) - sparsity) > 1e-9:
            raise ValueError(f"nm={n_}:{m_} means sparsity {1 - n_ / m_:g}, but sparsity={sparsity:g} was asked")
        return n_, m_
    s = 0.5 if sparsity is None else sparsity
    for m_ in (4, 8, 16, 32, 64, 128):
        n_ = (1.0 - s) * m_
        if abs(n_ - round(n_)) < 1e-9:
            return int(round(n_)), m_
    return int(round((1.0 - s) * 128)), 128


def nm(m: int, k: int, sparsity: float | None, rng: np.random.Generator, nm=None) -> sp.csr_matrix:
    """N nonzeros in every group of M consecutive entries of a row (the last group may be short)."""
    n_, m_ = nm_ratio(sparsity, nm)
    groups = -(-k // m_)
    tail = k - (groups - 1) * m_
    # A short last group keeps N scaled to its length, so the density stays N/M.
    keys = rng.random((m, groups, m_))
    keys[:, -1, tail:] = np.inf
    rank = np.argsort(np.argsort(keys, axis=2, kind="stable"), axis=2, kind="stable")
    quota = np.full(groups, n_)
    quota[-1] = int(round(n_ * tail / m_))
    keep = (rank < quota[None, :, None]).reshape(m, groups * m_)[:, :k]
    return _csr_from_sorted_linear(np.flatnonzero(keep.ravel()).astype(np.int64), m, k)


def powerlaw(m: int, k: int, sparsity: float, rng: np.random.Generator, alpha: float = 1.0) -> sp.csr_matrix:
    """Row lengths following a power law (Zipf, exponent ``alpha``) in shuffled order.

    Columns within a row are uniform. The total nnz is exact; rows are capped at k
    and the excess goes to the other rows.
    """
    alpha = float(alpha)
    if not (np.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"powerlaw alpha must be a finite number >= 0, got {alpha!r}")
    total = nnz_for(m * k, sparsity)
    # in log space: 1 / i**alpha overflows for steep laws
    weights = np.exp(-alpha * np.log(np.arange(1, m + 1, dtype=np.float64)))
    rng.shuffle(weights)
    lengths = _apportion(total, weights, cap=k)
    chunks = []
    for i in np.flatnonzero(lengths):
        chunks.append(i * k + _choose_sorted(rng, k, int(lengths[i])))
    lin = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
    return _csr_from_sorted_linear(lin, m, k)


def _apportion(total: int, weights: np.ndarray, cap: int) -> np.ndarray:
    """Integer lengths proportional to ``weights``, each <= cap, summing to ``total``."""
    lengths = np.zeros(len(weights), dtype=np.int64)
    free = np.ones(len(weights), dtype=bool)
    remaining = total
    while remaining > 0 and free.any():
        w = np.where(free, weights, 0.0)
        if w.sum() <= 0.0:  # steep laws underflow: the rest is spread evenly
            w = free.astype(np.float64)
        share = w / w.sum() * remaining
        add = np.floor(share).astype(np.int64)
        # hand out the rounding remainder to the largest fractional parts
        short = remaining - add.sum()
        if short > 0:
            order = np.argsort(-(share - add) * free, kind="stable")[:short]
            add[order] += 1
        lengths += add
        over = lengths > cap
        lengths[over] = cap
        free &= ~over & (lengths < cap)
        remaining = total - lengths.sum()
    return lengths


def selector(m: int, k: int, sparsity: float, rng: np.random.Generator) -> sp.csr_matrix:
    """Whole rows: ``round((1 - sparsity) * m)`` of the m rows are dense, the rest empty."""
    rows = _choose_sorted(rng, m, nnz_for(m, sparsity))
    lin = (rows[:, None] * k + np.arange(k)[None, :]).ravel()
    return _csr_from_sorted_linear(lin, m, k)


def selected_rows(m: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct row indices of ``range(m)`` in random order (a selector's choice)."""
    rows = _choose_sorted(rng, m, count)
    rng.shuffle(rows)
    return rows


def kwta(m: int, k: int, sparsity: float, rng: np.random.Generator) -> sp.csr_matrix:
    """Column-wise k-winners-take-all shape: every column keeps exactly round((1-s)*m) entries."""
    keep = nnz_for(m, sparsity)
    if keep == 0 or k == 0:
        return sp.csr_matrix((m, k))
    order = np.argsort(rng.random((m, k)), axis=0, kind="stable")[:keep]
    rows = order.ravel().astype(np.int64)
    cols = np.tile(np.arange(k), keep)
    return _csr_from_sorted_linear(np.sort(rows * k + cols), m, k)


def _check_blocksize(blocksize) -> tuple[int, int]:
    try:
        bh, bw = (int(b) for b in blocksize)
    except (TypeError, ValueError):
        raise ValueError(f"blocksize must be a pair (bh, bw), got {blocksize!r}") from None
    if bh < 1 or bw < 1:
        raise ValueError(f"blocksize entries must be >= 1, got {blocksize!r}")
    return bh, bw


def make_mask(pattern: str, m: int, k: int, sparsity: float, rng: np.random.Generator, **opts) -> sp.csr_matrix:
    """Dispatch to a pattern by name (``dlmc`` masks come from files: see ``sparsekit.io``)."""
    if pattern == "uniform":
        return uniform(m, k, sparsity, rng)
    if pattern == "block":
        return block(m, k, sparsity, rng, opts.get("blocksize") or (4, 4))
    if pattern == "nm":
        return nm(m, k, sparsity, rng, opts.get("nm"))
    if pattern == "powerlaw":
        return powerlaw(m, k, sparsity, rng, opts.get("alpha", 1.0))
    if pattern == "selector":
        return selector(m, k, sparsity, rng)
    if pattern == "kwta":
        return kwta(m, k, sparsity, rng)
    raise ValueError(f"unknown pattern {pattern!r}: choose one of {', '.join(PATTERNS)}")


def density_of(mask) -> float:
    size = mask.shape[0] * mask.shape[1]
    return mask.nnz / size if size else 0.0


def sparsity_of(mask) -> float:
    size = mask.shape[0] * mask.shape[1]
    return 1.0 - mask.nnz / size if size else 0.0



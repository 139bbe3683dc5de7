"""Sparsity patterns: requested sparsity hit, canonical CSR, seeded determinism, structure."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

import sparsekit
from sparsekit import patterns
from sparsekit.testing import strategies as sks


def rng(seed=0):
    return np.random.default_rng(seed)


def assert_canonical_mask(mask, shape):
    assert isinstance(mask, sp.csr_matrix)
    assert mask.shape == tuple(shape)
    assert mask.has_sorted_indices
    assert mask.has_canonical_format  # sorted and no duplicates
    # no duplicates, checked directly rather than trusting the flag
    for i in range(mask.shape[0]):
        cols = mask.indices[mask.indptr[i] : mask.indptr[i + 1]]
        assert np.all(np.diff(cols) > 0), f"row {i}: columns {cols} not strictly increasing"
    assert np.all(mask.data == 1.0)
    assert mask.indptr[0] == 0 and mask.indptr[-1] == mask.nnz


@given(sks.masks())
def test_every_pattern_gives_canonical_csr_of_ones(m):
    assert_canonical_mask(m.mask, m.shape)


@given(sks.masks(patterns=("uniform", "powerlaw")))
def test_exact_nnz_uniform_and_powerlaw(m):
    rows, cols = m.shape
    assert m.mask.nnz == int(round((1 - m.sparsity) * rows * cols))


@given(sks.masks(patterns=("selector",)))
def test_selector_keeps_whole_rows(m):
    rows, cols = m.shape
    lengths = np.diff(m.mask.indptr)
    assert set(np.unique(lengths)) <= {0, cols}
    assert np.count_nonzero(lengths) == int(round((1 - m.sparsity) * rows))


@given(sks.masks(patterns=("kwta",)))
def test_kwta_pattern_keeps_same_count_per_column(m):
    rows, cols = m.shape
    per_col = np.asarray(m.mask.sum(axis=0)).ravel()
    assert np.all(per_col == int(round((1 - m.sparsity) * rows)))


@given(sks.masks(patterns=("nm",)))
def test_nm_groups(m):
    n_, m_ = patterns.nm_ratio(None, m.options["nm"])
    rows, cols = m.shape
    dense = m.mask.toarray()
    groups = -(-cols // m_)
    for g in range(groups):
        block = dense[:, g * m_ : (g + 1) * m_]
        width = block.shape[1]
        want = n_ if width == m_ else int(round(n_ * width / m_))
        assert np.all(block.sum(axis=1) == want), f"group {g} (width {width}) of {n_}:{m_}"
    # every row the same length: what format='nm' relies on
    assert len(set(np.diff(m.mask.indptr))) <= 1


@given(sks.masks(patterns=("block",)))
def test_block_alignment_and_count(m):
    bh, bw = m.options["blocksize"]
    rows, cols = m.shape
    dense = m.mask.toarray().astype(bool)
    gm, gk = -(-rows // bh), -(-cols // bw)
    kept = 0
    for i in range(gm):
        for j in range(gk):
            tile = dense[i * bh : (i + 1) * bh, j * bw : (j + 1) * bw]
            assert tile.all() or not tile.any(), f"block ({i}, {j}) is partly filled"
            kept += bool(tile.any())
    assert kept == int(round((1 - m.sparsity) * gm * gk))


@given(sks.masks(), st.integers(0, 2**32 - 1))
def test_masks_are_deterministic_per_seed(m, other_seed):
    again = patterns.make_mask(m.pattern, *m.shape, m.sparsity, rng(m.seed), **m.options)
    assert (again != m.mask).nnz == 0 and again.nnz == m.mask.nnz
    assert np.array_equal(again.indices, m.mask.indices) and np.array_equal(again.indptr, m.mask.indptr)


def test_different_seeds_give_different_masks():
    a = patterns.uniform(32, 32, 0.5, rng(0))
    b = patterns.uniform(32, 32, 0.5, rng(1))
    assert a.nnz == b.nnz
    assert (a != b).nnz > 0


def test_sparsity_extremes():
    for name in ("uniform", "block", "powerlaw", "selector", "kwta"):
        full = patterns.make_mask(name, 8, 12, 0.0, rng())
        empty = patterns.make_mask(name, 8, 12, 1.0, rng())
        assert full.nnz == 96, name
        assert empty.nnz == 0, name
        assert patterns.sparsity_of(full) == 0.0 and patterns.sparsity_of(empty) == 1.0
        assert patterns.density_of(full) == 1.0


def test_powerlaw_row_lengths_are_skewed():
    m = k = 64
    lengths = np.diff(patterns.powerlaw(m, k, 0.9, rng(), alpha=1.0).indptr)
    uniform_lengths = np.diff(patterns.uniform(m, k, 0.9, rng()).indptr)
    assert lengths.sum() == uniform_lengths.sum()
    # Zipf(1): the longest row holds ~1/H_64 of the nonzeros, the median row ~1/(32 H_64)
    assert lengths.max() >= 4 * np.median(lengths)
    assert lengths.max() > 2 * uniform_lengths.max()
    assert np.std(lengths) > 3 * np.std(uniform_lengths)
    # alpha = 0: no skew at all, lengths differ by at most one
    flat = np.diff(patterns.powerlaw(m, k, 0.9, rng(), alpha=0.0).indptr)
    assert flat.max() - flat.min() <= 1


def test_powerlaw_caps_rows_at_k():
    mask = patterns.powerlaw(16, 8, 0.25, rng(), alpha=3.0)
    lengths = np.diff(mask.indptr)
    assert lengths.max() <= 8
    assert mask.nnz == round(0.75 * 128)


@pytest.mark.parametrize(
    "sparsity, expected",
    [(0.5, (2, 4)), (0.75, (1, 4)), (0.875, (1, 8)), (0.0, (4, 4)), (1.0, (0, 4)), (0.9375, (1, 16)), (0.9, (13, 128))],
)
def test_nm_ratio_derived(sparsity, expected):
    assert patterns.nm_ratio(sparsity) == expected


@pytest.mark.parametrize("given_, expected", [("2:4", (2, 4)), ((1, 8), (1, 8)), ("0:1", (0, 1))])
def test_nm_ratio_given(given_, expected):
    assert patterns.nm_ratio(None, given_) == expected


@pytest.mark.parametrize("bad", ["2-4", "x:4", "5:4", "1:0", (3, 2)])
def test_nm_ratio_rejects(bad):
    with pytest.raises(ValueError):
        patterns.nm_ratio(None, bad)


def test_nm_ratio_conflicting_sparsity():
    with pytest.raises(ValueError, match="2:4"):
        patterns.nm_ratio(0.9, "2:4")


def test_unknown_pattern():
    with pytest.raises(ValueError, match="zigzag"):
        patterns.make_mask("zigzag", 4, 4, 0.5, rng())


@pytest.mark.parametrize("bad", [(0, 4), (4, -1), (4,), "ab", None])
def test_bad_blocksize(bad):
    with pytest.raises(ValueError, match="blocksize"):
        patterns.block(8, 8, 0.5, rng(), blocksize=bad)


def test_selected_rows_distinct_in_random_order():
    rows = patterns.selected_rows(100, 40, rng(3))
    assert len(rows) == 40 and len(set(rows.tolist())) == 40
    assert rows.min() >= 0 and rows.max() < 100
    assert not np.all(np.diff(rows) > 0), "a selector's rows come in its own order, not sorted"


# -- through make_problem -------------------------------------------------------------

@pytest.mark.parametrize("kernel", sparsekit.kernels())
def test_make_problem_deterministic(kernel):
    kw = {
        "dense_mm": dict(m=9, k=7, n=5, sparsity=0.5),
        "spmm": dict(m=9, k=7, n=5, sparsity=0.5),
        "sddmm": dict(m=9, k=7, n=5, sparsity=0.5),
        "gather_mm": dict(m=9, k=7, n=5, rows=4),
        "kwta": dict(m=9, n=5, k=3),
        "sparse_sparse": dict(m=9, k=7, n=5, sparsity=0.5, act_k=3),
        "lif": dict(n_in=9, n_out=7, steps=5, sparsity=0.5, rate=0.5),
        "moe": dict(m=9, k=7, n=5),
    }[kernel]
    a = sparsekit.make_problem(kernel, seed=7, **kw)
    b = sparsekit.make_problem(kernel, seed=7, **kw)
    c = sparsekit.make_problem(kernel, seed=8, **kw)
    assert a.inputs.keys() == b.inputs.keys()
    differs = False
    for name in a.inputs:
        x, y, z = a.inputs[name], b.inputs[name], c.inputs[name]
        if sp.issparse(x):
            assert (x != y).nnz == 0 and x.dtype == y.dtype
            x, z = x.toarray(), z.toarray()
        else:
            assert np.array_equal(x, y) and x.dtype == y.dtype
        differs |= x.shape != z.shape or not np.array_equal(x, z)
    assert differs, "seed 7 and seed 8 gave identical inputs"
    np.testing.assert_array_equal(sparsekit.reference(a), sparsekit.reference(b))


@given(sks.masks(patterns=("uniform", "block", "powerlaw", "selector", "kwta")), sks.dtypes(("float32", "float64")))
def test_spmm_weights_follow_the_mask_sparsity(m, dtype):
    """make_problem reports the sparsity it generated, and the weights are canonical CSR."""
    rows, cols = m.shape
    p = sparsekit.make_problem("spmm", m=rows, k=cols, n=2, sparsity=m.sparsity, pattern=m.pattern,
                               dtype=dtype, seed=m.seed, **m.options)
    w = p.inputs["w"]
    assert w.has_canonical_format and w.dtype == np.dtype(dtype)
    if m.pattern != "block":  # clipped edge blocks make block counts depend on which blocks
        assert w.nnz == m.mask.nnz  # same pattern request -> same count (another random stream)
    assert p.params["nnz"] == w.nnz
    assert p.params["sparsity"] == pytest.approx(1 - w.nnz / (rows * cols))
    assert p.sparsity == p.params["sparsity"]


def test_powerlaw_steep_alpha_keeps_exact_nnz():
    mask = patterns.powerlaw(64, 8, 0.5, rng(), alpha=400.0)
    assert mask.nnz == 256

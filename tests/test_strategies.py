"""The strategies draw the edge cases they promise (else the conformance suite would not see them)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

import sparsekit
from sparsekit.testing import strategies as sks

FIND = settings(max_examples=2000, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))


def drawable(strategy, condition):
    """Hypothesis can produce an example satisfying ``condition`` (raises NoSuchExample if not)."""
    return find(strategy, condition, settings=FIND)


def _rows(raw):
    return [raw.indices[raw.indptr[i] : raw.indptr[i + 1]].tolist() for i in range(raw.shape[0])]


def test_sparsity_extremes_drawn():
    drawable(sks.sparsity_levels(), lambda s: s == 0.0)
    drawable(sks.sparsity_levels(), lambda s: s == 1.0)
    drawable(sks.sparsity_levels(), lambda s: 0.0 < s < 1.0 and s not in (0.5, 0.9))


@given(sks.sparsity_levels(0.2, 0.6))
def test_sparsity_levels_respect_bounds(s):
    assert 0.2 <= s <= 0.6


@given(sks.shapes(3, 1, 64))
def test_shapes_small_and_positive(shape):
    assert len(shape) == 3 and all(1 <= s <= 64 for s in shape)


def test_csr_edge_cases_drawn():
    parts = sks.csr_parts(canonical=False)
    drawable(parts, lambda r: any(len(set(row)) < len(row) for row in _rows(r)))  # duplicates
    drawable(parts, lambda r: any(row != sorted(row) for row in _rows(r)))  # unsorted
    drawable(parts, lambda r: len(r.indices) == 0 and r.shape[0] > 1 and r.shape[1] > 1)  # all zero
    drawable(parts, lambda r: len(r.indices) == 1)  # one nonzero
    drawable(parts, lambda r: r.shape == (1, 1))
    drawable(parts, lambda r: len(r.indices) > 0 and any(len(row) == 0 for row in _rows(r)))  # an empty row
    drawable(parts, lambda r: len(r.indices) > 0 and len(set(r.indices.tolist())) < r.shape[1])  # an empty column
    drawable(sks.csr_matrices(canonical=False), lambda w: not w.has_canonical_format)


@given(sks.csr_matrices())
def test_canonical_csr_matrices_are_canonical(w):
    assert w.has_canonical_format and np.all(w.data != 0)


def test_kwta_activations_have_ties():
    drawable(sks.kwta_activations(), lambda xk: any(len(np.unique(c)) < len(c) for c in xk[0].T))
    drawable(sks.kwta_activations(), lambda xk: xk[1] == 0)
    drawable(sks.kwta_activations(), lambda xk: xk[1] == xk[0].shape[0] > 1)


@pytest.mark.parametrize("kernel, condition", [
    ("dense_mm", lambda p: (p.params["m"], p.params["k"], p.params["n"]) == (1, 1, 1)),
    ("spmm", lambda p: p.params["n"] == 1),
    ("spmm", lambda p: p.params["pattern"] == "user" and not p.params["format"] == "nm"),
    ("spmm", lambda p: p.params["format"] == "bsr" and p.params["blocksize"] != (1, 1)),
    ("spmm", lambda p: p.params["format"] == "nm"),
    ("spmm", lambda p: p.params["sparsity"] == 1.0),
    ("spmm", lambda p: p.params["sparsity"] == 0.0 and p.inputs["w"].nnz > 1),
    ("sddmm", lambda p: p.params["nnz"] == 0),
    ("gather_mm", lambda p: p.params["rows"] == 0),
    ("gather_mm", lambda p: p.params["rows"] == p.params["m"] > 1),
    ("kwta", lambda p: p.params["k"] == 0),
    ("kwta", lambda p: p.params["k"] == p.params["m"] > 1),
    ("sparse_sparse", lambda p: p.params["act_k"] == 0),
    ("lif", lambda p: p.params["steps"] == 1),
    ("lif", lambda p: sparsekit.reference(p).any()),  # some problems do spike
    ("moe", lambda p: p.params["top_k"] == p.params["experts"] > 1),
    ("moe", lambda p: p.params["top_k"] < p.params["experts"]),
])
def test_problem_edge_cases_drawn(kernel, condition):
    drawable(sks.problems(kernel, dtype="float32"), condition)


@pytest.mark.parametrize("kernel", sparsekit.kernels())
@given(data=st.data())
def test_problems_are_small_and_in_drawable_dtypes(kernel, data):
    p = data.draw(sks.problems(kernel))
    assert p.dtype in sks.possible_dtypes(kernel)
    for v in p.inputs.values():
        assert max(v.shape, default=0) <= 64

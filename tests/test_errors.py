"""Bad input is refused with an error that names the offending thing."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given

import sparsekit
from sparsekit import io
from sparsekit.testing import strategies as sks

MKN = dict(m=4, k=4, n=2)


# -- names -----------------------------------------------------------------------

def test_unknown_kernel():
    for call in (lambda: sparsekit.make_problem("spgemm", **MKN), lambda: sparsekit.get_kernel("spgemm")):
        with pytest.raises(sparsekit.UnknownKernelError) as info:
            call()
        assert isinstance(info.value, KeyError) and isinstance(info.value, sparsekit.SparsekitError)
        assert "spgemm" in str(info.value) and "spmm" in str(info.value)  # names it and the choices
    with pytest.raises(KeyError):
        sparsekit.get_kernel(["not", "hashable"])


def test_unknown_backend():
    with pytest.raises(sparsekit.UnknownBackendError) as info:
        sparsekit.backend("quantum")
    assert isinstance(info.value, KeyError)
    assert "quantum" in str(info.value)
    assert "numpy" in str(info.value)  # lists what is registered


def test_unknown_parameter():
    with pytest.raises(TypeError, match="bogus"):
        sparsekit.make_problem("spmm", **MKN, sparsity=0.5, bogus=1)
    with pytest.raises(TypeError, match="act_k"):
        sparsekit.make_problem("spmm", **MKN, sparsity=0.5, act_k=1)  # another kernel's parameter


@pytest.mark.parametrize("dtype", ["int32", "float8", "float", None, "FLOAT32", np.int64])
def test_unknown_dtype(dtype):
    with pytest.raises(ValueError, match="unknown dtype") as info:
        sparsekit.make_problem("dense_mm", **MKN, dtype=dtype)
    assert "float32" in str(info.value)  # lists the choices


def test_bad_seed():
    with pytest.raises(TypeError, match="seed"):
        sparsekit.make_problem("dense_mm", **MKN, seed="abc")


# -- shapes ----------------------------------------------------------------------

@pytest.mark.parametrize("kernel, base", [
    ("dense_mm", MKN), ("spmm", dict(MKN, sparsity=0.5)), ("sddmm", dict(MKN, sparsity=0.5)),
    ("gather_mm", dict(MKN, rows=1)), ("kwta", dict(m=4, n=2, k=1)), ("sparse_sparse", dict(MKN, sparsity=0.5)),
    ("lif", dict(n_in=4, n_out=4, steps=2, sparsity=0.5)), ("moe", MKN),
])
@pytest.mark.parametrize("bad", [0, -3])
def test_zero_or_negative_dims(kernel, base, bad):
    dims = [d for d in ("m", "k", "n", "n_in", "n_out", "steps") if d in base]
    if kernel == "kwta":
        dims.remove("k")  # kwta's k counts winners: 0 is valid (see test_kwta_k_out_of_range)
    for d in dims:
        with pytest.raises(ValueError, match=rf"\b{d}\b"):
            sparsekit.make_problem(kernel, **dict(base, **{d: bad}))


@pytest.mark.parametrize("bad", [2.5, "4", None])
def test_non_integer_dims(bad):
    with pytest.raises(TypeError, match=r"\bm\b"):
        sparsekit.make_problem("dense_mm", m=bad, k=4, n=2)


def test_mismatched_shapes():
    w = sp.random(3, 5, density=0.5, random_state=0, format="csr")
    with pytest.raises(ValueError, match="m=4"):
        sparsekit.make_problem("spmm", weights=w, m=4, n=2)
    with pytest.raises(ValueError, match="k=3"):
        sparsekit.make_problem("spmm", weights=w, k=3, n=2)
    with pytest.raises(ValueError, match="n_in"):
        sparsekit.make_problem("lif", weights=w, n_in=4, steps=2)
    with pytest.raises(ValueError, match="does not match DLMC"):
        sparsekit.make_problem("spmm", matrix="transformer_attn_q", sparsity=0.9, m=100, n=2)
    with pytest.raises(ValueError, match="blocksize"):
        sparsekit.make_problem("spmm", m=6, k=8, n=2, sparsity=0.5, format="bsr", blocksize=(4, 4))


# -- sparsity --------------------------------------------------------------------

@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, math.inf])
@pytest.mark.parametrize("kernel, base", [
    ("spmm", MKN), ("sddmm", MKN), ("dense_mm", MKN), ("gather_mm", MKN), ("kwta", dict(m=4, n=2)),
    ("lif", dict(n_in=4, n_out=4, steps=2)),
])
def test_sparsity_out_of_range(kernel, base, bad):
    with pytest.raises(ValueError, match="sparsity"):
        sparsekit.make_problem(kernel, **base, sparsity=bad)


def test_sparsity_not_a_number():
    with pytest.raises(TypeError, match="sparsity"):
        sparsekit.make_problem("spmm", **MKN, sparsity="high")
    with pytest.raises(ValueError, match="act_sparsity|sparsity"):
        sparsekit.make_problem("sparse_sparse", **MKN, sparsity=0.5, act_sparsity=2.0)


def test_missing_sparsity():
    for kernel, base in (("spmm", MKN), ("sddmm", MKN), ("gather_mm", MKN), ("kwta", dict(m=4, n=2))):
        with pytest.raises(ValueError):
            sparsekit.make_problem(kernel, **base)


def test_unknown_pattern_and_format():
    with pytest.raises(ValueError, match="zigzag"):
        sparsekit.make_problem("spmm", **MKN, sparsity=0.5, pattern="zigzag")
    with pytest.raises(ValueError, match="coo"):
        sparsekit.make_problem("spmm", **MKN, sparsity=0.5, format="coo")
    with pytest.raises(ValueError, match="matrix"):
        sparsekit.make_problem("spmm", **MKN, sparsity=0.9, pattern="dlmc")
    with pytest.raises(FileNotFoundError):
        sparsekit.make_problem("spmm", n=2, matrix="transformer_attn_q", sparsity=0.33)


# -- weights ---------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(tmp_path, bad):
    dense = np.array([[1.0, 0.0], [bad, 2.0]])
    for w in (dense, sp.csr_matrix(dense)):
        with pytest.raises(ValueError, match="NaN or Inf"):
            sparsekit.make_problem("spmm", weights=w, n=2)
    np.save(tmp_path / "w.npy", dense)
    with pytest.raises(ValueError, match="w.npy"):
        sparsekit.make_problem("spmm", weights=tmp_path / "w.npy", n=2)


def test_nonexistent_weights_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        sparsekit.make_problem("sparse_sparse", weights=str(tmp_path / "missing.npz"), n=2)


def test_weights_of_wrong_type():
    with pytest.raises(TypeError, match="weights"):
        sparsekit.make_problem("spmm", weights=[[1.0, 2.0]], n=2)
    with pytest.raises(TypeError, match="real numbers"):
        sparsekit.make_problem("spmm", weights=np.array([[1 + 1j]]), n=2)


def test_nm_format_needs_equal_rows():
    w = sp.csr_matrix(np.array([[1.0, 1.0, 0, 0], [1.0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="same number of nonzeros"):
        sparsekit.make_problem("spmm", weights=w, n=2, format="nm")


# -- per-kernel parameters -------------------------------------------------------

def test_kwta_k_out_of_range():
    with pytest.raises(ValueError, match="k=5"):
        sparsekit.make_problem("kwta", m=4, n=2, k=5)
    with pytest.raises(ValueError, match="k=-1"):
        sparsekit.make_problem("kwta", m=4, n=2, k=-1)
    with pytest.raises(TypeError, match="k must be an integer"):
        sparsekit.make_problem("kwta", m=4, n=2, k=1.5)


def test_sparse_sparse_act_k_too_large():
    with pytest.raises(ValueError, match="act_k=5"):
        sparsekit.make_problem("sparse_sparse", **MKN, sparsity=0.5, act_k=5)


def test_gather_rows_invalid():
    with pytest.raises(ValueError, match="rows"):
        sparsekit.make_problem("gather_mm", **MKN, rows=5)
    with pytest.raises(ValueError, match="rows"):
        sparsekit.make_problem("gather_mm", **MKN, rows=np.array([0, 4]))
    with pytest.raises(ValueError, match="rows"):
        sparsekit.make_problem("gather_mm", **MKN, rows=np.array([-1]))
    with pytest.raises(TypeError, match="rows"):
        sparsekit.make_problem("gather_mm", **MKN, rows=np.array([0.5]))
    with pytest.raises(TypeError, match="rows"):
        sparsekit.make_problem("gather_mm", **MKN, rows="two")


def test_moe_top_k_above_experts():
    with pytest.raises(ValueError, match="top_k"):
        sparsekit.make_problem("moe", **MKN, experts=2, top_k=3)
    with pytest.raises(ValueError, match="top_k"):
        sparsekit.make_problem("moe", **MKN, top_k=0)


@pytest.mark.parametrize("key, bad", [("rate", 1.5), ("du", -0.1), ("dv", math.nan), ("vth", math.inf), ("bias", math.nan)])
def test_lif_parameters(key, bad):
    with pytest.raises(ValueError, match=key):
        sparsekit.make_problem("lif", n_in=4, n_out=4, steps=2, sparsity=0.5, **{key: bad})


def test_nm_ratio_conflicts_with_sparsity():
    with pytest.raises(ValueError, match="2:4"):
        sparsekit.make_problem("spmm", **MKN, pattern="nm", nm="2:4", sparsity=0.9)


# -- malformed CSR -----------------------------------------------------------------

@given(sks.malformed_csr_parts())
def test_malformed_csr_parts_rejected(case):
    raw, fault = case
    with pytest.raises(ValueError) as info:
        io.csr_from_parts(raw.data, raw.indices, raw.indptr, raw.shape, what="my_matrix")
    assert "my_matrix" in str(info.value), fault


def test_malformed_user_csr_through_make_problem():
    # SciPy's constructor does not range-check indices: sparsekit must
    w = sp.csr_matrix((np.array([1.0, 2.0]), np.array([0, 7]), np.array([0, 1, 2])), shape=(2, 3))
    with pytest.raises(ValueError, match="column indices"):
        sparsekit.make_problem("spmm", weights=w, n=2)


def test_csr_parts_type_errors():
    with pytest.raises(TypeError, match="integer"):
        io.csr_from_parts([1.0], [0.5], [0, 1], (1, 2))
    with pytest.raises(ValueError, match="dimensions must be >= 1"):
        io.csr_from_parts([], [], [0], (-1, 2))


@given(sks.csr_parts(canonical=False))
def test_csr_from_parts_sums_duplicates_and_sorts(raw):
    w = io.csr_from_parts(raw.data, raw.indices, raw.indptr, raw.shape)
    assert w.has_canonical_format
    np.testing.assert_array_equal(w.toarray(), raw.dense())


@given(raw=sks.csr_parts(canonical=False, max_side=12), dtype=sks.dtypes(("float32", "float64", "bfloat16")))
def test_duplicate_user_indices_are_summed_like_scipy(raw, dtype):
    """A user CSR with unsorted/duplicate indices means what SciPy says it means (summed)."""
    w = raw.to_scipy()
    data_before = w.data.copy()
    p = sparsekit.make_problem("spmm", weights=w, n=3, dtype=dtype, seed=1)
    np.testing.assert_array_equal(p.inputs["w"].toarray(), raw.dense())  # exact: values are quarters
    assert p.inputs["w"].has_canonical_format
    x = p.inputs["x"].astype(np.float64)
    np.testing.assert_allclose(sparsekit.reference(p), w.toarray() @ x, rtol=1e-12, atol=1e-12)
    assert np.array_equal(w.data, data_before), "the user's matrix was modified"

"""Loading weights: DLMC .smtx (vendored and tmp files), .npz, .npy; malformed files."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given

import sparsekit
from sparsekit import io
from sparsekit.testing import strategies as sks

SMALL = "3, 4, 4\n0 2 2 4\n3 0 1 2\n"  # rows: {0, 3}, {}, {1, 2}; unsorted row 0
SMALL_DENSE = np.array([[1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 1, 0]], dtype=float)


@pytest.mark.parametrize("name", sorted(io.DLMC_MATRICES))
@pytest.mark.parametrize("level", io.DLMC_LEVELS)
def test_vendored_dlmc(name, level):
    path = io.dlmc_path(name, level)
    assert path.is_file() and path.name.endswith(".smtx.gz")
    mask = io.load_smtx(path)
    assert isinstance(mask, sp.csr_matrix) and mask.has_canonical_format
    assert np.all(mask.data == 1.0)
    shape = {"transformer_attn_q": (512, 512), "rn50_conv3x3": (256, 2304)}[name]
    assert mask.shape == shape
    # DLMC masks are pruned to the level, to within one entry
    assert abs(1 - mask.nnz / (shape[0] * shape[1]) - level) <= 1.0 / (shape[0] * shape[1]) + 1e-12
    # the header's nnz is the count
    with gzip.open(path, "rt") as f:
        assert int(f.readline().split(",")[2]) == mask.nnz


def test_dlmc_through_make_problem():
    p = sparsekit.make_problem("spmm", n=2, matrix="transformer_attn_q", sparsity=0.95, seed=3)
    mask = io.load_smtx(io.dlmc_path("transformer_attn_q", 0.95))
    w = p.inputs["w"]
    assert (w != 0).nnz == mask.nnz and np.array_equal(w.indices, mask.indices)
    assert p.params["pattern"] == "dlmc" and p.params["m"] == 512 and p.params["k"] == 512
    again = sparsekit.make_problem("spmm", n=2, pattern="dlmc", matrix="transformer_attn_q", sparsity=0.95, seed=3)
    np.testing.assert_array_equal(again.inputs["w"].data, w.data)  # values seeded


def test_dlmc_path_forms(tmp_path, monkeypatch):
    by_path = io.dlmc_path("rn50/magnitude_pruning/0.9/bottleneck_2_block_group3_1_1")
    assert by_path == io.dlmc_path("rn50_conv3x3", 0.9)
    assert io.dlmc_path("dlmc/rn50/magnitude_pruning/0.9/bottleneck_2_block_group3_1_1.smtx") == by_path
    with pytest.raises(ValueError, match="sparsity level"):
        io.dlmc_path("rn50_conv3x3")
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        io.dlmc_path("rn50/magnitude_pruning/0.9/nothing_here")
    # an extra collection folder
    (tmp_path / "extra" / "l0").mkdir(parents=True)
    (tmp_path / "extra" / "l0" / "m.smtx").write_text(SMALL)
    monkeypatch.setenv("SPARSEKIT_DLMC_DIR", str(tmp_path / "extra"))
    assert io.dlmc_path("l0/m") == tmp_path / "extra" / "l0" / "m.smtx"
    w = io.as_csr("dlmc:l0/m", np.random.default_rng(0))
    assert (w != 0).toarray().astype(float).tolist() == SMALL_DENSE.tolist()


@pytest.mark.parametrize("compress", [False, True])
def test_tmp_smtx(tmp_path, compress):
    path = tmp_path / ("m.smtx.gz" if compress else "m.smtx")
    if compress:
        with gzip.open(path, "wt") as f:
            f.write(SMALL)
    else:
        path.write_text(SMALL)
    mask = io.load_smtx(path)
    np.testing.assert_array_equal(mask.toarray(), SMALL_DENSE)
    assert mask.has_canonical_format  # row 0 came unsorted
    # as user weights: topology from the file, seeded standard-normal values
    p = sparsekit.make_problem("spmm", weights=str(path), n=3, seed=1)
    assert p.inputs["w"].shape == (3, 4) and p.params["pattern"] == "user"
    np.testing.assert_array_equal(p.inputs["w"].toarray() != 0, SMALL_DENSE != 0)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("3 4\n0 1 1 1\n0\n", "first line"),
        ("a, b, c\n0\n\n", "first line"),
        ("3, 4, 2\n0 1 1 1\n0\n", "nnz=2"),
        ("3, 4, 1\n0 1 x 1\n0\n", "integers"),
        ("3, 4, 1\n0 1 1\n0\n", "indptr"),
        ("3, 4, 1\n0 1 1 1\n9\n", "column indices"),
        ("3, 4, 2\n0 2 1 2\n0 1\n", "non-decreasing"),
        ("", "first line"),
    ],
)
def test_malformed_smtx_names_the_file(tmp_path, text, fragment):
    path = tmp_path / "broken_matrix.smtx"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        io.load_smtx(path)
    assert "broken_matrix.smtx" in str(info.value)
    assert fragment in str(info.value)


def test_missing_files(tmp_path):
    missing = tmp_path / "nope.smtx"
    with pytest.raises(FileNotFoundError, match="nope.smtx"):
        io.load_smtx(missing)
    for name in ("nope.npz", "nope.npy", "nope.smtx"):
        with pytest.raises(FileNotFoundError, match=name):
            io.as_csr(str(tmp_path / name))
        with pytest.raises(FileNotFoundError, match=name):
            sparsekit.make_problem("spmm", weights=tmp_path / name, n=2)


@given(w=sks.csr_matrices(max_side=12))
def test_npz_roundtrip(tmp_path_factory, w):
    path = tmp_path_factory.mktemp("npz") / "w.npz"
    sp.save_npz(path, w)
    got = io.as_csr(path)
    assert got.dtype == np.float64 and got.has_canonical_format
    np.testing.assert_array_equal(got.toarray(), w.toarray())


def test_npz_other_formats(tmp_path):
    dense = np.array([[0, 1.5, 0], [2, 0, -3]])
    for fmt in ("coo", "csc", "bsr"):
        path = tmp_path / f"w_{fmt}.npz"
        sp.save_npz(path, sp.csr_matrix(dense).asformat(fmt))
        np.testing.assert_array_equal(io.as_csr(path).toarray(), dense)
    p = sparsekit.make_problem("spmm", weights=tmp_path / "w_coo.npz", n=4, dtype="float64")
    np.testing.assert_array_equal(p.inputs["w"].toarray(), dense)
    assert (p.params["m"], p.params["k"]) == (2, 3)


def test_npy_dense(tmp_path):
    dense = np.array([[0, 1.5, 0], [2, 0, -3]], dtype=np.float32)
    path = tmp_path / "w.npy"
    np.save(path, dense)
    got = io.as_csr(path)
    np.testing.assert_array_equal(got.toarray(), dense)
    assert got.nnz == 3  # zeros are dropped


@pytest.mark.parametrize(
    "name, writer, fragment",
    [
        ("corrupt.npz", lambda p: p.write_bytes(b"not a zip"), "scipy.sparse"),
        ("dense_in.npz", lambda p: np.savez(p, a=np.ones(3)), "scipy.sparse"),
        ("corrupt.npy", lambda p: p.write_bytes(b"garbage"), ".npy"),
        ("vector.npy", lambda p: np.save(p, np.ones(3)), "2-D"),
        ("nan.npy", lambda p: np.save(p, np.array([[1.0, np.nan]])), "NaN"),
        ("inf.npz", lambda p: sp.save_npz(p, sp.csr_matrix(np.array([[np.inf, 0.0]]))), "NaN or Inf"),
        ("strings.npy", lambda p: np.save(p, np.array([["a", "b"]])), "real numbers"),
        ("weights.txt", lambda p: p.write_text("1 2 3"), "unknown weights format"),
    ],
)
def test_malformed_weight_files_name_the_file(tmp_path, name, writer, fragment):
    path = tmp_path / name
    writer(path)
    with pytest.raises((ValueError, TypeError)) as info:
        io.as_csr(path)
    assert name in str(info.value)
    assert fragment in str(info.value)
    if info.type is not TypeError:
        assert info.type is ValueError


def test_as_csr_in_memory():
    dense = np.array([[0.0, 2.0], [0.0, 0.0]])
    assert io.as_csr(dense).nnz == 1
    assert io.as_csr(sp.coo_matrix(dense)).nnz == 1
    assert io.as_csr(sp.csr_array(dense)).toarray().tolist() == dense.tolist()
    assert io.as_csr(dense.astype(np.int32)).dtype == np.float64
    with pytest.raises(TypeError, match="weights"):
        io.as_csr([[1.0, 2.0]])  # a list is not a matrix
    with pytest.raises(ValueError, match="2-D"):
        io.as_csr(np.ones(3))


@pytest.mark.parametrize("name, content", [("plain.smtx.gz", b"3, 4, 1\n0 1 1 1\n0\n"), ("binary.smtx", b"\xff\xfe\x00junk")],
                         ids=["not-gzip", "binary"])
def test_unreadable_smtx_is_a_value_error_naming_the_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        io.load_smtx(path)
    assert name in str(info.value)

"""Hostile weight files: every defect is a ValueError naming the file, raised fast, allocating little.

Hand-written cases cover each defect the loaders check (truncation, oversized or
lying headers, negative and out-of-range indices, non-monotone offsets, wrong
lengths, non-numeric and non-finite data, object arrays that would need pickle);
Hypothesis then mutates the bytes of valid ``.smtx``, ``.smtx.gz``, ``.npy`` and
``.npz`` files and asserts each mutant either loads as a well-formed matrix or
raises ``ValueError`` -- never another exception, never a hang, never a huge
allocation (``tracemalloc`` bounds what one load may allocate).
"""
from __future__ import annotations

import gzip
import io as pyio
import struct
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsekit import io

ROOT = Path(__file__).resolve().parents[1]
SMTX = "3, 4, 5\n0 2 3 5\n1 3 0 0 2\n"
#: no hostile load may allocate more than this (a lying header declares terabytes)
ALLOC_LIMIT = 64 * 2**20


def _load(path: Path):
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        return io.as_csr(path)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        elapsed = time.perf_counter() - t0
        assert peak < ALLOC_LIMIT, f"loading {path.name} allocated {peak} bytes"
        assert elapsed < 5, f"loading {path.name} took {elapsed:.1f} s"


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = pyio.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _npy_with_header(header: dict, body: bytes = b"") -> bytes:
    buf = pyio.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + body


def _npz_bytes(w, **override) -> bytes:
    buf = pyio.BytesIO()
    sp.save_npz(buf, w, compressed=False)
    if not override:
        return buf.getvalue()
    with zipfile.ZipFile(pyio.BytesIO(buf.getvalue())) as z:
        members = {n: z.read(n) for n in z.namelist()}
    for name, raw in override.items():
        members[name + ".npy"] = raw
    out = pyio.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, raw in members.items():
            z.writestr(n, raw)
    return out.getvalue()


W = sp.csr_matrix(np.array([[0, 1.5, 0, 2], [0, 0, 0, -1], [3, 0, 4, 0]]))
HUGE = {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}

#: name -> (file name, bytes, fragment the message must contain)
CASES = {
    # .smtx
    "smtx truncated": ("t.smtx", SMTX[:-8].encode(), "truncated"),
    "smtx huge declared nnz": ("h.smtx", b"100000, 100000, 9000000000\n0 1\n0\n", "truncated"),
    "smtx nnz > m*k": ("n.smtx", b"2, 2, 5\n0 1 2\n0 1\n", "more than nrows*ncols"),
    "smtx negative dims": ("d.smtx", b"-3, 4, 1\n0 1\n0\n", "nrows"),
    "smtx negative index": ("ni.smtx", b"2, 3, 2\n0 1 2\n0 -1\n", "column indices"),
    "smtx index out of range": ("oi.smtx", b"2, 3, 2\n0 1 2\n0 3\n", "column indices"),
    "smtx indptr not monotone": ("mo.smtx", b"3, 3, 2\n0 2 1 2\n0 1\n", "non-decreasing"),
    "smtx indptr end != nnz": ("en.smtx", b"2, 3, 2\n0 1 1\n0 1\n", "must agree"),
    "smtx wrong indptr length": ("wl.smtx", b"3, 3, 2\n0 1 2\n0 1\n", "row offsets"),
    "smtx non-numeric": ("nn.smtx", b"2, 3, 2\n0 1 2\n0 x\n", "integers"),
    "smtx float index": ("fi.smtx", b"2, 3, 2\n0 1 2\n0 1.5\n", "integers"),
    "smtx int64 overflow": ("of.smtx", b"2, 3, 2\n0 1 2\n0 99999999999999999999999\n", "integers"),
    "smtx overlong line": ("ol.smtx", b"2, 3, 2\n0 1 2 " + b"0 " * 5000 + b"\n0 1\n", "longer than"),
    "smtx binary": ("b.smtx", b"\x00\xff\x13\x37" * 20, "smtx"),
    "smtx.gz corrupt stream": ("c.smtx.gz", gzip.compress(SMTX.encode())[:-12] + b"\x00" * 4, "smtx"),
    "smtx.gz huge declared": ("h.smtx.gz", gzip.compress(b"100000, 100000, 9000000000\n0 1\n0\n"), "memory"),
    "smtx.gz plausible offsets, short data": ("p.smtx.gz", gzip.compress(
        ("1000, 1000, 5000\n" + " ".join(["0"] * 1000 + ["5000"]) + "\n0 1 2\n").encode()), "truncated"),
    # .npy
    "npy truncated": ("t.npy", _npy_bytes(np.ones((8, 8)))[:-5], "truncated"),
    "npy huge declared shape": ("h.npy", _npy_with_header(HUGE, b"\x00" * 64), "truncated"),
    "npy trailing bytes": ("x.npy", _npy_bytes(np.ones((2, 2))) + b"junk", "wrong length"),
    "npy oversized header": ("o.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{", ".npy"),
    "npy object array": ("p.npy", _npy_with_header({"descr": "|O", "fortran_order": False, "shape": (2, 2)},
                                                    b"\x00" * 32), "pickle"),
    "npy negative shape": ("s.npy", _npy_with_header({"descr": "<f8", "fortran_order": False, "shape": (-1, 4)}), ".npy"),
    "npy strings": ("str.npy", _npy_bytes(np.array([["a", "b"]])), "real numbers"),
    "npy complex": ("cx.npy", _npy_bytes(np.ones((2, 2), dtype=complex)), "real numbers"),
    "npy 3-D": ("3d.npy", _npy_bytes(np.ones((2, 2, 2))), "2-D"),
    "npy NaN": ("nan.npy", _npy_bytes(np.array([[1.0, np.nan]])), "NaN"),
    "npy bad magic": ("m.npy", b"PK\x03\x04 not numpy at all", ".npy"),
    # .npz
    "npz not a zip": ("z.npz", b"definitely not a zip", "scipy.sparse"),
    "npz truncated": ("t.npz", _npz_bytes(W)[:-40], "scipy.sparse"),
    "npz huge declared data": ("h.npz", _npz_bytes(W, data=_npy_with_header({**HUGE, "shape": (10**12,)})), "truncated"),
    "npz object member": ("o.npz", _npz_bytes(W, indices=_npy_with_header(
        {"descr": "|O", "fortran_order": False, "shape": (5,)}, b"\x00" * 40)), "pickle"),
    "npz negative index": ("ni.npz", _npz_bytes(W, indices=_npy_bytes(np.array([1, 3, 3, -1, 2], np.int32))),
                           "column indices"),
    "npz index out of range": ("oi.npz", _npz_bytes(W, indices=_npy_bytes(np.array([1, 3, 3, 0, 9], np.int32))),
                               "column indices"),
    "npz indptr not monotone": ("mo.npz", _npz_bytes(W, indptr=_npy_bytes(np.array([0, 3, 2, 5], np.int32))),
                                "non-decreasing"),
    "npz wrong data length": ("wl.npz", _npz_bytes(W, data=_npy_bytes(np.ones(3))), "must agree"),
    "npz wrong indptr length": ("wp.npz", _npz_bytes(W, indptr=_npy_bytes(np.array([0, 2, 5], np.int32))), "indptr"),
    "npz non-numeric data": ("nd.npz", _npz_bytes(W, data=_npy_bytes(np.array(list("abcde")))), "real numbers"),
    "npz bad shape": ("bs.npz", _npz_bytes(W, shape=_npy_bytes(np.array([-3, 4]))), "shape"),
    "npz unknown format": ("uf.npz", _npz_bytes(W, format=_npy_bytes(np.array(b"lil"))), "not supported"),
    "npz missing member": ("mm.npz", _npz_bytes(W, format=_npy_bytes(np.array(b"coo"))), "no 'row' array"),
    "npz coo out of range": ("co.npz", _npz_bytes(W.tocoo(), row=_npy_bytes(np.array([0, 0, 1, 2, 7], np.int32))),
                             "row indices"),
    "npz csc out of range": ("cc.npz", _npz_bytes(W.tocsc(), indices=_npy_bytes(np.array([2, 0, 2, 0, 9], np.int32))),
                             "column indices"),
    "npz inf": ("inf.npz", _npz_bytes(sp.csr_matrix(np.array([[np.inf, 0.0]]))), "NaN or Inf"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_file_is_a_clear_value_error(tmp_path, case):
    name, raw, fragment = CASES[case]
    path = tmp_path / name
    path.write_bytes(raw)
    with pytest.raises(ValueError) as info:
        _load(path)
    assert info.type is ValueError or issubclass(info.type, ValueError)
    assert name in str(info.value), str(info.value)
    assert fragment in str(info.value), str(info.value)


def test_the_valid_originals_load(tmp_path):
    for name, raw in (("ok.smtx", SMTX.encode()), ("ok.smtx.gz", gzip.compress(SMTX.encode())),
                      ("ok.npy", _npy_bytes(W.toarray())), ("ok.npz", _npz_bytes(W)),
                      ("f.npy", _npy_bytes(np.asfortranarray(W.toarray()))),
                      ("csc.npz", _npz_bytes(W.tocsc())), ("coo.npz", _npz_bytes(W.tocoo())),
                      ("bsr.npz", _npz_bytes(sp.bsr_matrix(W.toarray()[:2, :4], blocksize=(2, 2))))):
        path = tmp_path / name
        path.write_bytes(raw)
        got = _load(path)
        assert got.has_canonical_format and got.dtype == np.float64
        if "smtx" in name:
            assert got.shape == (3, 4) and got.nnz == 5
        elif name == "bsr.npz":
            np.testing.assert_array_equal(got.toarray(), W.toarray()[:2, :4])
        else:
            np.testing.assert_array_equal(got.toarray(), W.toarray())


def test_no_allow_pickle_true_anywhere():
    offenders = []
    for folder in ("sparsekit", "backends", "benchmarks"):
        for f in (ROOT / folder).rglob("*.py"):
            if "allow_pickle=True" in f.read_text(errors="replace").replace(" ", ""):
                offenders.append(str(f.relative_to(ROOT)))
    assert offenders == []


# -- fuzz: byte mutations of valid files ------------------------------------------------------------

ORIGINALS = {
    "m.smtx": SMTX.encode(),
    "m.smtx.gz": gzip.compress(SMTX.encode()),
    "w.npy": _npy_bytes(W.toarray()),
    "w.npz": _npz_bytes(W),
}


@st.composite
def mutants(draw):
    name = draw(st.sampled_from(sorted(ORIGINALS)))
    raw = bytearray(ORIGINALS[name])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]))
        if not raw:
            break
        i = draw(st.integers(0, len(raw) - 1))
        if op == "flip":
            raw[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            raw[i] = draw(st.sampled_from(b"0123456789-,. \n\xff\x00"))
        elif op == "truncate":
            del raw[i:]
        elif op == "insert":
            raw[i:i] = draw(st.binary(min_size=1, max_size=8))
        else:
            del raw[i:i + draw(st.integers(1, 8))]
    return name, bytes(raw)


@settings(max_examples=300)
@given(mutant=mutants())
def test_mutated_files_load_or_raise_value_error(tmp_path_factory, mutant):
    name, raw = mutant
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(raw)
    try:
        w = _load(path)
    except ValueError as e:
        assert name in str(e)
        return
    # accepted: then it must be a well-formed, finite float64 CSR
    assert sp.issparse(w) and w.dtype == np.float64 and w.has_canonical_format
    assert np.all(np.isfinite(w.data))
    assert w.indices.size == 0 or (w.indices.min() >= 0 and w.indices.max() < w.shape[1])

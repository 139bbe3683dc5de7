"""The ``cupy`` backend, on a machine with or without a GPU.

Without a GPU (CI) this checks everything that does not need one: that the
backend is listed unavailable with the precise reason and that its conformance
tests skip cleanly; the probe, its cache and its failure paths (with the
stand-in ``cupy`` package of ``tests/standin_cupy`` on the path); the array code
it shares with the numpy backend (``sparsekit.xp``) run with ``xp=numpy`` against
the oracles; the host layouts, strategy choices and launch shapes (``_layout``),
with the kernels' index formulas replayed in NumPy; the CUDA sources compiled by
``nvcc`` for every dtype (and with CuPy's ``-ftz=true``: no flush-to-zero
instruction may appear); that every launch in ``backend.py`` names exactly its
kernel's parameters; and, on the stand-in's pretend device, the backend's
library paths (cuSPARSE bound once, cuBLAS, moe) and its TF32 guard.

With a GPU (``pytest --backend cupy``) the conformance suite checks the results;
the last tests here run the forced strategies (our CSR kernels beside cuSPARSE,
sort-based k-WTA, global-memory sparse x sparse) against the oracles.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import sparsekit
from sparsekit import xp as skxp
from sparsekit.kernels.moe import route as oracle_route
from sparsekit.kernels.sddmm import SDDMM
from sparsekit.testing import strategies as sks

sparsekit_cupy = pytest.importorskip("sparsekit_cupy")
from sparsekit_cupy import _layout as lay  # noqa: E402
from sparsekit_cupy import _sources as src  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BACKEND_FILE = ROOT / "backends" / "sparsekit_cupy" / "backend.py"
STANDIN = ROOT / "tests" / "standin_cupy"
STANDIN_MODE = "SPARSEKIT_STANDIN_CUPY"
HAVE_CUPY = importlib.util.find_spec("cupy") is not None


def _cupy_record():
    return {r.name: r for r in sparsekit.backends()}["cupy"]


# -- registration and unavailability ----------------------------------------------------------

def test_listed_with_its_kernels_and_dtypes():
    rec = _cupy_record()
    assert rec.load == "sparsekit_cupy.backend:CupyBackend"
    assert set(rec.kernels) == set(sparsekit_cupy.KERNELS)
    assert rec.dtypes == ("float16", "float32", "float64")
    if not rec.available:
        assert rec.reason, "an unavailable backend must say why"


@pytest.mark.skipif(HAVE_CUPY, reason="CuPy is installed here")
def test_without_cupy_the_reason_is_the_missing_package():
    rec = _cupy_record()
    assert not rec.available
    assert rec.reason == "missing Python package(s): cupy"
    with pytest.raises(sparsekit.BackendUnavailable, match="missing Python package"):
        sparsekit.backend("cupy")


def test_info_imports_no_cupy(tmp_path):
    code = ("import sys, sparsekit_cupy; info = sparsekit_cupy.info(); "
            "assert 'cupy' not in sys.modules, 'info() imported cupy'; print(info['name'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "cupy"


@pytest.mark.skipif(HAVE_CUPY and _cupy_record().available, reason="a GPU is here: the suite runs for real")
def test_conformance_tests_skip_cleanly_without_a_gpu():
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--backend", "cupy",
                          str(ROOT / "tests" / "test_conformance.py"), "-k", "test_grid and dense_mm-dense-float32"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "1 skipped" in out.stdout and "passed" not in out.stdout and "failed" not in out.stdout
    assert "unavailable" in out.stdout


# -- the probe, with the stand-in cupy package ---------------------------------------------------

def _listing_with(mode: str, cache: Path, extra_env: dict | None = None) -> dict:
    """sparsekit.backends()'s cupy record in a fresh process that finds the stand-in cupy in ``mode``."""
    code = ("import json, sparsekit; r = {b.name: b for b in sparsekit.backends()}['cupy']; "
            "print(json.dumps({'available': r.available, 'reason': r.reason, 'device': r.device}))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(STANDIN), os.environ.get("PYTHONPATH", "")]),
           "XDG_CACHE_HOME": str(cache), STANDIN_MODE: mode, **(extra_env or {})}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cupy_without_a_device_is_unavailable_with_the_cuda_error(tmp_path):
    cache = tmp_path / "cache"
    rec = _listing_with("nodevice", cache)
    assert not rec["available"]
    assert "cudaErrorNoDevice" in rec["reason"] and "no usable device" in rec["reason"]
    assert rec["device"] == "no CUDA device"
    entries = json.loads((cache / "sparsekit" / "cupy-probe.json").read_text())["entries"]
    assert [e["ok"] for e in entries.values()] == [False]  # "no device" is cached (keyed by the driver files)


def test_zero_devices_and_a_bad_device_index(tmp_path):
    assert _listing_with("zero", tmp_path / "c1")["reason"] == "CUDA reports no device"
    rec = _listing_with("zero", tmp_path / "c2", {"SPARSEKIT_CUPY_DEVICE": "gpu0"})
    assert "SPARSEKIT_CUPY_DEVICE='gpu0' is not a CUDA device index" in rec["reason"]


def test_a_crashing_probe_is_reported_and_not_cached(tmp_path):
    cache = tmp_path / "cache"
    rec = _listing_with("crash", cache)
    assert not rec["available"]
    assert rec["reason"] == "the CUDA device probe failed: exit status 3"
    assert not (cache / "sparsekit" / "cupy-probe.json").exists()


def test_a_working_device_is_listed_with_its_name(tmp_path):
    rec = _listing_with("device", tmp_path / "cache")
    assert rec["available"] and rec["reason"] == ""
    assert rec["device"].startswith("Stand-in GPU (sm_90, 16.0 GiB; CUDA runtime 13.0, driver 13.0)")


def test_parse_probe_output():
    ok = {"ok": True, "name": "X"}
    assert sparsekit_cupy.parse_probe_output("noise\n" + sparsekit_cupy.PROBE_MARKER + json.dumps(ok), "", 0) == ok
    bad = sparsekit_cupy.parse_probe_output("", "Traceback ...\nImportError: libcuda.so.1: cannot open\n", 1)
    assert bad == {"ok": False, "cache": False, "reason": "the CUDA device probe failed: ImportError: libcuda.so.1: cannot open"}


def test_device_label():
    desc = {"name": "NVIDIA H100", "cc": "90", "memory": 80 * 2**30, "runtime": "12.8", "driver": "12.9", "index": 0}
    assert sparsekit_cupy.device_label(desc) == "NVIDIA H100 (sm_90, 80.0 GiB; CUDA runtime 12.8, driver 12.9) device 0"


# -- packaging: the CuPy wheel for the host's CUDA --------------------------------------------------

def test_extras_name_the_wheel_for_each_cuda_major():
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["cupy"] == ["cupy-cuda13x>=14"] and extras["cupy-cuda12"] == ["cupy-cuda12x>=13"]
    from sparsekit import versions

    assert {"cupy-cuda13x", "cupy-cuda12x"} <= set(versions.PACKAGES)  # whichever is installed is reported


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("banner, extra", [("CUDA Version: 13.0", "cupy"), ("CUDA Version: 12.4", "cupy-cuda12"),
                                           ("CUDA Version: 11.8", ""), (None, "")])
def test_make_picks_the_extra_from_nvidia_smi(tmp_path, banner, extra):
    """The Makefile adds the extra matching the driver's CUDA major version, none without nvidia-smi."""
    path = os.environ.get("PATH", "")
    if banner is not None:
        (tmp_path / "nvidia-smi").write_text(f"#!/bin/sh\necho '| NVIDIA-SMI 580.159   Driver Version: 580.159   {banner} |'\n")
        (tmp_path / "nvidia-smi").chmod(0o755)
        path = f"{tmp_path}:{path}"
    else:
        path = os.pathsep.join(d for d in path.split(os.pathsep) if not (Path(d) / "nvidia-smi").exists())
    out = subprocess.run(["make", "-n", "-p", "-f", str(ROOT / "Makefile"), "venv"], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "PATH": path}, timeout=60)
    values = dict(re.findall(r"^(CUPY_EXTRA|EXTRAS) :?= ?(.*)$", out.stdout, re.M))
    assert values["CUPY_EXTRA"].strip() == extra
    assert values["EXTRAS"].endswith("$(if $(CUPY_EXTRA),$(comma)$(CUPY_EXTRA),)")  # what the install takes


# -- the shared array code, with xp = numpy ------------------------------------------------------

def test_namespace_is_numpy_for_host_arrays():
    assert skxp.namespace(np.zeros(2), [1]) is np


@given(data=st.data())
@settings(max_examples=40)
def test_kwta_select_matches_the_oracle(data):
    dtype = data.draw(st.sampled_from(["float32", "float64"]))
    x, k = data.draw(sks.kwta_activations())
    p = sks.kwta_problem(x, k, dtype)
    y = skxp.kwta_select(np, p.inputs["x"], p.params["k"])
    assert y.dtype == p.inputs["x"].dtype
    c = sparsekit.check(p, y)
    assert c.ok, c.detail


def test_kwta_select_rejects_bad_k():
    with pytest.raises(ValueError, match="0 <= k <= m"):
        skxp.kwta_select(np, np.zeros((3, 2)), 4)
    with pytest.raises(ValueError, match="2-D"):
        skxp.kwta_select(np, np.zeros(3), 1)


@given(e=st.integers(1, 9), n=st.integers(1, 12), top_k=st.integers(1, 9), seed=st.integers(0, 2**16),
       ties=st.booleans())
def test_route_equals_the_catalogue_route(e, n, top_k, seed, ties):
    top_k = min(top_k, e)
    rng = np.random.default_rng(seed)
    logits = rng.integers(-2, 3, size=(e, n)).astype(float) if ties else rng.standard_normal((e, n))
    order, weight = skxp.route(np, logits, top_k)
    ref_order, ref_weight = oracle_route(logits, top_k)
    np.testing.assert_array_equal(order, ref_order)
    np.testing.assert_array_equal(weight, ref_weight)


def test_route_rejects_bad_top_k():
    with pytest.raises(ValueError, match="top_k"):
        skxp.route(np, np.zeros((3, 2)), 4)


@given(e=st.integers(1, 8), n=st.integers(1, 20), top_k=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_expert_groups_cover_every_choice_once(e, n, top_k, seed):
    top_k = min(top_k, e)
    order, _ = skxp.route(np, np.random.default_rng(seed).standard_normal((e, n)), top_k)
    seen = []
    for expert, slots, tokens in skxp.expert_groups(np, order, e):
        assert len(set(tokens.tolist())) == len(tokens)  # distinct: y[:, tokens] += ... is safe
        assert (order[slots, tokens] == expert).all()
        seen += list(zip(slots.tolist(), tokens.tolist()))
    assert sorted(seen) == sorted((s, t) for s in range(top_k) for t in range(n))


def test_expert_groups_rejects_foreign_experts():
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        skxp.expert_groups(np, np.array([[0, 3]]), 2)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [dict(m=24, k=16, n=20, experts=8, top_k=2), dict(m=5, k=7, n=1, experts=3, top_k=3),
                                   dict(m=9, k=4, n=6, experts=1, top_k=1)])
@pytest.mark.parametrize("wide", [False, True])
def test_moe_forward_matches_the_oracle(dtype, shape, wide):
    p = sparsekit.make_problem("moe", dtype=dtype, seed=3, **shape)
    x, gate, experts = (p.inputs[k] for k in ("x", "gate", "experts"))
    kw = dict(acc_dtype=np.float64, route_dtype=np.float64) if wide else {}
    y = skxp.moe_forward(np, x, gate, experts, p.params["top_k"], **kw)
    assert y.dtype == x.dtype
    c = sparsekit.check(p, y)
    assert c.ok, c.detail


def test_moe_forward_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="do not agree"):
        skxp.moe_forward(np, np.zeros((4, 3)), np.zeros((2, 5)), np.zeros((2, 6, 4)), 1)


# -- host layouts, with the kernels' index formulas replayed in NumPy ---------------------------

def _x(k, n, seed=0):
    return np.random.default_rng(seed).standard_normal((k, n))


@given(w=sks.csr_matrices(shape=(12, 16), canonical=False), bs=st.sampled_from([(1, 1), (2, 4), (4, 4), (3, 8), (12, 2)]))
def test_bsr_arrays_give_the_product(w, bs):
    indptr, indices, blocks = lay.bsr_arrays(w, bs)
    bh, bw = bs
    x = _x(16, 3)
    y = np.zeros((12, 3))
    for br in range(12 // bh):  # bsr_spmm's loop
        for p in range(indptr[br], indptr[br + 1]):
            y[br * bh:(br + 1) * bh] += blocks[p] @ x[indices[p] * bw:(indices[p] + 1) * bw]
    np.testing.assert_allclose(y, w.toarray() @ x, atol=1e-12)
    assert indptr.dtype == indices.dtype == np.int32


def test_bsr_arrays_reject_a_blocksize_that_does_not_divide():
    with pytest.raises(ValueError, match="must divide"):
        lay.bsr_arrays(sp.random(6, 8, 0.5, format="csr"), (4, 4))


@pytest.mark.parametrize("nm", ["2:4", "1:8", "4:8"])
def test_ell_arrays_give_the_product(nm):
    p = sparsekit.make_problem("spmm", m=20, k=32, n=5, nm=nm, format="nm", dtype="float64", seed=2)
    cols, vals = lay.ell_arrays(p.inputs["w"])
    r, m = cols.shape
    x = p.inputs["x"]
    flat_c, flat_v = cols.ravel(), vals.ravel()
    y = np.zeros((m, x.shape[1]))
    for row in range(m):  # ell_spmm's loop: entry q of row i at q * m + i
        for q in range(r):
            y[row] += flat_v[q * m + row] * x[flat_c[q * m + row]]
    np.testing.assert_allclose(y, p.inputs["w"] @ x, atol=1e-12)


def _ss_kernel_replay(w, act, slices: int):
    """ss_scatter's loops in NumPy over a grid of n columns x ``slices`` row slices: each block binary-
    searches its slice in every selected column of W and writes its run of yt (n x m)."""
    m, n = w.shape[0], act.shape[1]
    wptr, wrow, wval = lay.csc_arrays(lay.canonical_csr(w))
    xptr, xrow, xval = lay.csc_arrays(act)
    yt = np.full(n * m, np.nan)
    span = -(-m // slices)
    for j in range(n):
        for s_ in range(slices):
            r0 = min(m, s_ * span)
            r1 = min(m, r0 + span)
            acc = np.zeros(r1 - r0)
            for q in range(xptr[j], xptr[j + 1]):
                lo = np.searchsorted(wrow[wptr[xrow[q]]:wptr[xrow[q] + 1]], r0) + wptr[xrow[q]]  # lower_bound
                hi = np.searchsorted(wrow[lo:wptr[xrow[q] + 1]], r1) + lo
                rows = wrow[lo:hi] - r0
                assert len(set(rows.tolist())) == len(rows)  # distinct rows per step: no two threads collide
                assert rows.size == 0 or (rows.min() >= 0 and rows.max() < r1 - r0)
                acc[rows] += wval[lo:hi] * xval[q]
            yt[j * m + r0:j * m + r1] = acc
    return yt.reshape(n, m).T


@given(w=sks.csr_matrices(shape=(10, 9), canonical=False), act=sks.csr_matrices(shape=(9, 6), canonical=False),
       slices=st.integers(1, 12))
def test_sparse_sparse_slices_give_the_product(w, act, slices):
    y = _ss_kernel_replay(w, act, min(slices, 10))
    np.testing.assert_allclose(y, w.toarray() @ act.toarray(), atol=1e-12)  # every entry written (no NaN left)


def test_coo_of_mask_is_the_sddmm_order():
    p = sparsekit.make_problem("sddmm", m=17, k=5, n=11, sparsity=0.6, seed=4)
    rows, cols = lay.coo_of_mask(p.inputs["mask"])
    ref_rows, ref_cols = SDDMM.coo(p.inputs["mask"])
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_array_equal(cols, ref_cols)


def test_canonical_csr_sums_duplicates_and_leaves_the_input():
    w = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([2, 0, 2]), np.array([0, 3])), shape=(1, 3))
    c = lay.canonical_csr(w)
    assert c.has_canonical_format and c.toarray().tolist() == [[2.0, 0.0, 4.0]]
    assert w.indices.tolist() == [2, 0, 2]


def test_int32_overflow_is_unsupported():
    with pytest.raises(sparsekit.Unsupported, match="32-bit"):
        lay.int32(np.array([2**31]))


def _key(v):
    """kwta.cu's key_of for float32, in NumPy."""
    u = np.asarray(v, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return np.where(u >> 31, (~u) & 0xFFFFFFFF, u | 0x80000000)


def _kwta_kernel_replay(x, k, kl=8):
    """kwta.cu's algorithm per column with KL = ``kl`` threads per column: bit-by-bit threshold over
    KL contiguous row chunks, then ties kept in row order (each thread counts the ties of the
    threads before it, its ``seen``)."""
    m, n = x.shape
    y = np.zeros_like(x)
    chunk = -(-m // kl)
    bounds = [(min(m, t * chunk), min(m, min(m, t * chunk) + chunk)) for t in range(kl)]
    for col in range(n):
        keys = _key(x[:, col])
        t = 0
        for bit in range(31, -1, -1):
            cand = t | (1 << bit)
            if sum(int((keys[lo:hi] >= cand).sum()) for lo, hi in bounds) >= k:
                t = cand
        need = k - sum(int((keys[lo:hi] > t).sum()) for lo, hi in bounds)
        for ty, (lo, hi) in enumerate(bounds):
            seen = sum(int((keys[a:b] == t).sum()) for a, b in bounds[:ty])
            for i in range(lo, hi):
                keep = keys[i] > t
                if keys[i] == t:
                    keep = seen < need
                    seen += 1
                y[i, col] = x[i, col] if keep else 0
    return y


@given(data=st.data())
@settings(max_examples=30)
def test_kwta_bisection_algorithm_is_exact(data):
    x, k = data.draw(sks.kwta_activations(max_side=12, dtype=np.float32))
    cx = data.draw(st.sampled_from([32, 8, 1]))  # every geometry kwta_launch may pick: KL = 256 / CX
    p = sks.kwta_problem(x, k, "float32")
    c = sparsekit.check(p, _kwta_kernel_replay(p.inputs["x"], p.params["k"], kl=lay.KWTA_THREADS // cx))
    assert c.ok, c.detail


# -- strategies and launch geometry --------------------------------------------------------------

def test_csr_path_choice():
    assert lay.choose_csr_path("float32", 10, 8) == "cusparse"
    assert lay.choose_csr_path("float64", 10, 1) == "cusparse"
    assert lay.choose_csr_path("float16", 10, 8) == "csr_spmm"
    assert lay.choose_csr_path("float16", 10, 1) == "csr_spmv"
    assert lay.choose_csr_path("float32", 0, 8) == "csr_spmm"  # empty W: no library call
    assert lay.choose_csr_path("float32", 10, 8, force="csr_spmm") == "csr_spmm"
    with pytest.raises(ValueError, match="one column"):
        lay.choose_csr_path("float32", 10, 8, force="csr_spmv")
    with pytest.raises(sparsekit.Unsupported, match="float16"):
        lay.choose_csr_path("float16", 10, 8, force="cusparse")
    with pytest.raises(ValueError, match="unknown CSR path"):
        lay.choose_csr_path("float32", 10, 8, force="magic")


def test_kwta_and_sparse_sparse_choices():
    assert lay.choose_kwta_path(4096) == "bisect"
    assert lay.choose_kwta_path(lay.KWTA_BISECT_MAX_M + 1) == "sort"
    assert lay.choose_kwta_path(10, force="sort") == "sort"
    with pytest.raises(ValueError):
        lay.choose_kwta_path(10, force="heap")
    assert lay.ss_threads(0, 5) == 32 and lay.ss_threads(100 * 64, 64) == 128 and lay.ss_threads(10**6, 1) == 256


@pytest.mark.parametrize("rows, n", [(1, 1), (37, 7), (4096, 64), (100, 1000), (5, 33), (3_000_000, 64)])
def test_launches_cover_every_output(rows, n):
    """Rows on gridDim.x, columns on y, as the kernels' index arithmetic reads them."""
    (gx, gy), (bx, by) = lay.rows_by_columns_launch("k", rows, n)
    assert gx * by >= rows and gy * bx >= n and bx * by == 256
    assert (gx - 1) * by < rows and (gy - 1) * bx < n  # no block entirely outside
    (gx, gy), (bx, by), tile = lay.gather_gemm_launch(rows, n)
    assert gx * tile["GBM"] >= rows and gy * tile["GBN"] >= n and bx * by == 256
    (g,), (b,) = lay.warp_per_item_launch(rows)
    assert g * (b // 32) >= rows


def test_rows_beyond_the_old_y_limit_launch_and_columns_are_bounded():
    """Rows used to sit on gridDim.y (65535 x 8 = 524,280 rows at most); they are on x now."""
    (gx, gy), _ = lay.rows_by_columns_launch("csr_spmm", 256 * 65536, 32)
    assert gx == 256 * 65536 // 8 and gy == 1
    with pytest.raises(sparsekit.Unsupported, match="65535 in y"):
        lay.rows_by_columns_launch("csr_spmm", 8, 32 * 65536)


def _thread_outputs(grid, tile):
    """gather_gemm's output index formulas: (row, column) written by every thread of every block."""
    bm, bn = tile["GBM"], tile["GBN"]
    out = []
    for bxi in range(grid[0]):
        for byi in range(grid[1]):
            for ty in range(16):
                for tx in range(16):
                    out += [(bxi * bm + ty + 16 * i, byi * bn + tx + 16 * j) for i in range(bm // 16) for j in range(bn // 16)]
    return out


@pytest.mark.parametrize("tile", lay.GATHER_TILES)
def test_gather_tiles_write_every_output_once(tile):
    r, n = 37, 70
    grid = (-(-r // tile[0]), -(-n // tile[1]))
    written = [(i, j) for i, j in _thread_outputs(grid, {"GBM": tile[0], "GBN": tile[1]}) if i < r and j < n]
    assert sorted(written) == [(i, j) for i in range(r) for j in range(n)]


def test_launch_shapes_fill_an_h200_at_the_suites_shapes():
    """132 SMs: the old launches gave 2 (kwta, n = 64), 64 (sparse x sparse, n = 64) and 16 or 32
    (gather_gemm, 2048 x 2048 x 64) blocks."""
    sms = 132
    (g,), (cx, kl) = lay.kwta_launch(64, sms)
    assert (g, cx, kl) == (64, 1, 256)  # one column per block: as many blocks as columns allow
    (g,), (cx, kl) = lay.kwta_launch(4096, sms)
    assert g >= sms and cx * kl == lay.KWTA_THREADS and cx >= 8
    for selected in (1024, 2048):
        grid, _, tile = lay.gather_gemm_launch(selected, 64, sms)
        assert grid[0] * grid[1] >= sms, (selected, tile)
    assert lay.gather_gemm_launch(20000, 64, sms)[2] == {"GBM": 64, "GBN": 64}  # big problems keep big tiles
    grid, threads, shared, use_shared = lay.ss_launch(2048, 64, 400_000, 2048, 4, sms=sms)
    assert grid[0] * grid[1] >= sms and use_shared and shared == -(-2048 // grid[1]) * 4


def test_sparse_sparse_slices_fit_shared_memory():
    grid, _, shared, use_shared = lay.ss_launch(100_000, 256, 10**6, 4096, 8, shared_limit=48 * 1024)
    assert use_shared and shared <= 48 * 1024 and grid[1] * (shared // 8) >= 100_000
    assert lay.ss_launch(100, 4, 50, 10, 4, force_global=True)[3] is False
    assert lay.ss_launch(0, 4, 0, 10, 4)[0] == (4, 1)  # no rows: one empty slice per column


def test_kwta_counters_match_the_launch():
    text = src.source("kwta.cu")
    assert "__shared__ unsigned int cnt[256]" in text and "__launch_bounds__(256)" in text
    for n in (1, 7, 64, 100, 5000):
        (g,), (cx, kl) = lay.kwta_launch(n)
        assert cx * kl == lay.KWTA_THREADS and g * cx >= n and (g - 1) * cx < n


# -- arithmetic policies: TF32 and flush-to-zero ------------------------------------------------

def test_tf32_policy():
    assert lay.tf32_requested(lay.CUPY_COMPUTE_TYPE_TF32, {}) is True
    assert lay.tf32_requested(1, {"CUPY_TF32": "1"}) is False  # CuPy's answer wins over the variable
    assert lay.tf32_requested(None, {"CUPY_TF32": "1"}) is True  # CuPy could not be asked: its rule
    assert lay.tf32_requested(None, {"CUPY_TF32": "0"}) is False
    # NVIDIA_TF32_OVERRIDE=0 keeps every NVIDIA library in full float32; other values change nothing
    assert lay.tf32_requested(lay.CUPY_COMPUTE_TYPE_TF32, {"NVIDIA_TF32_OVERRIDE": "0"}) is False
    assert lay.tf32_requested(lay.CUPY_COMPUTE_TYPE_TF32, {"NVIDIA_TF32_OVERRIDE": "1"}) is True
    assert [k for k in ("dense_mm", "moe", "spmm") if lay.tf32_affects(k, "float32")] == ["dense_mm", "moe"]
    assert lay.tf32_affects("moe", "float16") and not lay.tf32_affects("dense_mm", "float16")
    assert not lay.tf32_affects("dense_mm", "float64")


def _flush(a):
    """What -ftz=true does to a float32 result: subnormals become (signed) zero."""
    a = np.asarray(a, dtype=np.float32)
    return np.where(np.abs(a) < np.finfo(np.float32).tiny, np.float32(0) * a, a)


def test_ftz_allowance_covers_moe_weighted_sums_that_flush():
    """moe_forward's weighted sum with every float32 operation flushed, as CuPy's elementwise
    kernels (built with -ftz=true) do: on tiny experts it leaves the rounding bound, and the
    backend's declared allowance covers it."""
    p = sparsekit.make_problem("moe", m=12, k=16, n=10, experts=4, top_k=2, dtype="float32", seed=2)
    p.inputs["experts"] = (p.inputs["experts"] * np.float32(1e-37)).astype(np.float32)
    x, experts = p.inputs["x"], p.inputs["experts"]
    order, weight = oracle_route(p.inputs["gate"].astype(np.float64) @ x.astype(np.float64), 2)
    weight = weight.astype(np.float32)
    y = np.zeros((12, 10), np.float32)
    for slot in range(2):
        for t in range(10):
            part = experts[order[slot, t]] @ x[:, t]  # cuBLAS: no flush
            y[:, t] = _flush(y[:, t] + _flush(part * weight[slot, t]))
    assert not p.spec.check(p, y).ok  # flushed terms are far outside the float32 bound here
    c = p.spec.check(p, y, allowance=lay.ftz_allowance(p))
    assert c.ok, c.detail
    assert lay.ftz_allowance(sparsekit.make_problem("moe", m=4, k=4, n=2, dtype="float64", seed=0)) is None
    assert lay.ftz_allowance(sparsekit.make_problem("kwta", m=4, n=2, k=1, seed=0)) is None


def test_moe_half_rounds_once_at_the_end():
    """float16 inputs with a float32 accumulator: products and the weighted sum in float32, one
    rounding to half at the end. The inputs are multiples of 2**-8 in [-1, 1] (exact in half) and
    k = 64, so every expert product is exact in float32 but not in half: a product rounded to half
    before the sum shows, and the result is bit for bit the contract's whatever the BLAS order."""
    rng = np.random.default_rng(5)
    e, m, k, n = 8, 24, 64, 20
    x, gate, experts = (rng.integers(-256, 257, size=s).astype(np.float16) / np.float16(256)
                        for s in ((k, n), (e, k), (e, m, k)))
    y = skxp.moe_forward(np, x, gate, experts, 2, acc_dtype=np.float32, route_dtype=np.float32)
    order, weight = skxp.route(np, np.matmul(gate, x).astype(np.float32), 2)  # the routing moe_forward uses
    want = np.zeros((m, n), np.float32)
    for slot in range(2):
        for t in range(n):
            exact = experts[order[slot, t]].astype(np.float64) @ x[:, t].astype(np.float64)
            assert np.array_equal(exact.astype(np.float32), exact)  # exact in float32 ...
            want[:, t] += exact.astype(np.float32) * weight[slot, t]
    assert not np.array_equal(want.astype(np.float16).astype(np.float32), want)  # ... and the sums not in half
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, want.astype(np.float16))


# -- the CUDA sources ------------------------------------------------------------------------------

def test_every_file_has_kernels_with_parsed_signatures():
    for file in src.FILES:
        sigs = src.signatures(src.source(file))
        assert sigs, f"{file}: no extern \"C\" kernel found"
    assert [p[0] for p in src.signatures(src.source("dense.cu"))["gather_gemm"]] == ["r", "n", "k", "rows", "w", "x", "y"]


def _launch_calls():
    """(file, kernel, keyword names) of every self.launch(...) in backend.py."""
    calls = []
    for node in ast.walk(ast.parse(BACKEND_FILE.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "launch":
            file, kernel = (a.value for a in node.args[:2])
            names = {kw.arg for kw in node.keywords} - {"defines", "shared_mem"}
            calls.append((file, kernel, names))
    return calls


def test_every_launch_names_exactly_its_kernels_parameters():
    calls = _launch_calls()
    launched = {(f, k) for f, k, _ in calls}
    declared = {(f, k) for f in src.FILES for k in src.signatures(src.source(f))}
    assert launched == declared, f"kernels never launched: {declared - launched}; unknown: {launched - declared}"
    for file, kernel, names in calls:
        params = [p[0] for p in src.signatures(src.source(file))[kernel]]
        assert names == set(params), f"{kernel}: launch passes {sorted(names)}, the kernel takes {params}"


def test_bind_orders_and_checks_arguments():
    sig = src.signatures(src.source("sddmm.cu"))["sddmm"]
    a, bt, out = (np.zeros(4, np.float16) for _ in range(3))
    rows = cols = np.zeros(2, np.int32)
    args = src.bind("sddmm", sig, "float16", dict(out=out, bt=bt, a=a, cols=cols, rows=rows, k=3, nnz=2))
    assert [type(v) for v in args[:2]] == [np.int32, np.int32] and args[2] is rows and args[-1] is out
    with pytest.raises(TypeError, match="argument a must be an array of float32"):
        src.bind("sddmm", sig, "float32", dict(out=out, bt=bt, a=a, cols=cols, rows=rows, k=3, nnz=2))
    with pytest.raises(TypeError, match=r"missing \['nnz'\]"):
        src.bind("sddmm", sig, "float16", dict(out=out, bt=bt, a=a, cols=cols, rows=rows, k=3))
    with pytest.raises(sparsekit.Unsupported, match="k=2147483648 does not fit the kernel's int"):
        src.bind("sddmm", sig, "float16", dict(out=out, bt=bt, a=a, cols=cols, rows=rows, k=2**31, nnz=2))
    with pytest.raises(TypeError, match="must be an integer"):
        src.bind("sddmm", sig, "float16", dict(out=out, bt=bt, a=a, cols=cols, rows=rows, k=3.0, nnz=2))
    ss = src.signatures(src.source("sparse_sparse.cu"))["ss_scatter"]
    assert dict((n, src.element_dtype(b, "float16")) for n, b, ptr in ss if ptr)["scratch"] == np.float32


NVCC = shutil.which("nvcc")


def _nvcc_ptx(tmp_path, file, opts) -> str:
    """nvcc --ptx for the oldest architecture CUDA 12/13 both support, with CuPy's -ftz=true (it
    appends that to every NVRTC build): syntax, types and the PTX conversions, without a GPU.
    Warnings fail too."""
    path = tmp_path / file
    path.write_text(src.source(file))
    out = subprocess.run([NVCC, "--ptx", "-arch=compute_75", "--std=c++14", "-ftz=true", "-Werror", "all-warnings",
                          "-o", str(tmp_path / "out.ptx"), *opts, str(path)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr
    return (tmp_path / "out.ptx").read_text()


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed: the CUDA sources are compile-checked where it is")
@pytest.mark.parametrize("dtype", list(src.DTYPE_OPTIONS))
@pytest.mark.parametrize("file", list(src.FILES))
def test_sources_compile_with_nvcc(tmp_path, file, dtype):
    ptx = _nvcc_ptx(tmp_path, file, src.options(dtype, src.EXAMPLE_DEFINES.get(file)))
    for kernel in src.signatures(src.source(file)):
        assert f".entry {kernel}(" in ptx, f"{kernel} missing from the PTX (extern \"C\" lost?)"
    # subnormals survive -ftz=true: no instruction may flush them (see _sources)
    flushing = [line.strip() for line in ptx.splitlines() if ".ftz" in line]
    assert not flushing, f"{file} {dtype}: flush-to-zero instructions under -ftz=true: {flushing[:5]}"


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed: the CUDA sources are compile-checked where it is")
@pytest.mark.parametrize("tile", lay.GATHER_TILES[1:])  # 64 x 64 is the example build above
def test_every_gather_tile_compiles(tmp_path, tile):
    ptx = _nvcc_ptx(tmp_path, "dense.cu", src.options("float32", {"GBM": tile[0], "GBN": tile[1]}))
    assert ".entry gather_gemm(" in ptx


# -- the backend's library paths on the stand-in's pretend device ---------------------------------

_STANDIN_MODULES = ("cupy", "cupyx", "cupy_backends")


@pytest.fixture
def standin(monkeypatch):
    """(CupyBackend on the stand-in's pretend device, the stand-in cuSPARSE bindings): imported fresh
    in this process and forgotten afterwards, so no other test sees a ``cupy`` module."""
    if HAVE_CUPY:
        pytest.skip("the real CuPy is installed here: the stand-in checks run where it is not (CI)")
    monkeypatch.setenv(STANDIN_MODE, "device")
    monkeypatch.delenv("CUPY_TF32", raising=False)
    monkeypatch.delenv("NVIDIA_TF32_OVERRIDE", raising=False)
    monkeypatch.syspath_prepend(str(STANDIN))

    def forget():
        for name in list(sys.modules):
            if name.split(".")[0] in _STANDIN_MODULES or name in ("sparsekit_cupy.backend", "sparsekit_cupy._cusparse"):
                del sys.modules[name]

    forget()
    from cupy_backends.cuda.libs import cusparse as fake_cusparse
    from sparsekit_cupy.backend import CupyBackend

    try:
        yield CupyBackend(device=0), fake_cusparse
    finally:
        forget()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cusparse_is_bound_once_and_its_output_zeroed(standin, dtype):
    """prepare makes the descriptors, asks for the workspace and allocates it once; each timed call is
    one cusparseSpMM and a synchronisation. The stand-in's SpMM scales C by beta = 0 instead of
    skipping it, so a NaN left in C (cupy.empty) would reach the result."""
    be, cs = standin
    cs.calls.clear()
    p = sparsekit.make_problem("spmm", m=60, k=50, n=7, sparsity=0.8, dtype=dtype, seed=4)
    plan = be.prepare(p)
    assert be.last_path == "cusparse"
    prepared = dict(cs.calls)
    assert prepared == {"createCsr": 1, "createDnMat": 2, "spMM_bufferSize": 1, "spMM": 1}  # spMM: the warm-up
    syncs = be.cuda_stream.synchronized
    for _ in range(5):
        plan()
    assert dict(cs.calls) == {**prepared, "spMM": 6} and be.cuda_stream.synchronized == syncs + 5
    c = sparsekit.check(p, plan.result())
    assert c.ok, c.detail
    del plan
    import gc

    gc.collect()
    assert cs.calls["destroySpMat"] == 1 and cs.calls["destroyDnMat"] == 2


@pytest.mark.parametrize("kernel, dtype", [("dense_mm", "float32"), ("moe", "float32"), ("moe", "float16")])
def test_tf32_refuses_every_float32_cublas_plan(standin, monkeypatch, kernel, dtype):
    be, _ = standin
    p = sparsekit.make_problem(kernel, m=16, k=16, n=8, dtype=dtype, seed=1)
    monkeypatch.setenv("CUPY_TF32", "1")
    with pytest.raises(sparsekit.Unsupported, match="TF32"):
        be.prepare(p)
    be.prepare(sparsekit.make_problem(kernel, m=16, k=16, n=8, dtype="float64", seed=1))  # not affected
    be.prepare(sparsekit.make_problem("spmm", m=16, k=16, n=8, sparsity=0.5, dtype="float32", seed=1))  # cuSPARSE
    monkeypatch.setenv("NVIDIA_TF32_OVERRIDE", "0")  # the libraries stay in float32
    with be.prepare(p) as plan:
        plan()
        c = sparsekit.check(p, plan.result(), backend=be)
    assert c.ok, c.detail


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_moe_and_dense_on_the_standin(standin, dtype):
    be, _ = standin
    for p in (sparsekit.make_problem("moe", m=24, k=16, n=20, experts=8, top_k=2, dtype=dtype, seed=3),
              sparsekit.make_problem("dense_mm", m=20, k=30, n=6, dtype=dtype, seed=3)):
        with be.prepare(p) as plan:
            plan()
            y = plan.result()
        assert y.dtype == sparsekit.dtypes.host_dtype(dtype)
        c = sparsekit.check(p, y, backend=be)
        assert c.ok, f"{p}: {c.detail}"


def test_our_kernels_need_the_gpu_on_the_standin(standin):
    be, _ = standin
    with pytest.raises(RuntimeError, match="stand-in CuPy: no GPU"):
        be.prepare(sparsekit.make_problem("kwta", m=30, n=4, k=3, seed=0))


# -- on a GPU: the strategies the automatic choice would not take ----------------------------------

@pytest.fixture(scope="module")
def gpu():
    rec = _cupy_record()
    if not rec.available:
        pytest.skip(f"backend 'cupy' unavailable: {rec.reason}")
    return sparsekit.backend("cupy")


def _run_checked(be, p):
    with be.prepare(p) as plan:
        plan()
        y = plan.result()
    c = sparsekit.check(p, y)
    assert c.ok, f"{p}: {c.detail}"
    return y


@pytest.mark.parametrize("path, n", [("cusparse", 8), ("csr_spmm", 8), ("csr_spmv", 1), ("cusparse", 1)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gpu_csr_paths(gpu, path, n, dtype):
    gpu.force_csr = path
    try:
        _run_checked(gpu, sparsekit.make_problem("spmm", m=300, k=200, n=n, sparsity=0.9, dtype=dtype, seed=1))
        assert gpu.last_path == path
    finally:
        gpu.force_csr = None


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_gpu_kwta_sort_path(gpu, dtype):
    gpu.force_kwta = "sort"
    try:
        _run_checked(gpu, sparsekit.make_problem("kwta", m=500, n=40, k=37, dtype=dtype, seed=1))
        assert gpu.last_path == "sort"
    finally:
        gpu.force_kwta = None


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_gpu_sparse_sparse_global_accumulator(gpu, dtype):
    gpu.force_ss_global = True
    try:
        _run_checked(gpu, sparsekit.make_problem("sparse_sparse", m=200, k=150, n=9, sparsity=0.8, dtype=dtype, seed=2))
        assert gpu.last_path.startswith("ss_global")
    finally:
        gpu.force_ss_global = False


def test_gpu_larger_shapes(gpu):
    """Several blocks in every grid dimension (the conformance grid's shapes fit one block)."""
    for kernel, kw in [("gather_mm", dict(m=700, k=300, n=130, rows=150)), ("gather_mm", dict(m=700, k=300, n=1, rows=150)),
                       ("gather_mm", dict(m=5000, k=300, n=130, rows=4000)),  # 64 x 64 tiles
                       ("kwta", dict(m=1000, n=70, k=100)), ("kwta", dict(m=1000, n=5000, k=100)),  # 1 and 32 columns/block
                       ("sparse_sparse", dict(m=20000, k=300, n=3, sparsity=0.9)),  # many slices
                       ("sddmm", dict(m=300, k=100, n=200, sparsity=0.9)),
                       ("spmm", dict(m=512, k=256, n=40, sparsity=0.9, format="bsr", pattern="block", blocksize=(4, 4))),
                       ("spmm", dict(m=512, k=256, n=40, nm="2:4", format="nm"))]:
        _run_checked(gpu, sparsekit.make_problem(kernel, dtype="float32", seed=5, **kw))


def test_gpu_modules_are_built_once(gpu):
    p = sparsekit.make_problem("sddmm", m=30, k=20, n=10, sparsity=0.5, dtype="float32", seed=0)
    _run_checked(gpu, p)
    before = gpu.builds
    _run_checked(gpu, p)
    assert gpu.builds == before

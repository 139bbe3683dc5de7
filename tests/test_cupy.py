"""The ``cupy`` backend, on a machine with or without a GPU.

Without a GPU (CI) this checks everything that does not need one: that the
backend is listed unavailable with the precise reason and that its conformance
tests skip cleanly; the probe, its cache and its failure paths (with a stand-in
``cupy`` package on ``sys.path``); the array code it shares with the numpy
backend (``sparsekit.xp``) run with ``xp=numpy`` against the oracles; the host
layouts and strategy choices (``_layout``), with the kernels' index formulas
replayed in NumPy; the CUDA sources compiled by ``nvcc`` for every dtype; and
that every launch in ``backend.py`` names exactly its kernel's parameters.

With a GPU (``pytest --backend cupy``) the conformance suite checks the results;
the last tests here run the forced strategies (our CSR kernels beside cuSPARSE,
sort-based k-WTA, global-memory sparse x sparse) against the oracles.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
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


# -- the probe, with a stand-in cupy package -----------------------------------------------------

FAKE_RUNTIME = {
    "nodevice": """
        def getDeviceCount():
            raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
    """,
    "zero": """
        def getDeviceCount():
            return 0
    """,
    "crash": """
        import os
        def getDeviceCount():
            os._exit(3)
    """,
}


def _fake_cupy(tmp_path, behaviour: str) -> Path:
    root = tmp_path / f"fake-{behaviour}"
    (root / "cupy" / "cuda").mkdir(parents=True)
    (root / "cupy" / "__init__.py").write_text("__version__ = '0.0-fake'\nfrom . import cuda\n")
    (root / "cupy" / "cuda" / "__init__.py").write_text("from . import runtime\n")
    (root / "cupy" / "cuda" / "runtime.py").write_text(textwrap.dedent(FAKE_RUNTIME[behaviour]))
    return root


def _listing_with(fake: Path, cache: Path, extra_env: dict | None = None) -> dict:
    """sparsekit.backends()'s cupy record in a fresh process that finds the stand-in cupy."""
    code = ("import json, sparsekit; r = {b.name: b for b in sparsekit.backends()}['cupy']; "
            "print(json.dumps({'available': r.available, 'reason': r.reason, 'device': r.device}))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")]),
           "XDG_CACHE_HOME": str(cache), **(extra_env or {})}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cupy_without_a_device_is_unavailable_with_the_cuda_error(tmp_path):
    cache = tmp_path / "cache"
    rec = _listing_with(_fake_cupy(tmp_path, "nodevice"), cache)
    assert not rec["available"]
    assert "cudaErrorNoDevice" in rec["reason"] and "no usable device" in rec["reason"]
    assert rec["device"] == "no CUDA device"
    entries = json.loads((cache / "sparsekit" / "cupy-probe.json").read_text())["entries"]
    assert [e["ok"] for e in entries.values()] == [False]  # "no device" is cached (keyed by the driver files)


def test_zero_devices_and_a_bad_device_index(tmp_path):
    fake = _fake_cupy(tmp_path, "zero")
    assert _listing_with(fake, tmp_path / "c1")["reason"] == "CUDA reports no device"
    rec = _listing_with(fake, tmp_path / "c2", {"SPARSEKIT_CUPY_DEVICE": "gpu0"})
    assert "SPARSEKIT_CUPY_DEVICE='gpu0' is not a CUDA device index" in rec["reason"]


def test_a_crashing_probe_is_reported_and_not_cached(tmp_path):
    cache = tmp_path / "cache"
    rec = _listing_with(_fake_cupy(tmp_path, "crash"), cache)
    assert not rec["available"]
    assert rec["reason"] == "the CUDA device probe failed: exit status 3"
    assert not (cache / "sparsekit" / "cupy-probe.json").exists()


def test_parse_probe_output():
    ok = {"ok": True, "name": "X"}
    assert sparsekit_cupy.parse_probe_output("noise\n" + sparsekit_cupy.PROBE_MARKER + json.dumps(ok), "", 0) == ok
    bad = sparsekit_cupy.parse_probe_output("", "Traceback ...\nImportError: libcuda.so.1: cannot open\n", 1)
    assert bad == {"ok": False, "cache": False, "reason": "the CUDA device probe failed: ImportError: libcuda.so.1: cannot open"}


def test_device_label():
    desc = {"name": "NVIDIA H100", "cc": "90", "memory": 80 * 2**30, "runtime": "12.8", "driver": "12.9", "index": 0}
    assert sparsekit_cupy.device_label(desc) == "NVIDIA H100 (sm_90, 80.0 GiB; CUDA runtime 12.8, driver 12.9) device 0"


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


@given(w=sks.csr_matrices(shape=(10, 9), canonical=False), act=sks.csr_matrices(shape=(9, 6), canonical=False))
def test_csc_arrays_give_the_sparse_sparse_product(w, act):
    wptr, wrow, wval = lay.csc_arrays(lay.canonical_csr(w))
    xptr, xrow, xval = lay.csc_arrays(act)
    y = np.zeros((10, 6))
    for j in range(6):  # ss_scatter's loop
        for q in range(xptr[j], xptr[j + 1]):
            rows = wrow[wptr[xrow[q]]:wptr[xrow[q] + 1]]
            assert len(set(rows.tolist())) == len(rows)  # distinct rows per step: no two threads collide
            y[rows, j] += wval[wptr[xrow[q]]:wptr[xrow[q] + 1]] * xval[q]
    np.testing.assert_allclose(y, w.toarray() @ act.toarray(), atol=1e-12)


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
    """kwta.cu's algorithm per column: bit-by-bit threshold over KL row chunks, ties in row order."""
    m, n = x.shape
    y = np.zeros_like(x)
    chunk = -(-m // kl)
    for col in range(n):
        keys = _key(x[:, col])
        t = 0
        for bit in range(31, -1, -1):
            cand = t | (1 << bit)
            if sum(int((keys[min(m, c * chunk):min(m, c * chunk + chunk)] >= cand).sum()) for c in range(kl)) >= k:
                t = cand
        need = k - int((keys > t).sum())
        seen = 0
        for i in range(m):
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
    p = sks.kwta_problem(x, k, "float32")
    c = sparsekit.check(p, _kwta_kernel_replay(p.inputs["x"], p.params["k"]))
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
    assert lay.ss_use_shared(12288, 4) and not lay.ss_use_shared(12289, 4)
    assert lay.ss_threads(0, 5) == 32 and lay.ss_threads(100 * 64, 64) == 128 and lay.ss_threads(10**6, 1) == 256


@pytest.mark.parametrize("rows, n", [(1, 1), (37, 7), (4096, 64), (100, 1000), (5, 33)])
def test_launches_cover_every_output(rows, n):
    (gx, gy), (bx, by) = lay.rows_by_columns_launch("k", rows, n)
    assert gx * bx >= n and gy * by >= rows and bx * by == 256
    assert (gx - 1) * bx < n and (gy - 1) * by < rows  # no block entirely outside
    (gx, gy), (bx, by) = lay.gather_gemm_launch(rows, n)
    assert gx * 64 >= n and gy * 64 >= rows and bx * by == 256
    (g,), (b,) = lay.warp_per_item_launch(rows)
    assert g * (b // 32) >= rows


def test_too_many_rows_for_a_grid_is_unsupported():
    with pytest.raises(sparsekit.Unsupported, match="65535"):
        lay.rows_by_columns_launch("csr_spmm", 256 * 65536, 32)


def test_kwta_launch_matches_the_kernel_constants():
    text = src.source("kwta.cu")
    assert "#define CX 32" in text and "#define KL 8" in text
    assert lay.kwta_launch(100) == ((4,), (32, 8))


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
    with pytest.raises(OverflowError, match="k=2147483648"):
        src.bind("sddmm", sig, "float16", dict(out=out, bt=bt, a=a, cols=cols, rows=rows, k=2**31, nnz=2))
    with pytest.raises(TypeError, match="must be an integer"):
        src.bind("sddmm", sig, "float16", dict(out=out, bt=bt, a=a, cols=cols, rows=rows, k=3.0, nnz=2))
    ss = src.signatures(src.source("sparse_sparse.cu"))["ss_scatter"]
    assert dict((n, src.element_dtype(b, "float16")) for n, b, ptr in ss if ptr)["scratch"] == np.float32


NVCC = shutil.which("nvcc")


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed: the CUDA sources are compile-checked where it is")
@pytest.mark.parametrize("dtype", list(src.DTYPE_OPTIONS))
@pytest.mark.parametrize("file", list(src.FILES))
def test_sources_compile_with_nvcc(tmp_path, file, dtype):
    """nvcc --ptx for the oldest architecture CUDA 12/13 both support: syntax, types and the
    PTX conversions, without a GPU. Warnings fail the test too."""
    path = tmp_path / file
    path.write_text(src.source(file))
    opts = src.options(dtype, src.EXAMPLE_DEFINES.get(file))
    out = subprocess.run([NVCC, "--ptx", "-arch=compute_75", "--std=c++14", "-Werror", "all-warnings",
                          "-o", str(tmp_path / "out.ptx"), *opts, str(path)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr
    ptx = (tmp_path / "out.ptx").read_text()
    for kernel in src.signatures(src.source(file)):
        assert f".entry {kernel}(" in ptx, f"{kernel} missing from the PTX (extern \"C\" lost?)"


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
        assert gpu.last_path == "ss_global"
    finally:
        gpu.force_ss_global = False


def test_gpu_larger_shapes(gpu):
    """Several blocks in every grid dimension (the conformance grid's shapes fit one block)."""
    for kernel, kw in [("gather_mm", dict(m=700, k=300, n=130, rows=150)), ("gather_mm", dict(m=700, k=300, n=1, rows=150)),
                       ("kwta", dict(m=1000, n=70, k=100)), ("sddmm", dict(m=300, k=100, n=200, sparsity=0.9)),
                       ("spmm", dict(m=512, k=256, n=40, sparsity=0.9, format="bsr", pattern="block", blocksize=(4, 4))),
                       ("spmm", dict(m=512, k=256, n=40, nm="2:4", format="nm"))]:
        _run_checked(gpu, sparsekit.make_problem(kernel, dtype="float32", seed=5, **kw))


def test_gpu_modules_are_built_once(gpu):
    p = sparsekit.make_problem("sddmm", m=30, k=20, n=10, sparsity=0.5, dtype="float32", seed=0)
    _run_checked(gpu, p)
    before = gpu.builds
    _run_checked(gpu, p)
    assert gpu.builds == before

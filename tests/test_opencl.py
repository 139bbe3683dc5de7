"""Behaviour specific to the ``opencl`` backend (the conformance suite checks its results).

Device selection, the probe and its disk cache, build errors carrying the log,
out-of-resources errors naming sizes and limits, the CSR strategy choice, the
program cache, and the kernel variants a CPU device would not pick by itself
(the gpu-style kernels, half storage) checked on whatever device is here (PoCL).
Skipped when ``sparsekit_opencl`` or PyOpenCL is not installed.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sparsekit
from sparsekit.testing import strategies as sks

sparsekit_opencl = pytest.importorskip("sparsekit_opencl")
from sparsekit_opencl import _device  # noqa: E402
from sparsekit_opencl._device import DeviceSelectionError, select  # noqa: E402

INVENTORY = [
    ("Portable Computing Language", [("pthread-AMD EPYC", "CPU")]),
    ("NVIDIA CUDA", [("NVIDIA H100 80GB HBM3", "GPU"), ("NVIDIA A100", "GPU")]),
]


# -- device selection (pure: no PyOpenCL needed) -------------------------------------------

def test_default_prefers_the_first_gpu():
    assert select("", INVENTORY) == (1, 0)
    assert select(None, INVENTORY) == (1, 0)


def test_default_falls_back_to_the_first_cpu():
    inv = [("Some FPGA", [("fpga0", "ACCELERATOR")]), ("PoCL", [("cpu0", "CPU")])]
    assert select("", inv) == (1, 0)
    assert select("", [("Some FPGA", [("fpga0", "ACCELERATOR")])]) == (0, 0)


@pytest.mark.parametrize("spec, expected", [
    ("0:0", (0, 0)), ("1:1", (1, 1)), (" 1 : 0 ", (1, 0)),
    ("a100", (1, 1)), ("H100", (1, 0)), ("epyc", (0, 0)),
    ("portable", (0, 0)),  # not in a device name: the platform name matches
    ("cuda", (1, 0)),
])
def test_index_and_name_substring(spec, expected):
    assert select(spec, INVENTORY) == expected


@pytest.mark.parametrize("spec", ["2:0", "0:1", "mi300", "gpu0"])
def test_invalid_selection_names_the_value_and_the_devices(spec):
    with pytest.raises(DeviceSelectionError) as e:
        select(spec, INVENTORY)
    msg = str(e.value)
    assert repr(spec) in msg and _device.ENV_VAR in msg
    assert "0:0 pthread-AMD EPYC [CPU] (Portable Computing Language)" in msg
    assert "1:1 NVIDIA A100 [GPU] (NVIDIA CUDA)" in msg


def test_no_device_at_all():
    with pytest.raises(DeviceSelectionError, match="no OpenCL device"):
        select("", [("Empty platform", [])])
    with pytest.raises(DeviceSelectionError, match="no OpenCL device"):
        select("0:0", [])


def test_opencl_version_string():
    assert _device.opencl_version("OpenCL 3.0 PoCL HSTR: pthread-x86_64") == "OpenCL 3.0"
    assert _device.opencl_version("OpenCL 1.2 CUDA") == "OpenCL 1.2"


def test_dtypes_follow_the_extensions():
    assert sparsekit_opencl.dtypes_for(False, False) == ("float32",)
    assert sparsekit_opencl.dtypes_for(True, False) == ("float32", "float64")
    assert sparsekit_opencl.dtypes_for(True, True) == ("float16", "float32", "float64")


def test_variant_rules():
    pytest.importorskip("pyopencl")
    from sparsekit_opencl import backend as ob

    assert ob.gemm_variant("cpu") == "vec" and ob.gemm_variant("gpu") == "tiled"
    assert ob.kwta_vector("cpu", 3) and not ob.kwta_vector("gpu", 64) and ob.kwta_vector("gpu", 4096)
    assert ob.ss_local_accumulator(16 * 1024, 64 * 1024) and not ob.ss_local_accumulator(40 * 1024, 1 << 20)
    assert not ob.ss_local_accumulator(20 * 1024, 32 * 1024)  # half the device's local memory at most
    assert ob.ss_lanes("cpu", 500.0) == 1 and ob.ss_lanes("gpu", 20.0) == 32 and ob.ss_lanes("gpu", 1e6) == 128


def test_csr_strategy_threshold():
    pytest.importorskip("pyopencl")
    from sparsekit_opencl.backend import VECTOR_MIN_MEAN_ROW, choose_csr_strategy

    assert choose_csr_strategy(VECTOR_MIN_MEAN_ROW - 1, "gpu") == "scalar"
    assert choose_csr_strategy(VECTOR_MIN_MEAN_ROW, "gpu") == "vector"
    assert choose_csr_strategy(1e9, "cpu") == "scalar"  # measured: never on a CPU device


# -- the probe and its cache ----------------------------------------------------------------------

@pytest.fixture
def cl():
    return pytest.importorskip("pyopencl")


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(_device.ENV_VAR, raising=False)
    monkeypatch.setattr(sparsekit_opencl, "_memo", {})
    return tmp_path / "sparsekit" / "opencl-probe.json"


def _no_subprocess(*a, **k):
    raise AssertionError("the probe ran although its result was cached")


def test_probe_runs_once_then_reads_the_cache(cl, fresh_cache, monkeypatch):
    desc = sparsekit_opencl.probe_device()
    if not desc["ok"]:  # a definite answer (a device whose compiler cannot target it) is cached too
        assert "cannot build a kernel" in desc["reason"], desc
        monkeypatch.setattr(sparsekit_opencl, "_memo", {})
        monkeypatch.setattr(subprocess, "run", _no_subprocess)
        assert sparsekit_opencl.probe_device() == desc
        assert sparsekit_opencl.info()["probe"]() == desc["reason"]
        return
    assert desc["name"] and desc["version"].startswith("OpenCL ") and desc["platform"]
    assert set(desc["extensions"]) == {"cl_khr_fp64", "cl_khr_fp16"}
    entries = json.loads(fresh_cache.read_text())["entries"]
    assert entries[sparsekit_opencl.cache_key()] == desc
    # a new process (empty memo) reads the file instead of starting an interpreter
    monkeypatch.setattr(sparsekit_opencl, "_memo", {})
    monkeypatch.setattr(subprocess, "run", _no_subprocess)
    assert sparsekit_opencl.probe_device() == desc
    info = sparsekit_opencl.info()
    assert info["device"] == sparsekit_opencl.device_label(desc)
    assert desc["name"] in info["device"] and desc["version"] in info["device"]
    assert info["probe"]() is None


def test_probe_cache_is_keyed_by_the_selection(cl, fresh_cache, monkeypatch):
    key = sparsekit_opencl.cache_key()
    monkeypatch.setenv(_device.ENV_VAR, "0:0")
    assert sparsekit_opencl.cache_key() != key


def test_invalid_selection_makes_the_backend_unavailable(cl, fresh_cache, monkeypatch):
    monkeypatch.setenv(_device.ENV_VAR, "no-such-device-xyz")
    info = sparsekit_opencl.info()
    reason = info["probe"]()
    assert "no-such-device-xyz" in reason and "found:" in reason
    assert fresh_cache.exists()  # a definite answer is cached too


def test_failed_probe_is_not_cached(cl, fresh_cache, monkeypatch):
    def timeout(*a, **k):
        raise subprocess.TimeoutExpired(cmd="probe", timeout=k.get("timeout", 20))

    monkeypatch.setattr(subprocess, "run", timeout)
    desc = sparsekit_opencl.probe_device()
    assert not desc["ok"] and "did not finish" in desc["reason"]
    assert not fresh_cache.exists()
    assert "did not finish" in sparsekit_opencl.info()["probe"]()


def test_no_platform_makes_the_backend_unavailable(cl, fresh_cache, monkeypatch):
    monkeypatch.setenv("OCL_ICD_VENDORS", str(fresh_cache.parent / "no-vendors-here"))  # the ICD loader finds nothing
    reason = sparsekit_opencl.info()["probe"]()
    assert reason and "no OpenCL platform" in reason


def test_missing_pyopencl_is_reported_by_the_registry(monkeypatch):
    import importlib.util

    from sparsekit import registry

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyopencl" else real(name, *a))
    monkeypatch.setattr(subprocess, "run", _no_subprocess)  # no probe without PyOpenCL
    rec = registry._record_from("opencl", "test", sparsekit_opencl.info)
    assert not rec.available and rec.reason == "missing Python package(s): pyopencl"
    assert "not installed" in rec.device


def test_info_does_not_import_pyopencl(cl):
    code = textwrap.dedent("""
        import sys, sparsekit_opencl
        info = sparsekit_opencl.info()
        assert info["name"] == "opencl" and info["device"], info
        print("LOADED" if "pyopencl" in sys.modules else "LIGHT")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("LIGHT")


# -- the backend -------------------------------------------------------------------------------------

def test_compile_check_names_the_compiler_error(cl):
    """A device whose compiler fails on a trivial kernel is unavailable, with the compiler's words."""
    from sparsekit_opencl import _probe

    class _Prog:
        def __init__(self, ctx, src):
            pass

        def build(self):
            raise cl.Error("clBuildProgram failed: BUILD_PROGRAM_FAILURE\nerror: unknown target CPU 'generic'\n")

    class _Dev:
        name = " pthread-Some CPU "

    import unittest.mock as mock

    with mock.patch.object(cl, "Context", lambda devices: None), mock.patch.object(cl, "Program", _Prog):
        why = _probe.compile_check(_Dev())
    assert why == "its OpenCL C compiler cannot build a kernel for pthread-Some CPU: error: unknown target CPU 'generic'"


@pytest.fixture(scope="module")
def backends():
    pytest.importorskip("pyopencl")
    from sparsekit_opencl.backend import OpenCLBackend

    reason = sparsekit_opencl.info().get("probe", lambda: None)()
    if reason:
        pytest.skip(f"opencl backend unavailable here: {reason}")

    try:
        return {style: OpenCLBackend(style=style, allow_fp16=True) for style in ("cpu", "gpu")}
    except DeviceSelectionError as e:
        pytest.skip(f"no OpenCL device: {e}")


@pytest.fixture(scope="module")
def ocl(backends):
    return backends["cpu"]


def _run(b, p):
    try:
        plan = b.prepare(p)
    except sparsekit.Unsupported as e:
        pytest.skip(f"Unsupported: {e.reason}")
    with plan:
        plan()
        y = plan.result()
    c = sparsekit.check(p, y)
    assert c.ok, f"{p}: {c.detail}"
    return y


def test_backend_selection_argument(ocl):
    from sparsekit_opencl.backend import OpenCLBackend

    b = OpenCLBackend(device=ocl.desc["index"])
    assert b.device() == ocl.device()
    with pytest.raises(DeviceSelectionError, match="no-such-device-xyz"):
        OpenCLBackend(device="no-such-device-xyz")


def test_build_failure_carries_the_log(ocl):
    from sparsekit_opencl.backend import OpenCLBuildError

    broken = "__kernel void broken(__global float* x) { x[0] = undeclared_thing_42; }"
    with pytest.raises(OpenCLBuildError) as e:
        ocl.build(broken, ("-DFOO=1",), label="a deliberately broken kernel")
    msg = str(e.value)
    assert "undeclared_thing_42" in msg  # the compiler's diagnostic, from the build log
    assert "a deliberately broken kernel" in msg and "-DFOO=1" in msg and ocl.desc["name"] in msg
    assert "undeclared_thing_42" in e.value.log


def test_buffer_larger_than_max_alloc(ocl, monkeypatch):
    from sparsekit_opencl.backend import OpenCLOutOfResources

    p = sparsekit.make_problem("dense_mm", m=48, k=40, n=12, dtype="float32", seed=0)
    monkeypatch.setattr(ocl, "max_alloc", 4096)
    with pytest.raises(OpenCLOutOfResources) as e:
        ocl.prepare(p)
    msg = str(e.value)
    assert "7,680 bytes" in msg  # W: 48 x 40 float32, the buffer asked for
    assert "CL_DEVICE_MAX_MEM_ALLOC_SIZE = 4,096 bytes" in msg and ocl.desc["name"] in msg
    assert isinstance(e.value, sparsekit.Unsupported) and isinstance(e.value, MemoryError)


def test_problem_larger_than_global_memory(ocl, monkeypatch):
    from sparsekit_opencl.backend import OpenCLOutOfResources

    p = sparsekit.make_problem("spmm", m=64, k=64, n=8, sparsity=0.5, dtype="float32", seed=0)
    monkeypatch.setattr(ocl, "global_mem", 1000)
    with pytest.raises(OpenCLOutOfResources, match="CL_DEVICE_GLOBAL_MEM_SIZE = 1,000 bytes"):
        ocl.prepare(p)


def test_dtype_reasons(ocl):
    from sparsekit_opencl.backend import OpenCLBackend

    strict = OpenCLBackend(device=ocl.desc["index"])  # no allow_fp16
    p16 = sparsekit.make_problem("dense_mm", m=4, k=4, n=4, dtype="float16", seed=0)
    if "float16" in strict.dtypes:
        _run(strict, p16)
    else:
        with pytest.raises(sparsekit.Unsupported, match="cl_khr_fp16"):
            strict.prepare(p16)
    with pytest.raises(sparsekit.Unsupported, match="bfloat16"):
        strict.prepare(sparsekit.make_problem("dense_mm", m=4, k=4, n=4, dtype="bfloat16", seed=0))


def test_programs_are_built_once(ocl, monkeypatch):
    import pyopencl as cl

    p = sparsekit.make_problem("spmm", m=40, k=30, n=5, sparsity=0.7, dtype="float32", seed=3)
    _run(ocl, p)
    builds = []
    real = cl.Program.build
    monkeypatch.setattr(cl.Program, "build", lambda self, *a, **k: builds.append(1) or real(self, *a, **k))
    for _ in range(3):
        _run(ocl, p)
    assert builds == []  # every program came from the instance's cache


@pytest.mark.parametrize("style", ["cpu", "gpu"])
def test_csr_strategy_follows_mean_row_length(backends, style):
    b = backends[style]
    short = sparsekit.make_problem("spmm", m=64, k=256, n=3, sparsity=1 - 4 / 256, dtype="float32", seed=0)
    long = sparsekit.make_problem("spmm", m=16, k=256, n=3, sparsity=1 - 64 / 256, dtype="float32", seed=0)
    _run(b, short)
    assert b.last_csr_strategy == "scalar"
    _run(b, long)
    assert b.last_csr_strategy == ("vector" if style == "gpu" else "scalar")
    for p in (short, long):  # both strategies are right on both shapes
        for strategy in ("scalar", "vector"):
            with b._spmm_csr(p, strategy=strategy) as plan:
                plan()
                assert sparsekit.check(p, plan.result()).ok, strategy


# -- kernel variants the device would not pick by itself ---------------------------------------------

EDGES = [
    ("dense_mm", dict(m=1, k=1, n=1)), ("dense_mm", dict(m=37, k=29, n=7)), ("dense_mm", dict(m=70, k=33, n=65)),
    ("dense_mm", dict(m=9, k=130, n=1)),
    ("gather_mm", dict(m=20, k=9, n=3, rows=0)), ("gather_mm", dict(m=50, k=17, n=1, rows=7)),
    ("gather_mm", dict(m=50, k=17, n=40, rows=np.arange(49, 0, -4))),
    ("spmm", dict(m=37, k=29, n=7, sparsity=1.0)), ("spmm", dict(m=33, k=300, n=1, sparsity=0.3)),
    ("spmm", dict(m=37, k=29, n=130, sparsity=0.5, pattern="powerlaw")),
    ("spmm", dict(m=12, k=16, n=9, sparsity=0.5, format="bsr", pattern="block", blocksize=(3, 4))),
    ("spmm", dict(m=17, k=30, n=5, nm="2:4", format="nm")), ("spmm", dict(m=17, k=30, n=1, nm="1:4", format="nm")),
    ("sddmm", dict(m=37, k=29, n=7, sparsity=0.5)), ("sddmm", dict(m=5, k=3, n=4, sparsity=1.0)),
    ("kwta", dict(m=37, n=7, k=0)), ("kwta", dict(m=37, n=7, k=37)), ("kwta", dict(m=300, n=3, k=13)),
    ("kwta", dict(m=1, n=1, k=1)),
    ("sparse_sparse", dict(m=37, k=29, n=7, sparsity=0.5, act_k=0)),
    ("sparse_sparse", dict(m=90, k=60, n=11, sparsity=0.8, act_sparsity=0.5)),
]


@pytest.mark.parametrize("style", ["cpu", "gpu"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("kernel, params", EDGES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(EDGES)])
def test_both_styles_and_half_storage(backends, style, dtype, kernel, params):
    """Each style's kernels (and half storage through vload_half/vstore_half) on edge shapes."""
    _run(backends[style], sparsekit.make_problem(kernel, dtype=dtype, seed=5, **params))


#: each variant-choosing rule of the backend module, replaced to force the variant it would not pick
FORCES = {
    "gemm=tiled": {"gemm_variant": lambda style: "tiled"}, "gemm=vec": {"gemm_variant": lambda style: "vec"},
    "kwta=group": {"kwta_vector": lambda style, n: False}, "kwta=vec": {"kwta_vector": lambda style, n: True},
    "ss=global": {"ss_local_accumulator": lambda nbytes, local: False},
    "ss=global,lanes=8": {"ss_local_accumulator": lambda nbytes, local: False, "ss_lanes": lambda style, mean: 8},
    "ss=lanes=4": {"ss_lanes": lambda style, mean: 4},
}


@pytest.mark.parametrize("force", list(FORCES))
@pytest.mark.parametrize("style", ["cpu", "gpu"])
def test_forced_variants(backends, style, force, monkeypatch):
    from sparsekit_opencl import backend as ob

    b = backends[style]
    for rule, choice in FORCES[force].items():
        monkeypatch.setattr(ob, rule, choice)
    for kernel, params in EDGES:
        if kernel in ("dense_mm", "gather_mm", "kwta", "sparse_sparse"):
            for dtype in ("float32", "float64"):
                p = sparsekit.make_problem(kernel, dtype=dtype, seed=2, **params)
                if dtype in b.dtypes:
                    _run(b, p)


@pytest.mark.parametrize("kernel", sorted(sparsekit_opencl.KERNELS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_gpu_style_drawn_problems(backends, kernel, data):
    """The gpu-style kernels on Hypothesis-drawn edge cases (the conformance suite draws the device's own)."""
    b = backends["gpu"]
    dtype = data.draw(st.sampled_from([d for d in b.dtypes if d != "float16"]), label="dtype")
    p = data.draw(sks.problems(kernel, dtype=dtype), label="problem")
    try:
        plan = b.prepare(p)
    except sparsekit.Unsupported:
        return
    with plan:
        plan()
        y = plan.result()
    c = sparsekit.check(p, y)
    assert c.ok, f"{p}: {c.detail}"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_gpu_style_kwta_ties(backends, data):
    b = backends["gpu"]
    x, k = data.draw(sks.kwta_activations(), label="activations")
    p = sks.kwta_problem(x, k, "float32")
    from sparsekit_opencl import backend as ob

    real = ob.kwta_vector
    for force in ("group", "vec"):
        ob.kwta_vector = lambda style, n, vec=(force == "vec"): vec
        try:
            plan = b.prepare(p)
        finally:
            ob.kwta_vector = real
        with plan:
            plan()
            c = sparsekit.check(p, plan.result())
        assert c.ok, f"{force}: {c.detail}"

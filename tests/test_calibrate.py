"""``sparsekit.calibrate``: STREAM and GEMM measurement, storage, roofline arithmetic, CLI.

Sizes are shrunk (monkeypatched) so the whole file runs in seconds; the figures
themselves are only required to be positive and finite -- what is checked
exactly is the arithmetic, the STREAM results, the oracle guard and the contract
of the result dict.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import sparsekit
from sparsekit import calibrate as C
from sparsekit import host, registry
from sparsekit.roofline import roofline_fraction


@pytest.fixture
def small(monkeypatch):
    """Tiny arrays and GEMMs: the protocol, not the figures."""
    monkeypatch.setattr(C, "stream_bytes", lambda quick=False: 1 << 20)
    monkeypatch.setattr(C, "GEMM_SIZES", (32, 64))
    monkeypatch.setattr(C, "GEMM_PANELS", ((48, 48, 8),))
    monkeypatch.setattr(C, "GEMM_TARGET_S", 0.0)
    monkeypatch.setattr(C, "GEMM_TARGET_QUICK_S", 0.0)


# -- roofline arithmetic -------------------------------------------------------------------

def test_roofline_compute_bound():
    # 2e9 FLOPs at 1000 GFLOP/s = 2 ms; 1e6 bytes at 100 GB/s = 10 us; measured 4 ms -> 0.5
    assert roofline_fraction(2e9, 1e6, 4e-3, 1000.0, 100.0) == pytest.approx(0.5)


def test_roofline_memory_bound():
    # 1e6 FLOPs -> 1 us; 1e9 bytes at 10 GB/s = 0.1 s; measured 0.2 s -> 0.5
    assert roofline_fraction(1e6, 1e9, 0.2, 1000.0, 10.0) == pytest.approx(0.5)


@pytest.mark.parametrize("args", [(1e9, 1e9, 0.0, 100.0, 10.0), (1e9, 1e9, float("nan"), 100.0, 10.0),
                                  (1e9, 1e9, 1.0, 0.0, float("nan")), (1e9, 1e9, 1.0, None, None), (0.0, 0.0, 1.0, 100.0, 10.0)])
def test_roofline_none_without_valid_inputs(args):
    assert roofline_fraction(*args) is None


def test_roofline_one_limit_alone():
    # only the bandwidth known: the memory roof's fraction; only the peak: the compute roof's
    assert roofline_fraction(1e6, 1e9, 0.2, None, 10.0) == pytest.approx(0.5)
    assert roofline_fraction(2e9, 1e6, 4e-3, 1000.0, float("nan")) == pytest.approx(0.5)


def test_backend_limits():
    calib = {"backends": {"a": {"gemm_gflops": 50.0, "copy_gbps": 9.0, "triad_gbps": 10.0},
                          "b": {"gemm_gflops": None, "triad_gbps": 10.0}}}
    assert C.backend_limits(calib, "a") == (50.0, 10.0)  # triad, not copy
    assert C.backend_limits(calib, "b") is None
    assert C.backend_limits(calib, "c") is None
    assert C.backend_limits(None, "a") is None


# -- host STREAM ------------------------------------------------------------------------------

@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("kind, value", [("copy", 1.0), ("triad", 1.0 + host.TRIAD_SCALAR * 2.0)])
def test_host_stream_computes_stream(kind, value, threads, monkeypatch):
    monkeypatch.setattr(host, "TRIAD_BLOCK", 100)  # several blocks per thread slice
    run, a, close = host.stream_pass(kind, 8 * 1001, threads=threads)
    try:
        run()
    finally:
        close()
    assert a.shape == (1001,) and np.all(a == value)


@pytest.mark.parametrize("threads", [1, 3])
def test_host_stream_read_sums_everything(threads):
    run, sums, close = host.stream_pass("read", 8 * 1001, threads=threads)
    try:
        run()
    finally:
        close()
    assert sums.sum() == 1001.0  # the read pass sums its array of ones, slice by slice


def test_host_stream_bad_input():
    with pytest.raises(ValueError, match="STREAM"):
        host.stream_pass("scale", 800)
    with pytest.raises(ValueError, match="n_bytes"):
        host.stream_pass("copy", 4)


def test_default_backend_hook_is_host_stream():
    be = sparsekit.backend("numpy")
    got = C.measure_stream(be, "triad", 1 << 20, repeats=2)
    assert got["gbps"] > 0 and got["bytes_per_array"] == 1 << 20


def test_host_threads_policy(monkeypatch):
    monkeypatch.setenv("SPARSEKIT_NUM_THREADS", "3")
    assert host.thread_policy() == 3
    monkeypatch.setenv("SPARSEKIT_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="SPARSEKIT_NUM_THREADS"):
        host.thread_policy()


def test_stream_arrays_exceed_the_cache():
    assert C.stream_bytes() >= 4 * host.cache_sizes().llc
    assert C.stream_bytes(quick=True) >= 2 * host.cache_sizes().llc


# -- GEMM peak and its oracle guard ----------------------------------------------------------

class _Gemm(sparsekit.Backend):
    name = "gemm-under-test"
    supports = {"dense_mm": ("dense",)}

    def __init__(self, wrong=False):
        self.wrong = wrong

    def _prepare_dense_mm(self, p):
        w, x = p.inputs["w"], p.inputs["x"]
        bump = 1.0 if self.wrong else 0.0
        return sparsekit.Plan(lambda: w @ x + np.float32(bump))


def test_gemm_peak_through_dense_mm(small):
    got = C.measure_gemm(_Gemm(), "float32", quick=True)
    # target 0: the first square size is enough; the panel shape is measured too, the best kept
    assert got["gflops"] > 0 and got["shape"] in ("32x32x32", "48x48x8")


def test_gemm_peak_keeps_the_faster_panel(small, monkeypatch):
    rates = {"32x32x32": 10.0, "48x48x8": 25.0}
    monkeypatch.setattr(C, "_gemm_rate", lambda be, m, k, n, dtype, repeats, target:
                        {"gflops": rates[f"{m}x{k}x{n}"], "shape": f"{m}x{k}x{n}", "n": max(m, k, n), "seconds": 1.0})
    assert C.measure_gemm(_Gemm(), "float32", quick=True)["shape"] == "48x48x8"


def test_wrong_gemm_sets_no_peak(small):
    with pytest.raises(RuntimeError, match="oracle"):
        C.measure_gemm(_Gemm(wrong=True), "float32", quick=True)


def test_gemm_unsupported_dtype_propagates(small):
    with pytest.raises(sparsekit.Unsupported):
        C.measure_gemm(_Gemm(), "float16", quick=True)


# -- calibrate(), save/load ---------------------------------------------------------------------

@pytest.fixture
def ghost():
    registry.register("ghost", lambda: {"name": "ghost", "device": "nowhere", "kernels": {},
                                        "probe": lambda: "no ghost device here"})
    yield "ghost"
    registry.unregister("ghost")


def test_calibrate_result_contract(small, ghost):
    out = C.calibrate(["numpy", ghost], quick=True, progress=False)
    assert set(out) >= {"machine", "created", "versions", "backends", "notes"}
    assert list(out["backends"]) == ["numpy"]
    e = out["backends"]["numpy"]
    for key in ("copy_gbps", "triad_gbps", "gemm_gflops"):
        assert e[key] > 0 and math.isfinite(e[key])
    assert isinstance(e["device"], str) and e["threads"] >= 1 and isinstance(e["details"], dict)
    assert any("ghost" in n and "no ghost device here" in n for n in out["notes"])
    assert C.backend_limits(out, "numpy") == (e["gemm_gflops"], e["triad_gbps"])


def test_calibrate_unknown_backend():
    with pytest.raises(sparsekit.UnknownBackendError, match="nosuch"):
        C.calibrate(["nosuch"], progress=False)


def test_save_load_roundtrip(tmp_path):
    result = {"machine": "m", "backends": {"x": {"copy_gbps": float("nan"), "triad_gbps": 3.0}}, "notes": []}
    path = C.save(result, tmp_path, machine="box")
    assert path == tmp_path / "box" / "calibration.json"
    json.loads(path.read_text())  # standard JSON: NaN became null
    back = C.load(tmp_path, machine="box")
    assert back["backends"]["x"] == {"copy_gbps": None, "triad_gbps": 3.0}
    assert C.load(tmp_path, machine="other") is None
    path.write_text("{not json")
    with pytest.raises(ValueError, match="calibration.json"):
        C.load(tmp_path, machine="box")


# -- command line -----------------------------------------------------------------------------

def _cli(argv):
    p = argparse.ArgumentParser()
    C.configure_parser(p)
    return C.run_cli(p.parse_args(argv))


def test_cli_table_and_file(small, tmp_path, capsys):
    assert _cli(["--backend", "numpy", "--results", str(tmp_path), "--machine", "box", "--quick", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "triad GB/s" in out and "numpy" in out
    assert C.load(tmp_path, machine="box")["backends"]["numpy"]["gemm_gflops"] > 0


def test_cli_json(small, tmp_path, capsys):
    assert _cli(["--backend", "numpy", "--results", str(tmp_path), "--quick", "--json", "--no-progress"]) == 0
    assert "numpy" in json.loads(capsys.readouterr().out)["backends"]


def test_cli_nothing_calibrated(tmp_path, ghost, capsys):
    assert _cli(["--backend", ghost, "--results", str(tmp_path), "--no-progress"]) == 1
    assert "no ghost device here" in capsys.readouterr().out
    assert not any(tmp_path.iterdir())


def test_cli_unknown_backend(tmp_path, capsys):
    assert _cli(["--backend", "nosuch", "--results", str(tmp_path)]) == 2
    assert "nosuch" in capsys.readouterr().err


def test_tune_reaches_backends_that_can(monkeypatch):
    """``calibrate --tune`` calls each backend's ``tune_strategies`` hook; the default has nothing to tune."""
    seen = []

    class _Tunable(sparsekit.Backend):
        name = "tunable"
        supports = {}

        def tune_strategies(self, progress=None):
            seen.append(progress)
            return [{"problem": "p", "strategy": "s", "reason": "r"}]

    registry.register("tunable", lambda: {"name": "tunable", "device": "test", "kernels": {}, "load": "x:y"})
    monkeypatch.setitem(registry._instances, "tunable", _Tunable())
    try:
        assert C.tune_backends(["tunable", "numpy"], progress=False) == {"tunable": [{"problem": "p", "strategy": "s", "reason": "r"}]}
        assert seen == [None]
    finally:
        registry.unregister("tunable")


def test_ceilings_follow_the_read_curve():
    """A footprint is held against the bandwidth at the largest working set no bigger than it (bandwidth
    only falls as the set grows), named after the cache level it fits in; below the curve: no ceiling."""
    from sparsekit.roofline import Ceilings

    calib = {"limits": {"gemm_gflops": 100.0, "levels": [
        {"name": "L1d", "capacity": 64 << 10, "read_gbps": 500.0}, {"name": "L2", "capacity": 2 << 20, "read_gbps": 250.0},
        {"name": "LLC", "capacity": 32 << 20, "read_gbps": 200.0}, {"name": "DRAM", "capacity": None, "read_gbps": 50.0}],
        "curve": [{"bytes": 16 << 10, "read_gbps": 500.0}, {"bytes": 1 << 20, "read_gbps": 260.0},
                  {"bytes": 2 << 20, "read_gbps": 270.0}, {"bytes": 16 << 20, "read_gbps": 210.0},
                  {"bytes": 128 << 20, "read_gbps": 50.0}]}}
    c = Ceilings.from_calibration(calib)
    lv = c.level_for(2.2 * 2**20)  # just past L2: the 2 MiB point bounds it, not the LLC's 16 MiB one
    assert (lv.name, lv.read_gbps) == ("LLC", 270.0)
    assert c.level_for(20 << 20).read_gbps == 210.0 and c.level_for(1 << 30).name == "DRAM"
    assert c.level_for(8 << 10) is None  # smaller than anything measured
    f, name = c.fraction(1e6, 2.2 * 2**20, 1e-5)
    assert name == "LLC" and f == pytest.approx(max(1e6 / 100e9, 2.2 * 2**20 / 270e9) / 1e-5)


def test_curve_takes_the_best_probe_and_backends_that_read_themselves(small, monkeypatch):
    monkeypatch.setattr(C, "READ_PROBES", {"slow": lambda nb, r: 10.0, "fast": lambda nb, r: 40.0})
    monkeypatch.setattr(C, "SETTLE_S", 0.0)

    class _Reader(sparsekit.Backend):
        name = "reader"

        def stream(self, kind, n_bytes, passes=1):
            assert kind == "read" and passes >= 1
            return sparsekit.Plan(lambda: time.sleep(n_bytes * passes / 80e9))

    curve = C.measure_curve({"reader": _Reader(), "numpy": sparsekit.backend("numpy")}, quick=True)
    assert [p["bytes"] for p in curve] == C.working_sets(quick=True)
    assert all(set(p["probes"]) == {"slow", "fast", "reader backend"} for p in curve)  # numpy: the host default
    assert all(p["source"] in ("fast", "reader backend") and p["read_gbps"] >= 40.0 for p in curve)
    levels = C.levels_from_curve(curve, quick=True)
    assert [lv["name"] for lv in levels][-1] == "DRAM" and levels[-1]["probe_bytes"] == curve[-1]["bytes"]


def test_compute_ceiling_is_the_best_of_gemm_and_fma_chains():
    """A backend's own vector code can outrun the BLAS GEMM: the machine's peak is the larger rate,
    named after what measured it, and the roofline holds kernels against that peak."""
    from sparsekit.roofline import Ceilings

    curve = [{"bytes": 1 << 30, "read_gbps": 50.0, "source": "host"}]
    lim = C.machine_limits(curve, {"numpy": {"gemm_gflops": 250.0, "read_gbps": 50.0},
                                   "cpu": {"gemm_gflops": 200.0, "peak_gflops": 520.0}}, quick=True)
    assert (lim["gemm_gflops"], lim["gemm_backend"]) == (250.0, "numpy")
    assert (lim["peak_gflops"], lim["peak_source"]) == (520.0, "cpu FMA chains")
    assert Ceilings.from_calibration({"limits": lim}).peak_gflops == 520.0
    lim = C.machine_limits(curve, {"numpy": {"gemm_gflops": 250.0}}, quick=True)
    assert (lim["peak_gflops"], lim["peak_source"]) == (250.0, "numpy GEMM")


def test_cpu_peak_probe_counts_its_flops():
    """The FMA probe's FLOP count matches its loop (so the rate is real), and its run returns finite values."""
    rec = {r.name: r for r in sparsekit.backends()}.get("cpu")
    if rec is None or not rec.available:
        pytest.skip(f"cpu backend unavailable: {rec.reason if rec else 'not registered'}")
    be = sparsekit.backend("cpu")
    from sparsekit_cpu._stream import FMA_CHAINS, fma_plan

    run, flops = fma_plan(2, 16, np.float32, iters=1000)
    assert flops == 2 * 16 * FMA_CHAINS * 1000 * 2
    assert np.isfinite(run()).all() and (run() > 0).all()
    plan, flops = be.peak_probe("float32")
    with plan:
        plan()
        assert np.isfinite(plan.result()).all()
    assert flops > 0 and be.peak_probe("int8") is None


_FAULTS = r"""
import resource, sys
import numpy as np
if sys.argv[1] == "pin":
    from sparsekit.host import pin_malloc_threshold
    assert pin_malloc_threshold()
np.ones(1 << 21, np.float32).sum()  # one 8 MB block in and out first, as a warm-up call would
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    np.ones(1 << 21, np.float32).sum()  # an 8 MB temporary per call, like numpy's W[rows]
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_pinned_malloc_threshold_stops_page_faults_on_every_large_temporary():
    """A process whose glibc serves 8 MB blocks from fresh mmap (the threshold below 8 MB, as
    MALLOC_MMAP_THRESHOLD_ forces here and a process's history can leave it) faults every page of
    every temporary in again; pinned (what every benchmark process and worker does), it does not.
    Counted in page faults, not time."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    faults = {}
    for mode in ("default", "pin"):
        out = subprocess.run([sys.executable, "-c", _FAULTS, mode], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        faults[mode] = int(out.stdout.split()[-1])
    # the stand-in for the slow state is real: every one of the 20 temporaries faults again
    # (hundreds of faults each; fewer than its 2048 pages where the kernel maps ahead or huge)
    assert faults["default"] >= 20 * 64, faults
    assert faults["pin"] * 20 <= faults["default"], faults

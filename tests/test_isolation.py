"""Fault isolation of ``sparsekit run``: crashing, hanging, raising and OOM backends cost a row, not the sweep.

The misbehaving backends (``tests/fake_backends``) are registered through a
real entry point: a temporary ``*.dist-info`` on ``PYTHONPATH``, seen by the
CLI subprocess and by the workers it spawns. Problems are tiny; each test
costs a few worker start-ups (an interpreter importing NumPy and SciPy).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fake_backends import entry_points_txt

TESTS = Path(__file__).resolve().parent
SMALL = ("--shape", "24x24x4", "--repeat", "1", "--no-progress")


@pytest.fixture(scope="module")
def fake_env(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    dist = site / "sparsekit_fake_backends-0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sparsekit-fake-backends\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text(entry_points_txt())
    path = os.pathsep.join([str(site), str(TESTS), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "PYTHONWARNINGS": "ignore"}


def sparsekit(env, *argv, timeout=120):
    return subprocess.run([sys.executable, "-m", "sparsekit", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_fakes_are_discovered_through_the_entry_point(fake_env):
    done = sparsekit(fake_env, "backends", "--json")
    assert done.returncode == 0, done.stderr
    recs = {r["name"]: r for r in json.loads(done.stdout)}
    for name in ("crashy", "hangy", "raisy", "oomy", "slowpoke"):
        assert recs[name]["available"], recs.get(name)


def test_crash_hang_raise_and_oom_are_rows_and_others_survive(fake_env, tmp_path):
    out = tmp_path / "run.json"
    done = sparsekit(fake_env, "run", "spmm", "--backend", "crashy,numpy,hangy,raisy,oomy", "--sparsity", "0.5,0.9",
                     "--timeout", "3", "--output", out, "--json", *SMALL, timeout=180)
    assert done.returncode == 3, (done.stdout, done.stderr)  # backend faults, no wrong result
    assert "Traceback" not in done.stderr
    data = json.loads(done.stdout)
    by = {}
    for r in data["rows"]:
        by.setdefault(r["backend"], []).append(r)
    assert [r["status"] for r in by["numpy"]] == ["ok", "ok"]
    assert all(r["time_s"] > 0 and r["error"] <= 1e-5 for r in by["numpy"])
    assert [r["status"] for r in by["crashy"]] == ["crashed", "crashed"]
    assert all("SIGSEGV" in r["detail"] for r in by["crashy"])
    assert [r["status"] for r in by["hangy"]] == ["timeout", "timeout"]
    assert all("timed out after 3 s" in r["detail"] for r in by["hangy"])
    assert [r["status"] for r in by["raisy"]] == ["error", "error"]
    assert all("simulated driver error" in r["detail"] for r in by["raisy"])
    assert [r["status"] for r in by["oomy"]] == ["oom", "oom"]
    assert all(r["detail"].startswith("out of memory: problem needs about") for r in by["oomy"])
    # rows come point by point, backends in the order given
    assert [r["backend"] for r in data["rows"][:5]] == ["crashy", "numpy", "hangy", "raisy", "oomy"]
    # the saved file is the same document, complete
    saved = json.loads(out.read_text())
    assert saved["meta"]["status"] == "complete" and len(saved["rows"]) == 10
    assert saved["meta"]["backends"]["numpy"]["versions"]
    assert saved["meta"]["backends"]["crashy"]["device"] == "test double (crashy)"

    # the table tells the same story
    done = sparsekit(fake_env, "run", "spmm", "--backend", "crashy,numpy", "--sparsity", "0.5", *SMALL)
    assert done.returncode == 3
    lines = done.stdout.splitlines()
    assert any(line.startswith("crashy") and "crashed: worker killed by SIGSEGV" in line for line in lines)
    assert any(line.startswith("numpy") and line.rstrip().endswith("ok") for line in lines)


def test_wrong_result_beats_faults_and_usage_errors_in_workers(fake_env, tmp_path):
    # a generation error found in the worker is still a usage error (2), with nothing printed
    done = sparsekit(fake_env, "run", "spmm", "--backend", "numpy", "--pattern", "zigzag", "--sparsity", "0.5", *SMALL)
    assert done.returncode == 2 and done.stdout == ""
    assert "zigzag" in done.stderr and "Traceback" not in done.stderr


def test_too_large_is_refused_unless_forced(fake_env):
    done = sparsekit(fake_env, "run", "spmm", "--backend", "numpy", "--shape", "4000000x4000000x64",
                     "--sparsity", "0.5", "--no-progress")
    assert done.returncode == 2 and done.stdout == ""
    assert "needs about" in done.stderr and "available" in done.stderr and "--force" in done.stderr


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"  # a zombie has finished; only its parent's wait() is missing


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_cleanly_keeps_rows_and_leaves_no_process(fake_env, tmp_path, sig):
    pidfile = tmp_path / "pids.txt"
    out = tmp_path / "partial.json"
    env = {**fake_env, "SPARSEKIT_TEST_PIDFILE": str(pidfile), "SPARSEKIT_SLOWPOKE_S": "30"}
    proc = subprocess.Popen([sys.executable, "-m", "sparsekit", "run", "spmm", "--backend", "numpy,slowpoke",
                             "--sparsity", "0.5,0.9", "--output", str(out), *SMALL],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 90
        while not (pidfile.exists() and pidfile.read_text().strip()):  # slowpoke is busy in prepare
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "slowpoke never started"
            time.sleep(0.1)
        worker_pid, helper_pid = map(int, pidfile.read_text().split()[:2])
        assert _alive(worker_pid) and _alive(helper_pid)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    # numpy finished both points before slowpoke started: they are printed and saved
    numpy_rows = [line for line in stdout.splitlines() if line.startswith("numpy") and "24x24x4" in line]
    assert len(numpy_rows) == 2 and all(line.rstrip().endswith("ok") for line in numpy_rows)
    saved = json.loads(out.read_text())
    assert saved["meta"]["status"] == "interrupted"
    assert [r["backend"] for r in saved["rows"]] == ["numpy", "numpy"]
    # the worker and the process it started are gone
    time.sleep(0.2)
    assert not _alive(worker_pid), "worker survived Ctrl-C"
    assert not _alive(helper_pid), "the worker's child process survived Ctrl-C"


# -- resources: estimates and messages (in-process, fast) ------------------------------------------


def test_footprint_estimate_and_refusal_message():
    from sparsekit import preflight, resources

    small = preflight.footprint_bytes("spmm", {"m": 64, "k": 64, "n": 8, "sparsity": 0.9})
    big = preflight.footprint_bytes("spmm", {"m": 65536, "k": 65536, "n": 8, "sparsity": 0.9})
    assert big > 65536 * 65536 * 8 > small  # at least the float64 oracle's dense-sized arrays
    for kernel, params in (("kwta", {"m": 10, "n": 10}), ("lif", {"n_in": 10, "n_out": 10, "steps": 5}),
                           ("moe", {"m": 8, "k": 8, "n": 2, "experts": 4}), ("sddmm", {"m": 8, "k": 8, "n": 8})):
        assert preflight.footprint_bytes(kernel, params) > 0
    with pytest.raises(resources.TooLarge) as info:
        preflight.check_fits("spmm", {"m": 65536, "k": 65536, "n": 8, "sparsity": 0.9}, available=2**30)
    msg = str(info.value)
    assert "65536x65536x8" in msg and "1.0 GiB" in msg and "--force" in msg
    preflight.check_fits("spmm", {"m": 64, "k": 64, "n": 8}, available=2**40)  # fits: no error
    assert isinstance(info.value, ValueError)  # the CLI turns it into exit status 2


@pytest.mark.parametrize("exc, oom", [
    (MemoryError("Unable to allocate 8.00 GiB"), True),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),  # torch
    (type("OutOfMemoryError", (Exception,), {})("cudaErrorMemoryAllocation"), True),  # CuPy
    (RuntimeError("clEnqueueNDRangeKernel failed: MEM_OBJECT_ALLOCATION_FAILURE"), True),  # OpenCL
    (RuntimeError("simulated driver error"), False),
    (ValueError("shapes do not match"), False),
])
def test_out_of_memory_is_recognised(exc, oom):
    from sparsekit import preflight, resources

    assert resources.is_out_of_memory(exc) is oom
    if oom:
        msg = preflight.out_of_memory_message(exc, "spmm", {"m": 1024, "k": 1024, "n": 64, "sparsity": 0.5})
        assert msg.startswith("out of memory: problem needs about ") and "MiB" in msg

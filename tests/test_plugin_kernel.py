"""A kernel defined only in a test package, registered through the ``sparsekit.kernels``
entry-point group, runs through ``sparsekit run``, the shipped conformance suite, an asv
benchmark and the report without a line of the core naming it.

The package (``tests/plugin_kernel/sparsekit_relu``) brings ``relu_spmm`` and a
backend ``relu`` that implements it. Its entry points are declared by a
``*.dist-info`` written into a temporary folder that goes on ``PYTHONPATH`` (so the
CLI's spawned workers, pytest and asv's benchmark processes see it too), exactly as
an installed distribution's would be.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = Path(__file__).resolve().parent / "plugin_kernel"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    sys.path.insert(0, str(PLUGIN))
    try:
        from sparsekit_relu import ENTRY_POINTS
    finally:
        sys.path.remove(str(PLUGIN))
    dist = site / "sparsekit_relu-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sparsekit-relu\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(PLUGIN), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("SPARSEKIT_TEST_BACKEND", None)
    return env


def _run(args, env, timeout=300, cwd=ROOT):
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)


def test_catalogue_lists_the_plugin_kernel(plugin_env):
    code = ("import sparsekit as sk; sp = sk.get_kernel('relu_spmm'); "
            "print(sk.kernels()[-1], sp.shape_axes, [b.name for b in sk.backends() if b.name == 'relu'])")
    proc = _run([sys.executable, "-c", code], plugin_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == "relu_spmm", proc.stdout
    assert "'relu'" in proc.stdout


def test_sparsekit_run_sweeps_it(plugin_env):
    proc = _run([sys.executable, "-m", "sparsekit", "run", "relu_spmm", "--backend", "relu", "--shape", "64x48x8",
                 "--sparsity", "0.5,0.9,0.99", "--repeat", "3", "--json", "--no-progress"], plugin_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    rows = doc["rows"]
    assert [r["status"] for r in rows] == ["ok"] * 3, rows
    assert all(r["shape"] == "64x48x8" and r["speedup"] > 0 for r in rows)
    assert "relu" in doc["break_even"]


def test_shipped_conformance_suite_runs_it(plugin_env, tmp_path):
    proc = _run([sys.executable, "-m", "pytest", "--pyargs", "sparsekit.testing", "--backend", "relu", "-q",
                 "-p", "no:cacheprovider", "-k", "relu_spmm or dense_mm or info or claimed", "-rA"],
                dict(plugin_env, HYPOTHESIS_PROFILE="ci"), timeout=600, cwd=tmp_path)
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-2000:]
    assert "PASSED" in out and "test_grid[relu-relu_spmm-uniform-0.9-float32]" in out, out[-4000:]
    assert "test_drawn_problems[relu-relu_spmm]" in out


@pytest.mark.skipif(shutil.which("git") is None, reason="asv needs git")
def test_asv_benchmark_and_report(plugin_env, tmp_path):
    asv = Path(sys.executable).with_name("asv")
    if not asv.exists():
        pytest.skip("asv is not installed in this environment (the bench extra)")
    conf = tmp_path / "asv.conf.json"
    conf.write_text(json.dumps({
        "version": 1, "project": "sparsekit", "repo": str(ROOT), "branches": ["HEAD"],
        "benchmark_dir": str(ROOT / "benchmarks"), "results_dir": str(tmp_path / "results"),
        "html_dir": str(tmp_path / "html"), "env_dir": str(tmp_path / "env"), "environment_type": "virtualenv",
        "launch_method": "spawn",
    }))
    # asv drops PYTHONPATH from its benchmark processes unless it comes as ASV_PYTHONPATH
    env = dict(plugin_env, HOME=str(tmp_path), ASV_PYTHONPATH=plugin_env["PYTHONPATH"],
               SPARSEKIT_BENCH_BACKENDS="relu")  # its backend on the asv axis, as a third party would ask
    machine = _run([str(asv), "machine", "--yes", "--machine", "plugin-test", "--config", str(conf)], env, cwd=tmp_path)
    assert machine.returncode == 0, machine.stdout + machine.stderr
    run = _run([str(asv), "run", "--config", str(conf), "--python=same", "--quick", "--machine", "plugin-test",
                "--set-commit-hash", _head(), "-b", "bench_registered", "--show-stderr"], env, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    results = json.loads(next((tmp_path / "results" / "plugin-test").glob("*-existing-*.json")).read_text())
    names = set(results["results"])
    assert {"bench_registered.ReluSpMM.time_relu_spmm", "bench_registered.ReluSpMM.track_error",
            "bench_registered.DenseMM_relu_spmm.time_dense_mm"} <= names, names
    report = _run([sys.executable, "-m", "sparsekit", "report", "--results", str(tmp_path / "results"), "--json",
                   "--no-html"], env, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    rows = [r for r in json.loads(report.stdout)["break_even"] if r["kernel"] == "relu_spmm" and r["backend"] == "relu"]
    assert len(rows) == 1, report.stdout[-2000:]
    row = rows[0]
    assert row["dense_shape"] == "96x80x8" and row["dense_time"] and row["sparsities"] == [0.5, 0.9, 0.99]
    assert all(s is not None and s > 0 for s in row["speedups"]), row
    assert row["break_even"] != "n/a (no dense_mm)"


def _head() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()

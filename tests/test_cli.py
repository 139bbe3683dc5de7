"""The ``sparsekit`` command line: ``backends``, ``run`` and the exit-status contract.

Everything runs in-process through ``sparsekit.cli.main`` (0 ok, 1 a failed or
empty run, 2 bad usage with a message on stderr) on the ``numpy`` backend and
tiny problems; one test starts the installed console script and ``python -m
sparsekit`` in a subprocess. Timing is shortened (``min_time``) so a sweep point
costs milliseconds: nothing here asserts on speed.
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import sparsekit
from sparsekit import Backend, Plan, cli, measure, registry, sweep, timing

FAKE_MISSING = "fake_missing_xyz"
FAKE_WRONG = "fake_wrong_xyz"
FAKE_CRASH = "fake_crash_xyz"
MISSING_MODULE = "no_such_module_xyz"


@pytest.fixture(autouse=True)
def quick_timing(monkeypatch):
    """Sweeps time each point for about a millisecond instead of 50 ms per repeat."""
    monkeypatch.setattr(measure, "time_plan", functools.partial(timing.time_plan, min_time=1e-3, max_time=0.2))


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``sparsekit ARGV``; argparse's SystemExit counts as a return.

    ``run`` goes ``--in-process`` here: the fakes below are registered with
    ``registry.register`` (seen by this process only) and timing is patched;
    the worker path is tested in test_isolation.py with entry-point backends.
    """
    argv = [str(a) for a in argv]
    if argv[:1] == ["run"]:
        argv.append("--in-process")
    try:
        rc = cli.main(argv)
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    out, err = capsys.readouterr()
    return rc, out, err


def run_json(capsys, *argv) -> tuple[int, dict, str]:
    rc, out, err = run_cli(capsys, *argv, "--json")
    return rc, json.loads(out), err


QUICK = ("--repeat", "1", "--no-progress")


# -- fake backends -------------------------------------------------------------------


class WrongBackend(Backend):
    """Available, but its spmm result is off by far more than any tolerance."""

    name = FAKE_WRONG
    supports = {"spmm": ("csr",), "dense_mm": ("dense",)}
    dtypes = ("float32", "float64")

    def device(self):
        return "a test double"

    def _prepare_spmm(self, p):
        w, x = p.inputs["w"], p.inputs["x"]

        def run():
            y = np.array(w @ x, dtype=np.float64)
            y.flat[0] += 1.0 + np.abs(y).max()  # perturbed
            return y

        return Plan(run)

    def _prepare_dense_mm(self, p):
        w, x = (np.asarray(v) for v in p.inputs.values())
        return Plan(lambda: w @ x)


class CrashingBackend(Backend):
    name = FAKE_CRASH
    supports = {"spmm": ("csr",)}
    dtypes = ("float32", "float64")

    def _prepare_spmm(self, p):
        raise RuntimeError("simulated driver crash")


def _info(name, load, requires=()):
    info = {"name": name, "device": "test device", "kernels": {"spmm": ("csr",)}, "dtypes": ("float32", "float64"),
            "requires": tuple(requires), "load": load}
    return lambda: info


@pytest.fixture
def fake_backends():
    """Register the three fakes for one test; always unregistered afterwards."""
    module = __name__  # however pytest imported this file, it is in sys.modules under this name
    assert sys.modules[module].WrongBackend is WrongBackend
    registry.register(FAKE_MISSING, _info(FAKE_MISSING, f"{MISSING_MODULE}:Backend", requires=(MISSING_MODULE,)))
    registry.register(FAKE_WRONG, _info(FAKE_WRONG, f"{module}:WrongBackend"))
    registry.register(FAKE_CRASH, _info(FAKE_CRASH, f"{module}:CrashingBackend"))
    try:
        yield
    finally:
        for name in (FAKE_MISSING, FAKE_WRONG, FAKE_CRASH):
            registry.unregister(name)
        registry.reset()


# -- backends --------------------------------------------------------------------------


def test_backends_table(capsys):
    rc, out, err = run_cli(capsys, "backends")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["name", "available", "device", "kernels", "reason"]
    names = {line.split()[0] for line in lines[2:] if line.strip()}
    assert {"numpy", "cpu"} <= names
    numpy_line = next(line for line in lines if line.split()[0] == "numpy")
    assert numpy_line.split()[1] == "yes"  # numpy is always installed
    assert "spmm" in numpy_line and "dense_mm" in numpy_line


def test_backends_json(capsys):
    rc, out, err = run_cli(capsys, "backends", "--json")
    assert rc == 0, err
    records = json.loads(out)
    by_name = {r["name"]: r for r in records}
    assert {"numpy", "cpu"} <= set(by_name)
    for r in records:
        assert {"name", "available", "reason", "device", "kernels"} <= set(r)
        assert isinstance(r["available"], bool) and isinstance(r["reason"], str)
        assert isinstance(r["kernels"], dict)
        assert r["available"] == (r["reason"] == "")
    assert by_name["numpy"]["available"] is True
    assert set(by_name["numpy"]["kernels"]) == set(sparsekit.kernels())
    assert "csr" in by_name["numpy"]["kernels"]["spmm"]


def test_backends_lists_unavailable_with_reason(capsys, fake_backends):
    rc, out, err = run_cli(capsys, "backends", "--json")
    assert rc == 0, err
    rec = {r["name"]: r for r in json.loads(out)}[FAKE_MISSING]
    assert rec["available"] is False and MISSING_MODULE in rec["reason"]
    rc, out, err = run_cli(capsys, "backends")
    line = next(line for line in out.splitlines() if line.startswith(FAKE_MISSING))
    assert " no " in line and MISSING_MODULE in line


# -- run: the spmm sweep -----------------------------------------------------------------

SPMM = ("run", "spmm", "--backend", "numpy", "--shape", "64x64x4", "--sparsity", "0.5,0.9")


def test_run_spmm_table(capsys):
    rc, out, err = run_cli(capsys, *SPMM, *QUICK)
    assert rc == 0, err
    rows = [line.split() for line in out.splitlines() if line.startswith("numpy ")]
    results = [r for r in rows if len(r) > 2]
    assert len(results) == 2, out
    assert all(r[1] == "64x64x4" and r[-1] == "ok" for r in results)
    assert [round(float(r[2]), 1) for r in results] == [0.5, 0.9]
    assert "break-even sparsity" in out
    be_line = out.split("break-even sparsity")[1]
    assert "numpy" in be_line
    assert "Traceback" not in err


def test_run_spmm_json(capsys):
    rc, data, err = run_json(capsys, *SPMM, "--repeat", "1")
    assert rc == 0, err
    assert set(data) == {"rows", "break_even", "notes", "meta"}
    assert data["meta"]["seed"] == 0 and data["meta"]["status"] == "complete"
    rows = data["rows"]
    assert len(rows) == 2
    assert [r["sparsity"] for r in rows] == pytest.approx([0.5, 0.9], abs=0.01)
    for r in rows:
        assert r["backend"] == "numpy" and r["kernel"] == "spmm" and r["shape"] == "64x64x4"
        assert r["status"] == "ok", r["detail"]
        assert 0 <= r["error"] <= 1e-5
        assert r["time_s"] > 0 and r["dense_time_s"] > 0
        assert r["speedup"] == pytest.approx(r["dense_time_s"] / r["time_s"])
        assert r["params"]["m"] == 64 and r["params"]["k"] == 64 and r["params"]["n"] == 4
    assert set(data["break_even"]) == {"numpy"}
    assert isinstance(data["break_even"]["numpy"], str) and data["break_even"]["numpy"]
    assert data["notes"] == []


# -- run: every kernel ----------------------------------------------------------------------

KERNEL_ARGS = {
    "dense_mm": ["--shape", "32x32x8", "--sparsity", "0.5"],
    "spmm": ["--shape", "32x32x4", "--sparsity", "0.5,0.9"],
    "sddmm": ["--shape", "32x16x32", "--sparsity", "0.5,0.9"],
    "gather_mm": ["--shape", "64x32x8", "--sparsity", "0.5,0.9"],
    "kwta": ["--shape", "64x8", "--sparsity", "0.5,0.9"],
    "sparse_sparse": ["--shape", "32x32x8", "--sparsity", "0.5,0.9"],
    "lif": ["--shape", "32x24x10", "--sparsity", "0.5,0.9"],
    "moe": ["--shape", "16x32x8", "--experts", "4", "--top-k", "1"],
}
#: kernels with no m x k x n dense equivalent print no break-even table
def _has_dense(kernel: str) -> bool:
    """Whether the kernel's spec names a dense equivalent (its sweep then times dense_mm beside it)."""
    from sparsekit.kernels.base import KernelSpec

    return kernel != "dense_mm" and type(sparsekit.get_kernel(kernel)).dense_equivalent is not KernelSpec.dense_equivalent


NO_DENSE = {k for k in sparsekit.kernels() if not _has_dense(k)}


def test_kernel_table_covers_the_catalogue():
    assert set(KERNEL_ARGS) == set(sparsekit.kernels())


@pytest.mark.parametrize("kernel", list(KERNEL_ARGS))
def test_each_kernel_runs(capsys, kernel):
    argv = ("run", kernel, "--backend", "numpy", *KERNEL_ARGS[kernel], "--repeat", "1")
    rc, data, err = run_json(capsys, *argv)
    assert rc == 0, err
    rows = data["rows"]
    expected = 1 if kernel in ("moe", "dense_mm") else 2
    assert len(rows) == expected
    assert all(r["status"] == "ok" and r["kernel"] == kernel for r in rows), rows
    if kernel in NO_DENSE:
        assert data["break_even"] == {}
        assert all(r["speedup"] is None for r in rows)
    else:
        assert set(data["break_even"]) == {"numpy"}
        assert all(r["speedup"] is not None for r in rows)

    rc, out, err = run_cli(capsys, *argv, "--no-progress")
    assert rc == 0, err
    assert ("break-even sparsity" in out) == (kernel not in NO_DENSE)


def test_run_shapes_per_kernel(capsys):
    rc, data, _ = run_json(capsys, "run", "lif", "--backend", "numpy", "--shape", "32x24x10", "--sparsity", "0.9", "--repeat", "1")
    assert rc == 0
    p = data["rows"][0]["params"]
    assert (p["n_in"], p["n_out"], p["steps"]) == (32, 24, 10)
    assert data["rows"][0]["shape"] == "32x24x10"
    rc, data, _ = run_json(capsys, "run", "kwta", "--backend", "numpy", "--shape", "64x8", "--sparsity", "0.75", "--repeat", "1")
    assert rc == 0
    assert (data["rows"][0]["params"]["m"], data["rows"][0]["params"]["n"]) == (64, 8)
    assert data["rows"][0]["shape"] == "64x8"


def test_run_moe_sparsity_is_from_top_k(capsys):
    rc, data, err = run_json(capsys, "run", "moe", "--backend", "numpy", "--shape", "16x32x8", "--experts", "4",
                             "--top-k", "1", "--sparsity", "0.1,0.2,0.3", "--repeat", "1")
    assert rc == 0, err
    assert len(data["rows"]) == 1  # --sparsity does not apply: one level, 1 - top_k/experts
    assert data["rows"][0]["sparsity"] == pytest.approx(0.75)
    assert data["rows"][0]["params"]["experts"] == 4 and data["rows"][0]["params"]["top_k"] == 1


# -- run: weights and DLMC ------------------------------------------------------------------


@pytest.fixture
def weights(tmp_path):
    w = sp.random(48, 40, density=0.2, format="csr", random_state=0, dtype=np.float32)
    npz, npy = tmp_path / "w.npz", tmp_path / "w.npy"
    sp.save_npz(npz, w)
    np.save(npy, w.toarray())
    return {"npz": npz, "npy": npy, "nnz": w.nnz}


@pytest.mark.parametrize("kind", ["npz", "npy"])
def test_run_weights_file(capsys, weights, kind):
    rc, data, err = run_json(capsys, "run", "spmm", "--backend", "numpy", "--weights", weights[kind],
                             "--shape", "1x1x8", "--sparsity", "0.5,0.9", "--repeat", "1")
    assert rc == 0, err
    [row] = data["rows"]  # weights make a one-level sweep
    assert row["status"] == "ok" and row["error"] <= 1e-5
    assert row["shape"] == "48x40x8"  # M and K from the file, N from --shape
    assert row["params"]["nnz"] == weights["nnz"]
    assert row["sparsity"] == pytest.approx(1 - weights["nnz"] / (48 * 40))
    assert row["speedup"] is not None


def test_run_lif_weights_file_sets_neuron_counts(capsys, weights):
    # w is n_out x n_in = 48 x 40; without --shape the default neuron counts must not get in the way
    rc, data, err = run_json(capsys, "run", "lif", "--backend", "numpy", "--weights", weights["npy"], "--repeat", "1")
    assert rc == 0, err
    p = data["rows"][0]["params"]
    assert (p["n_in"], p["n_out"]) == (40, 48)
    rc, data, err = run_json(capsys, "run", "lif", "--backend", "numpy", "--weights", weights["npz"],
                             "--shape", "1x1x7", "--repeat", "1")
    assert rc == 0, err
    assert data["rows"][0]["shape"] == "40x48x7"


def test_run_dlmc(capsys):
    argv = ("run", "spmm", "--backend", "numpy", "--pattern", "dlmc", "--matrix", "transformer_attn_q",
            "--shape", "512x512x8", "--sparsity", "0.9,0.98", "--repeat", "1")
    rc, data, err = run_json(capsys, *argv)
    assert rc == 0, err
    rows = data["rows"]
    assert [r["sparsity"] for r in rows] == pytest.approx([0.9, 0.98], abs=1e-3)
    assert all(r["status"] == "ok" and r["shape"] == "512x512x8" for r in rows)
    assert all(r["params"]["matrix"] == "transformer_attn_q" and r["params"]["pattern"] == "dlmc" for r in rows)
    assert "numpy" in data["break_even"]


# -- run: usage errors exit 2 with a message ------------------------------------------------

ERRORS = {
    "unknown kernel": (["run", "no_such_kernel"], ["no_such_kernel"]),
    "unknown backend": (["run", "spmm", "--backend", "numpy,no_such_backend", "--shape", "8x8x2"], ["no_such_backend"]),
    "malformed shape": (["run", "spmm", "--shape", "4096by4096"], ["--shape", "4096by4096"]),
    "zero shape": (["run", "spmm", "--shape", "0x8x8"], ["--shape", "0x8x8"]),
    "shape arity": (["run", "spmm", "--shape", "8x8"], ["shape", "8x8"]),
    "lif shape arity": (["run", "lif", "--shape", "1x2x3x4"], ["shape", "1x2x3x4"]),
    "kwta shape arity": (["run", "kwta", "--shape", "16"], ["shape", "16"]),
    "sparsity out of range": (["run", "spmm", "--shape", "8x8x2", "--sparsity", "1.5"], ["sparsity", "1.5"]),
    "sparsity not a number": (["run", "spmm", "--sparsity", "abc"], ["--sparsity", "abc"]),
    "missing weights": (["run", "spmm", "--weights", "{tmp}/nope.npz"], ["nope.npz"]),
    "unknown dtype": (["run", "spmm", "--shape", "8x8x2", "--dtype", "float7"], ["float7"]),
    "unknown pattern": (["run", "spmm", "--shape", "8x8x2", "--pattern", "zigzag"], ["zigzag"]),
    "unknown dlmc matrix": (["run", "spmm", "--pattern", "dlmc", "--matrix", "no_such_matrix"], ["no_such_matrix"]),
    "moe top_k > experts": (["run", "moe", "--shape", "8x8x2", "--experts", "2", "--top-k", "3"], ["top_k"]),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_usage_errors_exit_2(capsys, tmp_path, case):
    argv, needles = ERRORS[case]
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--backend" not in argv:
        argv += ["--backend", "numpy"]
    rc, out, err = run_cli(capsys, *argv, *QUICK)
    assert rc == 2, (out, err)
    assert out == ""  # nothing ran
    assert "error" in err and "Traceback" not in err
    for needle in needles:
        assert needle in err, err


def test_unknown_backend_is_checked_before_anything_runs(capsys):
    rc, out, err = run_cli(capsys, "run", "spmm", "--backend", "numpy,nope", "--shape", "8x8x2", *QUICK)
    assert rc == 2 and out == ""
    assert "nope" in err and "numpy" in err  # names the culprit and the registered ones


def test_version(capsys):
    rc, out, _ = run_cli(capsys, "--version")
    assert rc == 0 and sparsekit.__version__ in out


def test_no_command_is_a_usage_error(capsys):
    rc, _, err = run_cli(capsys)
    assert rc == 2 and err


# -- run: unavailable, wrong and crashing backends ---------------------------------------------


def test_unavailable_backend_is_named_and_skipped(capsys, fake_backends):
    argv = ("run", "spmm", "--backend", f"numpy,{FAKE_MISSING}", "--shape", "32x32x4", "--sparsity", "0.5,0.9")
    rc, out, err = run_cli(capsys, *argv, *QUICK)
    assert rc == 0, err
    note = next(line for line in err.splitlines() if FAKE_MISSING in line)
    assert MISSING_MODULE in note  # the reason
    assert not any(line.startswith(FAKE_MISSING) for line in out.splitlines())

    rc, data, err = run_json(capsys, *argv, "--repeat", "1")
    assert rc == 0
    assert {r["backend"] for r in data["rows"]} == {"numpy"}  # never replaced by another backend
    assert len(data["rows"]) == 2
    assert set(data["break_even"]) == {"numpy"}
    assert len(data["notes"]) == 1 and FAKE_MISSING in data["notes"][0] and MISSING_MODULE in data["notes"][0]


def test_only_unavailable_backends_exit_1(capsys, fake_backends):
    rc, data, err = run_json(capsys, "run", "spmm", "--backend", FAKE_MISSING, "--shape", "8x8x2", "--repeat", "1")
    assert rc == 1  # nothing could run
    assert data["rows"] == [] and FAKE_MISSING in err


def test_wrong_result_is_fail_and_exit_1(capsys, fake_backends):
    argv = ("run", "spmm", "--backend", f"numpy,{FAKE_WRONG}", "--shape", "32x32x4", "--sparsity", "0.5,0.9")
    rc, data, err = run_json(capsys, *argv, "--repeat", "1")
    assert rc == 1, err
    wrong = [r for r in data["rows"] if r["backend"] == FAKE_WRONG]
    good = [r for r in data["rows"] if r["backend"] == "numpy"]
    assert len(wrong) == 2 and len(good) == 2
    assert all(r["status"] == "FAIL" and r["detail"] and r["error"] > 0.1 for r in wrong)
    assert all(r["status"] == "ok" for r in good)

    rc, out, err = run_cli(capsys, *argv, *QUICK)
    assert rc == 1
    assert sum("FAIL" in line for line in out.splitlines() if line.startswith(FAKE_WRONG)) == 2


def test_crashing_backend_is_error_and_exit_3(capsys, fake_backends):
    rc, data, err = run_json(capsys, "run", "spmm", "--backend", f"{FAKE_CRASH},numpy", "--shape", "16x16x2",
                             "--sparsity", "0.5", "--repeat", "1")
    assert rc == 3  # a backend fault, distinct from a wrong result (1) and bad usage (2)
    [crash] = [r for r in data["rows"] if r["backend"] == FAKE_CRASH]
    assert crash["status"] == "error" and "simulated driver crash" in crash["detail"]
    assert [r["status"] for r in data["rows"] if r["backend"] == "numpy"] == ["ok"]  # the sweep went on


def test_unsupported_dtype_is_na_and_exit_1(capsys):
    # numpy does float32/float64 only: every point is n/a, so nothing ran
    rc, data, err = run_json(capsys, "run", "spmm", "--backend", "numpy", "--shape", "8x8x2", "--sparsity", "0.5",
                             "--dtype", "float16", "--repeat", "1")
    assert rc == 1
    assert [r["status"] for r in data["rows"]] == ["n/a"]
    assert "float16" in data["rows"][0]["detail"]


def test_report_without_results_dir(capsys, tmp_path):
    rc, out, err = run_cli(capsys, "report", "--results", tmp_path / "nothing_here")
    assert rc == 1
    assert "nothing_here" in err and "Traceback" not in err


# -- the installed entry points -----------------------------------------------------------------


def test_console_script_and_module_entry_points():
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    script = Path(sys.executable).with_name("sparsekit")
    if not script.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    done = subprocess.run([str(script), "backends", "--json"], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert {"numpy", "cpu"} <= {r["name"] for r in json.loads(done.stdout)}

    done = subprocess.run([sys.executable, "-m", "sparsekit", "run", "no_such_kernel"], capture_output=True,
                          text=True, timeout=60, env=env)
    assert done.returncode == 2  # main()'s status reaches the shell
    assert "no_such_kernel" in done.stderr and "Traceback" not in done.stderr


# -- help, exit codes, calibrate / report / recipe wiring ------------------------------------------


def test_run_help_lists_kernels_recipes_and_exit_codes(capsys):
    rc, out, _ = run_cli(capsys, "run", "--help")
    assert rc == 0
    for name in sparsekit.kernels():
        assert name in out
    from sparsekit.cli import _recipes

    for name in _recipes():
        assert name in out
    for line in ("130", "crashed", "--timeout", "--in-process", "--force", "--output"):
        assert line in out
    for cmd in ("backends", "calibrate", "report"):
        rc, out, _ = run_cli(capsys, cmd, "--help")
        assert rc == 0 and "exit status" in out


def test_report_html_options_reach_report_main(capsys, monkeypatch, tmp_path):
    from sparsekit import report

    seen = []
    monkeypatch.setattr(report, "main", lambda results, **kw: seen.append((results, kw)) or 0)
    assert run_cli(capsys, "report", "--results", tmp_path, "--no-html")[0] == 0
    assert run_cli(capsys, "report", "--results", tmp_path, "--html", tmp_path / "h", "--json")[0] == 0
    assert run_cli(capsys, "report", "--results", tmp_path)[0] == 0
    assert seen[0][1] == {"machine": None, "fmt": "table", "html_dir": None, "all_tables": False}
    assert seen[1][1] == {"machine": None, "fmt": "json", "html_dir": str(tmp_path / "h"), "all_tables": False}
    assert "html_dir" not in seen[2][1]  # report's own default (html/report beside the results)
    rc, _, err = run_cli(capsys, "report", "--html", "x", "--no-html")
    assert rc == 2 and "not allowed" in err


def test_calibrate_options_reach_run_cli(capsys, monkeypatch, tmp_path):
    calibrate = pytest.importorskip("sparsekit.calibrate")
    seen = []
    monkeypatch.setattr(calibrate, "run_cli", lambda args: seen.append(args) or 0)
    rc, _, err = run_cli(capsys, "calibrate", "--backend", "numpy", "--results", tmp_path, "--quick", "--json")
    assert rc == 0, err
    assert seen[0].backend == "numpy" and seen[0].quick and seen[0].json and seen[0].results == str(tmp_path)


def test_roofline_column_from_the_saved_calibration(capsys, monkeypatch, tmp_path):
    calibrate = pytest.importorskip("sparsekit.calibrate")
    monkeypatch.chdir(tmp_path)  # calibrate.load() reads ./results/<machine>/
    argv = ("run", "spmm", "--backend", "numpy", "--shape", "64x64x8", "--sparsity", "0.5", "--repeat", "1")
    rc, data, _ = run_json(capsys, *argv)
    assert rc == 0 and data["rows"][0]["roofline"] is None  # no calibration yet
    rc, out, err = run_cli(capsys, *argv, "--no-progress")
    assert "sparsekit calibrate" in err and "roofline" not in out.splitlines()[0]

    # a calibration from before per-level bandwidths: DRAM only, so this cache-resident problem gets none
    calibrate.save({"backends": {"numpy": {"gemm_gflops": 50.0, "triad_gbps": 10.0}}}, "results")
    rc, data, err = run_json(capsys, *argv)
    assert rc == 0 and data["rows"][0]["roofline"] is None
    # levels measured: the problem (about 30 KB) is held against the L1d level's bandwidth, not DRAM's
    calibrate.save({"backends": {"numpy": {"gemm_gflops": 50.0}}, "limits": {
        "gemm_gflops": 50.0, "levels": [{"name": "L1d", "capacity": 64 << 10, "read_gbps": 40.0},
                                        {"name": "DRAM", "capacity": None, "read_gbps": 10.0}]}}, "results")
    rc, data, _ = run_json(capsys, *argv)
    assert rc == 0
    r = data["rows"][0]
    flops, nbytes = r["gflops"] * 1e9 * r["time_s"], r["gbps"] * 1e9 * r["time_s"]
    p = sparsekit.make_problem("spmm", m=64, k=64, n=8, sparsity=0.5, dtype="float32", seed=0)
    assert flops == pytest.approx(2 * sparsekit.ops(p).effective)  # FLOPs = 2 x effective MACs
    assert nbytes < 64 << 10
    expected = max(flops / 50e9, nbytes / 40e9) / r["time_s"]
    assert r["roofline"] == pytest.approx(expected)
    rc, out, _ = run_cli(capsys, *argv, "--no-progress")
    assert "roofline" in out.splitlines()[0]


class _FakeRecipe:
    name = "fake_recipe"
    help = "a test double"

    def __init__(self, failed):
        self.failed = failed
        self.calls = []

    def run(self, backends, *, seed, repeat, progress, quick):
        from sparsekit.workloads import WorkloadResult

        self.calls.append((backends, seed, repeat, quick))
        return WorkloadResult(self.name, tables=[("Fake", ["a", "b"], [[1, 2]])], data={"x": [1, 2]},
                              notes=["a note"], failed=self.failed)


@pytest.mark.parametrize("failed", [False, True])
def test_recipe_wiring(capsys, monkeypatch, failed):
    workloads = pytest.importorskip("sparsekit.workloads")
    recipe = _FakeRecipe(failed)
    monkeypatch.setitem(workloads.RECIPES, recipe.name, recipe)
    rc, data, _ = run_json(capsys, "run", recipe.name, "--backend", "numpy", "--quick", "--seed", "3", "--repeat", "2")
    assert rc == (1 if failed else 0)
    assert data == {"workload": "fake_recipe", "data": {"x": [1, 2]}, "notes": ["a note"]}
    assert recipe.calls == [(["numpy"], 3, 2, True)]
    from sparsekit import schemas

    schemas.validate(data, schemas.load("workload"))
    rc, out, err = run_cli(capsys, "run", recipe.name, "--backend", "numpy")
    assert "Fake" in out and "a note" in err
    rc, out, err = run_cli(capsys, "run", recipe.name, "--backend", "nope")
    assert rc == 2 and "nope" in err


def test_in_process_sweep_api_matches_isolated(tmp_path):
    """sweep(isolate=True) from Python: same rows (statuses, shapes, errors) as in-process."""
    grid = [{"m": 24, "k": 24, "n": 4, "sparsity": s} for s in (0.5, 0.9)]
    a, _, na = sweep.sweep("spmm", ["numpy"], grid, repeat=1, progress=False)
    b, _, nb = sweep.sweep("spmm", ["numpy"], grid, repeat=1, progress=False, isolate=True, timeout=60)
    assert [(r.status, r.shape, r.sparsity) for r in a] == [(r.status, r.shape, r.sparsity) for r in b]
    assert [r.error for r in a] == pytest.approx([r.error for r in b], rel=1e-3, abs=1e-9)
    assert na == nb == []


def test_register_only_backend_is_named_when_isolated(fake_backends):
    rows, _, notes = sweep.sweep("spmm", [FAKE_WRONG], [{"m": 8, "k": 8, "n": 2, "sparsity": 0.5}], repeat=1,
                                 progress=False, isolate=True, timeout=60)
    assert rows == [] and len(notes) == 1 and "--in-process" in notes[0] and FAKE_WRONG in notes[0]


def test_explain_shows_the_inspectors_choice(capsys):
    rec = {r.name: r for r in sparsekit.backends()}.get("cpu")
    if rec is None or not rec.available:
        pytest.skip(f"cpu backend unavailable: {rec.reason if rec else 'not registered'}")
    argv = ("run", "spmm", "--backend", "numpy,cpu", "--shape", "64x64x8", "--sparsity", "0.5", "--repeat", "1")
    rc, data, _ = run_json(capsys, *argv)
    by = {r["backend"]: r for r in data["rows"]}
    assert by["numpy"]["strategy"] is None and by["cpu"]["strategy"].startswith("spmm.")
    rc, out, _ = run_cli(capsys, *argv, "--explain", "--no-progress")
    assert rc == 0 and "inspector's choice" in out and by["cpu"]["strategy"].split(":")[0] in out

"""``tools/gpu_check``: the offline GPU verification kit, proven as far as a machine without a GPU allows.

* Its parts, in this interpreter: the grid is made of the asv suite's own points (so
  the report pairs them), the result file is one asv and ``sparsekit report`` read,
  the entry-point shim declares exactly pyproject's backends, the phase budget fits
  the 8 minutes, pytest's summary is parsed, the conformance command sits in one place.
* The dry run: the kit as the GPU host runs it -- Python 3.12, a copy of the working
  tree as the device tool sends it (tracked and untracked-not-ignored files: no
  egg-info, no .venv), no virtualenv, no user site-packages, the network unreachable
  (``unshare -rn``, else a socket-blocking ``sitecustomize``), the stand-in ``cupy`` of
  ``tests/standin_cupy`` (CuPy installed, no device) -- must run every phase up to the
  GPU, exit 3 ("no usable GPU") and leave an output folder the device tool returns
  whole. A second run is stopped with SIGTERM mid-grid and must keep what it measured.

The 3.12 interpreter needs numpy, scipy, pytest, hypothesis, tabulate and tqdm (what
the GPU image has): installed from PyPI into a throwaway ``--target`` folder, cached in
``${XDG_CACHE_HOME:-~/.cache}/sparsekit/gpu-kit-py312/`` (the network is used only
for that, before the sandbox). No Python 3.12 here: those tests are skipped, saying so.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sparsekit
from sparsekit import report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from gpu_check import cli, environment, grid, results  # noqa: E402

#: what the GPU image brings that the kit and its tests import (torch, numba, matplotlib left out)
PY312_PACKAGES = ("numpy", "scipy", "pytest", "hypothesis", "tabulate", "tqdm")
#: the device tool returns at most 8 files, no more than 2 folders down, names of these characters
MAX_FILES, MAX_DEPTH, NAME = 8, 2, re.compile(r"^[A-Za-z0-9._-]+$")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


# -- the grid and the asv files --------------------------------------------------------------------

def test_grid_points_are_the_suites_own():
    grid.check_grid()  # every value is in its benchmark's params
    full = grid.full_params()
    pts = grid.points("cupy")
    assert pts[0]["class"] == "DenseMM"  # dense baselines first: whatever a deadline cuts can be paired
    dense_shapes = {p["params"][1] for p in pts if p["class"] == "DenseMM"}
    for p in pts:
        if "shape" in p["param_names"] and p["class"] not in ("DenseMM", "KWTA"):
            assert p["params"][p["param_names"].index("shape")] in dense_shapes, p
    own = [p for p in pts if p["force"]]
    assert {p["force"]["force_csr"] for p in own} == {"csr_spmm", "csr_spmv"} and not any(p["asv"] for p in own)
    assert not any(p["force"] for p in grid.points("torch"))
    assert set(full) == {f"{m}.{c}" for m, c, _, _ in grid.GRID}


def _point(cls, method, names, params, status="ok", seconds=1e-4, error=1e-7, **kw):
    return {"benchmark": cls, "method": method, "version": "1", "param_names": names, "params": params,
            "status": status, "seconds": seconds, "error": error, "number": 10, "repeats": 5,
            "started_at": 1_700_000_000_000, "duration": 0.5, "asv": True, **kw}


def _write_synthetic(tmp_path) -> Path:
    spmm = ["backend", "pattern", "shape", "sparsity"]
    pts = [_point("bench_dense_mm.DenseMM", "time_dense_mm", ["backend", "shape"], ["cupy", "2048x2048x64"], seconds=1e-3)]
    pts += [_point("bench_spmm.SpMM", "time_spmm", spmm, ["cupy", "uniform", "2048x2048x64", s], seconds=t,
                   samples=[t * 0.9, t, t * 1.1, t * 1.2] if s == 0.5 else [])
            for s, t in ((0.5, 4e-3), (0.9, 1.2e-3), (0.99, 2e-4))]
    pts.append(_point("bench_spmm.SpMM", "time_spmm", spmm, ["torch", "uniform", "2048x2048x64", 0.5], status="n/a",
                      reason="no"))
    pts.append(_point("bench_spmm.SpMM", "time_spmm", spmm, ["torch", "uniform", "2048x2048x64", 0.9], status="deadline"))
    pts.append(_point("bench_spmm.SpMM", "time_spmm", spmm, ["cupy", "uniform", "2048x2048x64", 0.5], asv=False,
                      force={"force_csr": "csr_spmm"}, seconds=9.0))
    run = {"machine": "test-gpu", "cpu": "CPU", "commit": COMMIT, "date_ms": 1_700_000_000_000,
           "env_name": "gpu_check-py3.12", "python": "3.12"}
    for p in pts:
        results.append_point(tmp_path / results.POINTS_FILE, p)
    with open(tmp_path / results.POINTS_FILE, "a") as f:
        f.write('{"cut short by a ki')  # a line a kill interrupted is skipped
    return results.write_asv(tmp_path / "results", run, results.read_points(tmp_path / results.POINTS_FILE),
                             grid.full_params())


def test_asv_file_pairs_in_the_report(tmp_path):
    path = _write_synthetic(tmp_path)
    assert path.name == f"{COMMIT[:8]}-gpu_check-py3.12.json"
    data = json.loads(path.read_text())
    ref = json.loads(next((ROOT / "results").glob("*/297f64c2-*.json")).read_text())
    assert data["result_columns"] == ref["result_columns"] and data["version"] == ref["version"] == 2
    assert set(ref["params"]) <= set(data["params"])
    row = data["results"]["bench_spmm.SpMM.time_spmm"]
    assert row[1] == [["'cupy'", "'torch'"], ["'uniform'"], ["'2048x2048x64'"], ["0.5", "0.9", "0.99"]]
    assert row[0][:3] == [4e-3, 1.2e-3, 2e-4]  # the forced own-kernel point is not the asv point
    assert math.isnan(row[0][3]) and row[0][4] is None and row[0][5] is None  # n/a, not reached, never listed
    assert data["results"]["bench_spmm.SpMM.track_error"][0][:3] == [1e-7] * 3
    columns = dict(zip(data["result_columns"], row))
    assert columns["stats_q_25"][0] < 4e-3 < columns["stats_q_75"][0] and columns["stats_q_25"][1] is None
    assert columns["samples"][0] == [4e-3 * 0.9, 4e-3, 4e-3 * 1.1, 4e-3 * 1.2] and columns["stats_number"][0] == 10
    rows = [r for r in report.summarize(tmp_path / "results") if r["backend"] == "cupy"]
    assert len(rows) == 1 and rows[0]["dense_time"] == 1e-3 and rows[0]["speedups"] == [0.25, 1e-3 / 1.2e-3, 5.0]
    assert json.loads((path.parent / "machine.json").read_text())["machine"] == "test-gpu"


def test_asv_reads_the_result_file(tmp_path):
    asv_results = pytest.importorskip("asv.results", reason="asv (the bench extra) is not installed")
    path = _write_synthetic(tmp_path)
    r = asv_results.Results.load(str(path), "test-gpu")
    bench = json.loads((ROOT / "results" / "benchmarks.json").read_text())
    keys = r.get_result_keys(bench)
    assert "bench_spmm.SpMM.time_spmm" in keys and "bench_dense_mm.DenseMM.time_dense_mm" in keys
    full = r.get_result_value("bench_spmm.SpMM.time_spmm", bench["bench_spmm.SpMM.time_spmm"]["params"])
    assert sorted(v for v in full if v is not None and not math.isnan(v)) == [2e-4, 1.2e-3, 4e-3]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_asv_publish_graphs_the_gpu_machine(tmp_path):
    """The folder the kit writes, committed beside the others, is published by asv like any machine's."""
    pytest.importorskip("asv", reason="asv (the bench extra) is not installed")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{ROOT}", str(clone)], check=True, timeout=300)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True, check=True).stdout.strip()
    # asv graphs main: the clone's checked-out branch becomes main whatever it was called
    subprocess.run(["git", "checkout", "-q", "-B", "main"], cwd=clone, capture_output=True, check=True)
    points = tmp_path / "pts"
    points.mkdir()
    made = _write_synthetic(points)
    data = json.loads(made.read_text())
    data["commit_hash"] = head
    (clone / "results" / "test-gpu").mkdir()
    (clone / "results" / "test-gpu" / results.result_filename(head, "gpu_check-py3.12")).write_text(json.dumps(data))
    shutil.copy(made.parent / "machine.json", clone / "results" / "test-gpu" / "machine.json")
    out = subprocess.run([sys.executable, "-m", "asv", "publish"], cwd=clone, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "test-gpu" in json.loads((clone / "html" / "index.json").read_text())["params"]["machine"]
    graph = next((clone / "html" / "graphs").rglob("machine-test-gpu/**/bench_spmm.SpMM.time_spmm.json"))
    (_, plotted), = json.loads(graph.read_text())  # one commit: cupy's measured sparsities, plotted
    assert sorted(v for v in plotted if v is not None) == [2e-4, 1.2e-3, 4e-3]


def test_cusparse_vs_own_table(tmp_path):
    _write_synthetic(tmp_path)
    rows = cli.cusparse_vs_own(results.read_points(tmp_path / results.POINTS_FILE))
    by = {r["sparsity"]: r for r in rows}
    assert by[0.5]["own_over_cusparse"] == 9.0 / 4e-3 and "own" not in by[0.9]


# -- registration without an install, the one conformance command -------------------------------------

def test_dist_info_shim_declares_pyprojects_entry_points(tmp_path):
    from importlib.metadata import PathDistribution

    info = environment.write_dist_info(tmp_path)
    dist = PathDistribution(info)
    assert dist.metadata["Name"] == "sparsekit"
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    want = {(g, k, v) for g, eps in project["entry-points"].items() for k, v in eps.items()}
    want |= {("console_scripts", k, v) for k, v in project["scripts"].items()}
    assert {(ep.group, ep.name, ep.value) for ep in dist.entry_points} == want
    assert ("sparsekit.backends", "cupy", "sparsekit_cupy:info") in want


def test_conformance_command_is_in_one_place():
    cmd = environment.conformance_command("cupy", ("tests/test_cupy.py",), timeout_per_test=60)
    suite = list(environment.CONFORMANCE_SUITE)
    assert cmd[:3] == [sys.executable, "-m", "pytest"] and cmd[3:3 + len(suite)] == suite
    assert suite == ["-p", "sparsekit.testing.plugin", "--pyargs", "sparsekit.testing"]
    assert cmd[cmd.index("--backend") + 1] == "cupy" and "--timeout=60" in cmd
    for test in environment.HOST_ONLY_TESTS:  # the deselected tests exist (a rename would run them on the GPU)
        assert f"def {test.split('::')[1]}(" in (ROOT / test.split("::")[0]).read_text()
        assert test in cmd
    assert "--deselect" not in environment.conformance_command("torch")
    kit = "\n".join(p.read_text() for p in (ROOT / "tools" / "gpu_check").glob("*.py"))
    assert kit.count("--pyargs") == 1  # CONFORMANCE_SUITE, nowhere else


def test_commit_and_date():
    assert environment.commit_and_date(COMMIT, "1700000000") == (COMMIT, 1_700_000_000_000, "given")
    with pytest.raises(ValueError, match="not a git commit"):
        environment.commit_and_date("HEAD; rm -rf /", None)
    with pytest.raises(ValueError, match="seconds since the epoch"):
        environment.commit_and_date(COMMIT, "yesterday")
    assert environment.machine_slug("NVIDIA H200") == "nvidia-h200"


# -- the budget ------------------------------------------------------------------------------------------

def test_default_phases_fit_eight_minutes():
    phases = cli.plan_phases(["cupy", "torch"], ["cupy", "torch"], cli.BUDGET_S, {})
    assert [p.name for p in phases] == ["setup", "conformance:cupy", "conformance:torch", "grid:cupy", "grid:torch",
                                        "bandwidth", "calibrate", "report"]
    assert sum(p.cap for p in phases) == cli.BUDGET_S <= 8 * 60 - 30  # and half a minute to spare
    assert all(0 < p.floor <= p.cap for p in phases)
    half = cli.plan_phases(["cupy"], ["cupy"], cli.BUDGET_S / 2, {"grid": 7})
    assert {p.name: p.cap for p in half}["grid:cupy"] == 7 and {p.name: p.cap for p in half}["setup"] == 22.5
    with pytest.raises(ValueError, match="no phase warp"):
        cli.plan_phases(["cupy"], ["cupy"], 100, {"warp": 3})


def test_a_phase_past_its_deadline_is_stopped_and_its_output_kept(tmp_path):
    run = cli.Run(tmp_path, tmp_path, budget=60)
    run.grace = 1.0
    polite = "import time\nprint('measured one', flush=True)\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    print('stopped', flush=True)"
    t0 = time.monotonic()
    rc, ended, text = run.run_child([sys.executable, "-c", polite], dict(os.environ), time.time() + 1.5)
    assert ended == "deadline" and rc == 0 and "measured one" in text and "stopped" in text
    stubborn = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('busy', flush=True)\ntime.sleep(60)"
    rc, ended, text = run.run_child([sys.executable, "-c", stubborn], dict(os.environ), time.time() + 1.0)
    assert ended == "deadline" and rc == -signal.SIGKILL and "busy" in text
    assert time.monotonic() - t0 < 20
    assert "measured one" in (tmp_path / cli.LOG_FILE).read_text()


@pytest.mark.parametrize("gpu, statuses, conformance, signum, expected", [
    (True, ["ok", "ok"], {"failed": 0}, None, cli.EXIT_OK),
    (True, ["ok", "deadline"], {"failed": 0}, None, cli.EXIT_INCOMPLETE),
    (True, ["ok", "ok"], {"failed": 2}, None, cli.EXIT_FAILED),
    (True, ["failed", "deadline"], {}, None, cli.EXIT_FAILED),
    (False, ["ok", "deadline"], {}, None, cli.EXIT_NO_GPU),
    (True, ["ok", "interrupted"], {}, signal.SIGTERM, 128 + signal.SIGTERM),
])
def test_exit_status(tmp_path, gpu, statuses, conformance, signum, expected):
    run = cli.Run(tmp_path, tmp_path, budget=60)
    run.summary = {"gpu": {"name": "X"} if gpu else None, "conformance": {"cupy": conformance}}
    run.stop_signal = signum
    phases = [cli.Phase(f"p{i}", 10, 1, status=s) for i, s in enumerate(statuses)]
    assert cli._finish(run, phases) == expected
    assert json.loads((tmp_path / cli.SUMMARY_FILE).read_text())["exit_status"] == expected


def test_pytest_counts():
    text = ("....s\nFAILED tests/test_x.py::test_a - AssertionError\nERROR tests/test_y.py::test_b\n"
            "= 3 failed, 120 passed, 40 skipped, 1 error in 41.20s =\n")
    counts = cli.pytest_counts(text)
    assert counts["failed"] == 3 and counts["passed"] == 120 and counts["skipped"] == 40 and counts["error"] == 1
    assert counts["failures"] == ["FAILED tests/test_x.py::test_a - AssertionError", "ERROR tests/test_y.py::test_b"]
    assert cli.pytest_counts("!!! KeyboardInterrupt !!!\n")["failures"] == []


# -- the dry run: Python 3.12, offline, a copy of the tree, the stand-in cupy --------------------------------

def _python312() -> str | None:
    """A real Python 3.12 (pyenv's shims are skipped: they pick a version by the current folder)."""
    for cand in [os.environ.get("SPARSEKIT_PY312"), *sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3")),
                 *sorted(Path("/root/.pyenv/versions").glob("3.12*/bin/python3")), shutil.which("python3.12")]:
        if not cand or "/shims/" in str(cand) or not os.access(str(cand), os.X_OK):
            continue
        probe = subprocess.run([str(cand), "-c", "import sys; assert sys.version_info[:2] == (3, 12)"],
                               capture_output=True, timeout=60)
        if probe.returncode == 0:
            return str(cand)
    return None


PY312 = _python312()
needs_py312 = pytest.mark.skipif(PY312 is None, reason="no Python 3.12 interpreter here (the GPU image's version): "
                                 "set SPARSEKIT_PY312 to one to run the kit's dry run")


@pytest.fixture(scope="module")
def py312_site():
    """A --target folder with the GPU image's pure-Python-side packages for 3.12, made once and cached."""
    version = subprocess.run([PY312, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True,
                             check=True).stdout.strip()
    key = hashlib.sha256(json.dumps([version, PY312_PACKAGES]).encode()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sparsekit" / "gpu-kit-py312"
    site = base / key
    base.mkdir(parents=True, exist_ok=True)
    with open(base / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once share one install
        if not (site / ".complete").exists():
            shutil.rmtree(site, ignore_errors=True)
            out = subprocess.run([PY312, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile",
                                  "--only-binary=:all:", "--target", str(site), *PY312_PACKAGES],
                                 capture_output=True, text=True, timeout=900)
            if out.returncode != 0:
                pytest.fail(f"installing {PY312_PACKAGES} for {PY312} into {site} failed:\n{out.stderr[-3000:]}")
            (site / ".complete").write_text(version)
    return site


def _tree_copy(dest: Path) -> Path:
    """What the device tool sends: tracked and untracked-not-ignored files (no .venv, no egg-info)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _sandbox(tmp_path: Path, site: Path) -> tuple[list[str], dict]:
    """(command prefix, environment): a clean environment, no user site, no network."""
    tree = _tree_copy(tmp_path / "tree")
    home = tmp_path / "home"
    home.mkdir()
    paths = [str(site), str(tree / "tests" / "standin_cupy")]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "PYTHONNOUSERSITE": "1", "PIP_NO_INDEX": "1",
           "CI": "1", "SPARSEKIT_STANDIN_CUPY": "nodevice"}
    if shutil.which("nvcc"):  # as on the GPU image (the kit leaves the compile-only tests out there anyway)
        env["PATH"] = f"{Path(shutil.which('nvcc')).parent}:{env['PATH']}"
    prefix = []
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        prefix = [unshare, "-rn"]
    else:  # no network namespace here: refuse sockets from inside every Python of the run
        blocker = tmp_path / "offline"
        blocker.mkdir()
        (blocker / "sitecustomize.py").write_text(
            "import socket\n"
            "def _refuse(*a, **k):\n    raise OSError('network disabled for the gpu_check dry run')\n"
            "socket.socket.connect = _refuse\nsocket.create_connection = _refuse\n")
        paths.insert(0, str(blocker))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return prefix, env


def _kit(prefix: list[str], out: Path, *args) -> list[str]:
    """The GPU host's command (``python3 -s tools/gpu_check``) in the sandbox, labelled for the tests."""
    return [*prefix, PY312, "-s", "tools/gpu_check", "--out", str(out), "--commit", COMMIT, "--machine", "dryrun", *args]


def _files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file()]


def _assert_returnable(out: Path) -> None:
    """The device tool brings back at most 8 files, 2 folders down, 16 MiB each, plain names."""
    files = _files(out)
    assert 0 < len(files) <= MAX_FILES, [str(p.relative_to(out)) for p in files]
    for p in files:
        rel = p.relative_to(out)
        assert len(rel.parts) - 1 <= MAX_DEPTH and all(NAME.match(part) for part in rel.parts), rel
        assert p.stat().st_size <= 16 << 20, rel


@needs_py312
def test_dry_run_offline_under_python312(tmp_path, py312_site):
    prefix, env = _sandbox(tmp_path, py312_site)
    tree, out = tmp_path / "tree", tmp_path / "out"
    offline = subprocess.run([*prefix, PY312, "-s", "-c", "import socket; socket.create_connection(('pypi.org', 443), 3)"],
                             env=env, capture_output=True, text=True, timeout=60)
    assert offline.returncode != 0, "the sandbox reached the network"
    t0 = time.monotonic()
    proc = subprocess.run(_kit(prefix, out, "--commit-date", "1700000000", "--grid-backends", "cupy,torch,numpy",
                               "--phase-seconds", "grid:numpy=12"), cwd=tree, env=env, capture_output=True, text=True,
                          timeout=600)
    took = time.monotonic() - t0
    log = (out / cli.LOG_FILE).read_text() if (out / cli.LOG_FILE).exists() else ""
    assert proc.returncode == cli.EXIT_NO_GPU, proc.stdout[-4000:] + proc.stderr[-2000:] + log[-4000:]
    _assert_returnable(out)
    summary = json.loads((out / cli.SUMMARY_FILE).read_text())
    assert summary["python"].startswith("3.12") and summary["exit_status"] == cli.EXIT_NO_GPU
    phases = {p["name"]: p for p in summary["phases"]}
    assert all(phases[n]["status"] == "ok" for n in ("setup", "conformance:cupy", "conformance:torch", "grid:cupy",
                                                     "grid:torch", "report")), phases
    assert phases["bandwidth"]["status"] == phases["calibrate"]["status"] == "skipped"
    # registered from pyproject without an install; cupy found (the stand-in) but without a device
    cupy = summary["backends"]["cupy"]
    assert not cupy["available"] and "cudaErrorNoDevice" in cupy["reason"]
    assert summary["backends"]["numpy"]["available"] and "missing Python package(s): torch" in summary["backends"]["torch"]["reason"]
    # the conformance run: pytest under 3.12, cupy's conformance skipped with the reason, its host tests passing
    conf = summary["conformance"]["cupy"]
    assert conf["passed"] > 30 and conf["skipped"] > 100 and not conf.get("failed") and not conf["failures"], conf
    suite = " ".join(environment.CONFORMANCE_SUITE)
    assert f"$ {PY312} -m pytest {suite} tests/test_cupy.py --backend cupy" in log
    assert "no tests ran" not in log
    # the grid: cupy and torch n/a with the reason, numpy measured until its deadline; the asv file has them
    pts = results.read_points(out / results.POINTS_FILE)
    assert {p["status"] for p in pts if p["params"][0] == "cupy"} == {"n/a"}
    assert all("cudaErrorNoDevice" in p["reason"] for p in pts if p["params"][0] == "cupy")
    measured = [p for p in pts if p["params"][0] == "numpy" and p["status"] == "ok"]
    assert measured and measured[0]["benchmark"] == "bench_dense_mm.DenseMM" and all(p["check_ok"] for p in measured)
    asv = json.loads((out / "results" / "dryrun" / f"{COMMIT[:8]}-gpu_check-py3.12.json").read_text())
    dense = asv["results"]["bench_dense_mm.DenseMM.time_dense_mm"]
    assert "'numpy'" in dense[1][0] and any(isinstance(v, float) and v > 0 for v in dense[0])
    assert asv["commit_hash"] == COMMIT and asv["date"] == 1_700_000_000_000
    versions = (out / "results" / "dryrun" / "versions.txt").read_text()
    assert versions.startswith("# python 3.12") and "numpy==" in versions and "# device: no usable CUDA device" in versions
    assert not (tree / "results" / "dryrun").exists()  # only --out is written
    print(f"dry run: {took:.0f} s")


@needs_py312
def test_sigterm_keeps_what_was_measured(tmp_path, py312_site):
    prefix, env = _sandbox(tmp_path, py312_site)
    tree, out = tmp_path / "tree", tmp_path / "out"
    proc = subprocess.Popen(_kit(prefix, out, "--conformance-backends", "", "--grid-backends", "numpy"),
                            cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.get("status") == "ok" for p in results.read_points(out / results.POINTS_FILE)):
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the kit ended before it measured a point"
        os.kill(proc.pid, signal.SIGTERM)
        text, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, text[-3000:]
    _assert_returnable(out)
    summary = json.loads((out / cli.SUMMARY_FILE).read_text())
    states = {p["name"]: p["status"] for p in summary["phases"]}
    assert states["grid:numpy"] == "interrupted" and states["report"] == "interrupted"
    ok = [p for p in results.read_points(out / results.POINTS_FILE) if p.get("status") == "ok"]
    asv = json.loads(next((out / "results" / "dryrun").glob("*-gpu_check-*.json")).read_text())
    kept = [v for row in asv["results"].values() if row[0] for v in row[0] if isinstance(v, float) and v > 0]
    assert ok and kept, "the points measured before SIGTERM are in the asv file"

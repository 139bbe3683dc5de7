"""Where the kit runs: the in-repo backends registered without an install, and the child environment.

The backends register through the entry-point group ``sparsekit.backends``, which
``pip install -e .`` writes into the git-ignored ``*.egg-info``, absent from a copy of
the working tree. Instead of installing (no network, no setuptools needed), the kit
writes a minimal ``sparsekit-<version>.dist-info`` (``METADATA`` and ``entry_points.txt``
copied from pyproject.toml's tables) into a scratch folder and puts it first on
``PYTHONPATH`` with the repository root and ``backends/``: ``importlib.metadata`` then
finds the entry points in the kit's every child process (pytest, the probes, the
grid) exactly as it finds an installed distribution's.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"

#: the pytest arguments that collect the conformance suite -- the one place the kit names it: the
#: suite shipped in the package with its plugin loaded (``-p``: the shim's ``pytest11`` entry point
#: loads it too; a plugin loaded twice is loaded once)
CONFORMANCE_SUITE = ("-p", "sparsekit.testing.plugin", "--pyargs", "sparsekit.testing")
#: tests that check the host, not the GPU (CI runs them): left out on the GPU host to save its minutes
HOST_ONLY_TESTS = ("tests/test_cupy.py::test_sources_compile_with_nvcc", "tests/test_cupy.py::test_every_gather_tile_compiles")


def conformance_command(backend: str, extra: tuple = (), timeout_per_test: int | None = None) -> list[str]:
    """pytest over the conformance suite (and ``extra`` test files) for one backend."""
    cmd = [sys.executable, "-m", "pytest", *CONFORMANCE_SUITE, *extra, "--backend", backend, "-q", "-rfE",
           "-p", "no:cacheprovider"]
    for test in HOST_ONLY_TESTS:
        if test.split("::")[0] in extra:
            cmd += ["--deselect", test]
    if timeout_per_test:
        cmd += ["-p", "pytest_timeout", f"--timeout={timeout_per_test}"]
    return cmd


def _toml_tables(text: str) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10: the kit targets the GPU image's 3.12
        raise RuntimeError("gpu_check needs Python 3.11+ (tomllib) to read pyproject.toml") from None
    return tomllib.loads(text)


def entry_points_text(pyproject: Path = ROOT / "pyproject.toml") -> tuple[str, str]:
    """(version, entry_points.txt) of the project as pyproject.toml declares them."""
    project = _toml_tables(pyproject.read_text(encoding="utf-8"))["project"]
    lines = []
    if project.get("scripts"):
        lines += ["[console_scripts]"] + [f"{k} = {v}" for k, v in project["scripts"].items()] + [""]
    for group, eps in sorted(project.get("entry-points", {}).items()):
        lines += [f"[{group}]"] + [f"{k} = {v}" for k, v in eps.items()] + [""]
    return str(project["version"]), "\n".join(lines)


def write_dist_info(folder: Path) -> Path:
    """A ``sparsekit-<version>.dist-info`` in ``folder`` declaring the project's entry points."""
    version, eps = entry_points_text()
    info = Path(folder) / f"sparsekit-{version}.dist-info"
    if info.exists():
        shutil.rmtree(info)
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: sparsekit\nVersion: {version}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(eps, encoding="utf-8")
    return info


def child_env(scratch: Path, base=None) -> dict:
    """The environment of every child: the dist-info shim, the repository and backends/ first on
    PYTHONPATH, no user site-packages, unbuffered output, thread pools pinned to the cores (as
    benchmarks/__init__.py does), the probe caches in the scratch folder (a fresh host each time)."""
    env = dict(os.environ if base is None else base)
    paths = [str(scratch / "site"), str(ROOT), str(ROOT / "backends"), str(TOOLS)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    cores = str(len(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else str(os.cpu_count() or 1)
    env.update(PYTHONPATH=os.pathsep.join(paths), PYTHONNOUSERSITE="1", PYTHONUNBUFFERED="1",
               PYTHONDONTWRITEBYTECODE="1", XDG_CACHE_HOME=str(scratch / "cache"))
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env.setdefault(var, cores)
    return env


def prepare(scratch: Path) -> dict:
    """Write the shim into ``scratch/site`` and return the child environment."""
    write_dist_info(Path(scratch) / "site")
    return child_env(Path(scratch))


# -- what the result files are labelled with ----------------------------------------------------

def _git(*args) -> str | None:
    if shutil.which("git") is None:
        return None
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def commit_and_date(commit: str | None, date: str | None) -> tuple[str | None, int, str]:
    """(commit hash or None, commit date in ms since the epoch, where they came from). The GPU host
    has no git: pass ``--commit`` (``--print-command`` writes it in); the date then defaults to now."""
    commit = commit or os.environ.get("SPARSEKIT_COMMIT") or None
    source = "given"
    if commit is None:
        commit, source = _git("rev-parse", "HEAD"), "git"
    if commit is not None and not re.fullmatch(r"[0-9a-fA-F]{7,40}", commit):
        raise ValueError(f"--commit {commit!r} is not a git commit hash")
    if date is None and commit is not None:
        date = _git("log", "-1", "--format=%ct", commit)
    try:
        date_ms = int(float(date) * 1000) if date is not None else int(time.time() * 1000)
    except ValueError:
        raise ValueError(f"--commit-date {date!r} is not seconds since the epoch") from None
    return commit, date_ms, source if commit else "unknown"


def machine_slug(text: str) -> str:
    """``NVIDIA H200`` -> ``nvidia-h200``: a results folder name."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "gpu"


def cpu_model() -> str:
    """The host CPU's model name (sparsekit's public host module)."""
    from sparsekit.host import cpu_model

    return cpu_model()

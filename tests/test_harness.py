"""The test harness itself (``sparsekit.testing.plugin``, loaded by tests/conftest.py): backend
selection and expected-failure data.

- ``--backend`` / ``SPARSEKIT_TEST_BACKEND`` pick the backends; an unknown name is a
  usage error, an unavailable backend is skipped with its reason, never dropped.
- The expected-failure files are data that must not rot: well formed, for real
  backends, and every entry still matching a test of the full suite.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import XFAIL_DIR
from sparsekit.registry import backend_names
from sparsekit.testing.plugin import XFAIL_REPORT_VAR, load_xfail_dir

TESTS = Path(__file__).parent


def test_files_name_registered_backends():
    for path in XFAIL_DIR.glob("*"):
        assert path.suffix == ".txt", f"{path.name}: expected-failure files are <backend>.txt"
        assert path.stem in backend_names(), f"{path.name}: no backend {path.stem!r} is registered"


def test_loader_parses_entries(tmp_path):
    (tmp_path / "cpu.txt").write_text(
        "# a comment line\n\ntest_grid[cpu-spmm-bsr  # BSR not yet threaded\n  test_x[cpu-lif #  trailing spaces  \n"
    )
    assert load_xfail_dir(tmp_path) == {
        "cpu": [("test_grid[cpu-spmm-bsr", "BSR not yet threaded", 3), ("test_x[cpu-lif", "trailing spaces", 4)]
    }
    (tmp_path / "numpy.txt").write_text("test_grid[numpy-spmm\n")
    with pytest.raises(pytest.UsageError, match="numpy.txt:1"):
        load_xfail_dir(tmp_path)


def test_no_stale_entries(tmp_path):
    """Collect the whole suite for every registered backend and list entries that match nothing."""
    report = tmp_path / "xfail.json"
    env = dict(os.environ, **{XFAIL_REPORT_VAR: str(report)})
    env.pop("SPARSEKIT_TEST_BACKEND", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", str(TESTS)],
        capture_output=True, text=True, env=env, cwd=TESTS.parent, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(report.read_text())
    assert set(data["backends"]) == set(backend_names())
    assert data["collected"] > 100
    assert data["stale"] == [], "stale entries in tests/xfail/:\n" + "\n".join(data["stale"])


def _pytest(args, env_extra=None, pre=""):
    """Run pytest on this suite in a child interpreter (optionally after some setup code)."""
    env = dict(os.environ)
    env.pop("SPARSEKIT_TEST_BACKEND", None)
    env.update(env_extra or {})
    code = f"import sys, pytest\n{pre}\nsys.exit(pytest.main({list(args)!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=TESTS.parent, timeout=300)


COMMON = ["-p", "no:cacheprovider", "-q", "-rs", str(TESTS / "test_conformance.py"), "-k", "test_info_matches_registry"]


def test_backend_option_selects():
    proc = _pytest(COMMON + ["--backend", "numpy"])
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "1 passed" in proc.stdout, proc.stdout[-2000:]


def test_backend_env_var_selects():
    proc = _pytest(COMMON + ["--collect-only"], {"SPARSEKIT_TEST_BACKEND": "cpu"})
    assert "test_info_matches_registry[cpu]" in proc.stdout
    assert "test_info_matches_registry[numpy]" not in proc.stdout


def test_unknown_backend_is_a_usage_error():
    proc = _pytest(COMMON + ["--backend", "numpy,nosuchbackend"])
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR
    assert "nosuchbackend" in proc.stderr


def test_unavailable_backend_skips_with_reason():
    pre = (
        "import sparsekit.registry as r\n"
        "r.register('ghost', lambda: {'name': 'ghost', 'device': 'none', 'kernels': {}, "
        "'requires': ('sparsekit_no_such_module_qq',), 'load': 'x:y'})"
    )
    proc = _pytest(COMMON, pre=pre)  # default: every registered backend, ghost included
    out = proc.stdout
    assert proc.returncode == 0, out[-2000:]
    # other backends may be unavailable on this host too (cupy without a GPU): count ghost's skip
    ghost_skips = [ln for ln in out.splitlines() if ln.startswith("SKIPPED") and "'ghost' unavailable" in ln]
    assert len(ghost_skips) == 1 and "sparsekit_no_such_module_qq" in ghost_skips[0], out[-2000:]


def test_stale_entry_fails_a_whole_suite_run(tmp_path):
    """A known-failures entry that matches nothing fails the run (and is named); a real gap is xfailed strictly."""
    xf = tmp_path / "known.txt"
    xf.write_text("test_no_such_test_anywhere  # long fixed\n")
    args = ["-p", "no:cacheprovider", "-q", str(TESTS / "test_conformance.py") + "::test_info_matches_registry",
            "--backend", "numpy", "--xfails-file", str(xf)]
    proc = _pytest(args)  # a single test id: a partial run, so the stale entry is only reported
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "stale expected-failure entries" in proc.stdout and "long fixed" in proc.stdout
    whole = _pytest(["-p", "no:cacheprovider", "-q", "-k", "passes", str(TESTS / "harness_suite" / "sample_suite.py"),
                     "--backend", "numpy", "--xfails-file", str(xf)])
    assert whole.returncode == 0, whole.stdout[-2000:]  # -k: a partial selection, reported only
    whole = _pytest(["-p", "no:cacheprovider", "-q", str(TESTS / "harness_suite" / "sample_suite.py"), "--backend", "numpy",
                     "--xfails-file", str(xf)], {"SPARSEKIT_HARNESS_CHILD": "0"})
    assert whole.returncode == pytest.ExitCode.TESTS_FAILED, whole.stdout[-2000:]
    assert "long fixed" in whole.stdout


def test_xfails_file_marks_strictly(tmp_path):
    xf = tmp_path / "known.txt"
    xf.write_text("test_always_fails  # a known gap\ntest_always_passes  # claimed gap that is not one\n")
    proc = _pytest(["-p", "no:cacheprovider", "-q", "-rxX", str(TESTS / "harness_suite" / "sample_suite.py"), "--backend", "numpy",
                    "--xfails-file", str(xf)], {"SPARSEKIT_HARNESS_CHILD": "1"})
    out = proc.stdout
    assert "XFAIL" in out and "known.txt:1: a known gap" in out, out[-2000:]
    # strict: the test that passes although listed fails the run
    assert "XPASS(strict)" in out or "[XPASS(strict)]" in out, out[-2000:]
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED


class _Counting:
    """The numpy backend behind a counter, with a drawn-problem budget (``conformance_examples``)
    and optionally a wrong answer, to check the budget and that a capped run still fails."""

    def __init__(self, examples, wrong=False):
        import sparsekit

        self._numpy = sparsekit.backend("numpy")
        self.name, self.conformance_examples, self.wrong, self.prepared = "numpy", examples, wrong, 0

    def info(self):
        return self._numpy.info()

    def prepare(self, problem):
        import sparsekit

        self.prepared += 1
        plan = self._numpy.prepare(problem)
        if not self.wrong:
            return plan
        return sparsekit.Plan(lambda: None, fetch=lambda _: np.asarray(sparsekit.reference(problem)) + 1.0)


def test_drawn_problem_budget_caps_examples_and_still_fails_a_wrong_backend():
    from sparsekit.testing import conformance

    # Two budgets in one process (as one pytest run serves Lava's 30 and this 7): each gets
    # its own Hypothesis test, and each caps its own count.
    for budget in (7, 4):
        be = _Counting(examples=budget)
        conformance._drawn_property(be.conformance_examples)(be, "spmm")
        assert 1 <= be.prepared <= budget
    with pytest.raises(AssertionError):
        conformance._drawn_property(7)(_Counting(examples=7, wrong=True), "spmm")

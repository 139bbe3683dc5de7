"""Test configuration: which backends the conformance suite runs, xfail data, Hypothesis.

Backends under test (array-api-tests style)::

    pytest                              # every registered backend (sparsekit.backends())
    pytest --backend cpu                # one
    pytest --backend numpy,cpu          # several
    SPARSEKIT_TEST_BACKEND=cupy pytest  # the same through the environment

A selected backend that cannot run here is never dropped silently: its tests are
collected and skipped with the reason (missing package, no device, load failure).
A name nobody registers is a usage error.

Known gaps are data: ``tests/xfail/<backend>.txt``, one entry per line::

    test_conformance.py::test_grid[cpu-spmm-bsr   # reason the gap exists

Every test of that backend whose node id contains the substring is marked
``xfail(strict=True)`` (so a fixed gap fails until its entry is removed). Entries
that match no collected test are reported at the end of the run, and
``test_harness.py`` fails on them.

Hypothesis profiles: ``default`` (local runs), ``ci`` (fewer examples, selected when
``CI`` is set), ``thorough`` (many examples); ``HYPOTHESIS_PROFILE`` overrides.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import sparsekit
from sparsekit.registry import backend_names

XFAIL_DIR = Path(__file__).parent / "xfail"
ENV_VAR = "SPARSEKIT_TEST_BACKEND"
XFAIL_REPORT_VAR = "SPARSEKIT_XFAIL_REPORT"

# -- Hypothesis ------------------------------------------------------------------
_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("default", max_examples=100, **_common)
settings.register_profile("ci", max_examples=50, print_blob=True, **_common)
settings.register_profile("thorough", max_examples=500, **_common)
_profile = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI", "").lower() not in ("", "0", "false") else "default")
settings.load_profile(_profile)


# -- backend selection -------------------------------------------------------------
def pytest_addoption(parser):
    parser.addoption(
        "--backend",
        action="store",
        default=None,
        metavar="NAME[,NAME]",
        help=f"backend(s) the conformance suite runs against (default: ${ENV_VAR}, else every registered backend)",
    )


def selected_backends(config) -> list[str]:
    spec = config.getoption("--backend") or os.environ.get(ENV_VAR, "")
    registered = backend_names()
    if not spec.strip():
        return registered
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in registered]
    if unknown:
        raise pytest.UsageError(
            f"--backend/{ENV_VAR}: unknown backend(s) {', '.join(unknown)}; registered: {', '.join(registered) or 'none'}"
        )
    return list(dict.fromkeys(names))


def pytest_configure(config):
    config._sparsekit_backends = selected_backends(config)
    config._sparsekit_xfails = load_xfail_files()
    config._sparsekit_xfail_hits = {}


def pytest_report_header(config):
    lines = [f"hypothesis profile: {_profile}"]
    for rec in sparsekit.backends():
        if rec.name in config._sparsekit_backends:
            state = "available" if rec.available else f"UNAVAILABLE ({rec.reason})"
            lines.append(f"sparsekit backend {rec.name}: {state}")
    return lines


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        names = metafunc.config._sparsekit_backends
        metafunc.parametrize("backend", names, ids=names, indirect=True, scope="session")


@pytest.fixture(scope="session")
def backend(request):
    """The backend instance under test; tests of an unavailable one are skipped with why."""
    name = request.param
    try:
        return sparsekit.backend(name)
    except sparsekit.BackendUnavailable as e:
        pytest.skip(f"backend {name!r} unavailable: {e.reason}")


# -- expected failures as data -------------------------------------------------------
def load_xfail_files(directory: Path = XFAIL_DIR) -> dict[str, list[tuple[str, str, int]]]:
    """backend -> [(node-id substring, reason, line number)] from ``<backend>.txt`` files."""
    out: dict[str, list[tuple[str, str, int]]] = {}
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("*.txt")):
        entries = []
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            text, _, reason = line.partition("#")
            text = text.strip()
            if not text:
                continue
            if not reason.strip():
                raise pytest.UsageError(f"{path}:{lineno}: an expected failure needs a reason after '#'")
            entries.append((text, reason.strip(), lineno))
        out[path.stem] = entries
    return out


def _backend_of(item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("backend") if callspec is not None else None


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselection, so hits count the whole collection
def pytest_collection_modifyitems(config, items):
    xfails = config._sparsekit_xfails
    hits = config._sparsekit_xfail_hits
    for item in items:
        name = _backend_of(item)
        for substring, reason, lineno in xfails.get(name, ()):
            if substring in item.nodeid:
                item.add_marker(pytest.mark.xfail(reason=f"tests/xfail/{name}.txt:{lineno}: {reason}", strict=True))
                hits[(name, substring)] = hits.get((name, substring), 0) + 1
    report = os.environ.get(XFAIL_REPORT_VAR)
    if report:  # test_harness.py collects the whole suite in a subprocess and reads this
        Path(report).write_text(json.dumps({
            "backends": config._sparsekit_backends,
            "collected": len(items),
            "stale": stale_xfail_entries(config),
        }))


def stale_xfail_entries(config) -> list[str]:
    """Entries of the selected backends' files that matched no collected test."""
    stale = []
    for name in config._sparsekit_backends:
        for substring, reason, lineno in config._sparsekit_xfails.get(name, ()):
            if (name, substring) not in config._sparsekit_xfail_hits:
                stale.append(f"tests/xfail/{name}.txt:{lineno}: {substring!r} ({reason})")
    return stale


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    stale = stale_xfail_entries(config)
    if stale:
        terminalreporter.section("stale expected-failure entries (matched no collected test)", yellow=True)
        for line in stale:
            terminalreporter.line(line)
        terminalreporter.line("(remove fixed gaps from tests/xfail/; a partial run may also leave entries unmatched)")

"""The pytest plugin behind the conformance suite: backend selection, known failures, Hypothesis profiles.

Run the shipped suite against a backend from its own repository (as array-api-tests
and NetworkX let an implementation do)::

    pytest --pyargs sparsekit.testing --backend NAME [--xfails-file FILE]

Backends under test::

    --backend cpu                # one
    --backend numpy,cpu          # several
    SPARSEKIT_TEST_BACKEND=cupy  # the same through the environment
    (neither)                    # every registered backend

A selected backend that cannot run here is never dropped silently: its tests are
collected and skipped with the reason (missing package, no device, load failure).
A name nobody registers is a usage error.

Known gaps are data: a known-failures file, one entry per line::

    test_grid[mybackend-spmm-bsr   # the reason the gap exists (required)

Every test of the selected backend(s) whose node id contains the substring is marked
``xfail(strict=True)``, so a fixed gap fails until its entry is removed.
``--xfails-file FILE`` (repeatable) applies to every selected backend;
``--xfails-dir DIR`` holds one ``<backend>.txt`` per backend (sparsekit's own
``tests/xfail``). Entries that match no collected test are *stale*: they are listed
at the end, and fail the run when the whole suite was collected (no ``-k``/``-m``
selection, no single test ids), so a known-failures file cannot rot.

Hypothesis profiles: ``default`` (local runs), ``ci`` (fewer examples, selected when
``CI`` is set), ``thorough`` (many examples); ``HYPOTHESIS_PROFILE`` overrides.

Installed sparsekit registers this module as a pytest plugin (entry point ``pytest11``,
named ``sparsekit.testing.plugin``), so ``--backend`` exists before ``--pyargs`` is
resolved; from a source tree without an install, add ``-p sparsekit.testing.plugin``.
sparsekit's own ``tests/conftest.py`` loads the same plugin, so the project's tests run
through the same machinery. In other projects' test runs it stays out of the way: it
only parametrizes tests that use *its* ``backend`` fixture, and only then loads its
Hypothesis profile.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ENV_VAR = "SPARSEKIT_TEST_BACKEND"
#: a JSON summary of the collection (backends, count, stale entries) is written here when set
XFAIL_REPORT_VAR = "SPARSEKIT_XFAIL_REPORT"


def _hypothesis_profile() -> str:
    from hypothesis import HealthCheck, settings

    common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.register_profile("default", max_examples=100, **common)
    settings.register_profile("ci", max_examples=50, print_blob=True, **common)
    settings.register_profile("thorough", max_examples=500, **common)
    profile = os.environ.get("HYPOTHESIS_PROFILE") or (
        "ci" if os.environ.get("CI", "").lower() not in ("", "0", "false") else "default")
    settings.load_profile(profile)
    return profile


def pytest_addoption(parser):
    group = parser.getgroup("sparsekit", "sparsekit conformance suite")
    group.addoption("--backend", action="store", default=None, metavar="NAME[,NAME]",
                    help=f"backend(s) under test (default: ${ENV_VAR}, else every registered backend)")
    group.addoption("--xfails-file", action="append", default=[], metavar="FILE",
                    help="known failures of the selected backend(s): 'node-id substring  # reason' per line")
    group.addoption("--xfails-dir", action="store", default=None, metavar="DIR",
                    help="a folder of <backend>.txt known-failures files, one per backend")


def selected_backends(config) -> list[str]:
    from sparsekit.registry import backend_names

    spec = config.getoption("--backend") or os.environ.get(ENV_VAR, "")
    registered = backend_names()
    if not spec.strip():
        return registered
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in registered]
    if unknown:
        raise pytest.UsageError(
            f"--backend/{ENV_VAR}: unknown backend(s) {', '.join(unknown)}; registered: {', '.join(registered) or 'none'}")
    return list(dict.fromkeys(names))


# -- known failures as data --------------------------------------------------------------

def parse_xfail_file(path: Path) -> list[tuple[str, str, int]]:
    """[(node-id substring, reason, line number)] of one file; a missing reason is a usage error."""
    entries = []
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise pytest.UsageError(f"known-failures file {path}: {e}") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        body, _, reason = line.partition("#")
        body = body.strip()
        if not body:
            continue
        if not reason.strip():
            raise pytest.UsageError(f"{path}:{lineno}: an expected failure needs a reason after '#'")
        entries.append((body, reason.strip(), lineno))
    return entries


def load_xfail_dir(directory: Path) -> dict[str, list[tuple[str, str, int]]]:
    """backend -> entries, from the ``<backend>.txt`` files of ``directory``."""
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    return {path.stem: parse_xfail_file(path) for path in sorted(directory.glob("*.txt"))}


def _xfail_sources(config, backends) -> dict[str, list[tuple[str, str, int, str]]]:
    """backend -> [(substring, reason, line, file)] for the selected backends."""
    out: dict[str, list] = {name: [] for name in backends}
    directory = config.getoption("--xfails-dir")
    if directory:
        for name, entries in load_xfail_dir(Path(directory)).items():
            if name in out:
                out[name] += [(s, r, n, str(Path(directory) / f"{name}.txt")) for s, r, n in entries]
    for path in config.getoption("--xfails-file") or ():
        entries = parse_xfail_file(Path(path))
        for name in backends:
            out[name] += [(s, r, n, str(path)) for s, r, n in entries]
    return out


# -- hooks ----------------------------------------------------------------------------------

def pytest_configure(config):
    config.addinivalue_line("markers", "slow: larger problems (deselect with -m 'not slow')")
    config._sparsekit_profile = None  # loaded when a conformance test is collected
    config._sparsekit_backends = selected_backends(config)
    config._sparsekit_xfails = _xfail_sources(config, config._sparsekit_backends)
    config._sparsekit_xfail_hits = set()


def pytest_report_header(config):
    import sparsekit

    if not (config.getoption("--backend") or os.environ.get(ENV_VAR)):
        return []
    lines = []
    for rec in sparsekit.backends():
        if rec.name in config._sparsekit_backends:
            state = "available" if rec.available else f"UNAVAILABLE ({rec.reason})"
            lines.append(f"sparsekit backend {rec.name}: {state}")
    return lines


def _uses_our_fixture(metafunc) -> bool:
    """The test asks for *this plugin's* ``backend`` fixture (another project's own fixture
    of that name shadows ours and is left alone)."""
    defs = getattr(metafunc, "_arg2fixturedefs", {}).get("backend") or ()
    return bool(defs) and getattr(getattr(defs[-1], "func", None), "__module__", None) == __name__


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames and _uses_our_fixture(metafunc):
        config = metafunc.config
        if config._sparsekit_profile is None:
            config._sparsekit_profile = _hypothesis_profile()
        names = config._sparsekit_backends
        metafunc.parametrize("backend", names, ids=names, indirect=True, scope="session")


@pytest.fixture(scope="session")
def backend(request):
    """The backend instance under test; tests of an unavailable one are skipped with why."""
    import sparsekit

    name = request.param
    try:
        return sparsekit.backend(name)
    except sparsekit.BackendUnavailable as e:
        pytest.skip(f"backend {name!r} unavailable: {e.reason}")



def _backend_of(item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("backend") if callspec is not None else None


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselection, so hits count the whole collection
def pytest_collection_modifyitems(config, items):
    xfails = config._sparsekit_xfails
    for item in items:
        name = _backend_of(item)
        for substring, reason, lineno, source in xfails.get(name, ()):
            if substring in item.nodeid:
                item.add_marker(pytest.mark.xfail(reason=f"{source}:{lineno}: {reason}", strict=True))
                config._sparsekit_xfail_hits.add((name, source, lineno))
    report = os.environ.get(XFAIL_REPORT_VAR)
    if report:
        Path(report).write_text(json.dumps({"backends": config._sparsekit_backends, "collected": len(items),
                                            "stale": stale_xfail_entries(config)}))


def stale_xfail_entries(config) -> list[str]:
    """Entries for the selected backends that matched no collected test."""
    return [f"{source}:{lineno}: {substring!r} ({reason}) [{name}]"
            for name, entries in config._sparsekit_xfails.items()
            for substring, reason, lineno, source in entries
            if (name, source, lineno) not in config._sparsekit_xfail_hits]


def _whole_suite_collected(config) -> bool:
    """No -k/-m selection and no single test ids: a stale entry then really matches nothing."""
    if config.getoption("keyword", "") or config.getoption("markexpr", ""):
        return False
    return not any("::" in str(arg) for arg in config.args)


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if _whole_suite_collected(config) and stale_xfail_entries(config) and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if config._sparsekit_profile is not None:
        terminalreporter.write_line(f"sparsekit conformance: hypothesis profile {config._sparsekit_profile}")
    stale = stale_xfail_entries(config)
    if stale:
        fails = _whole_suite_collected(config)
        terminalreporter.section("stale expected-failure entries (matched no collected test)", red=fails, yellow=not fails)
        for line in stale:
            terminalreporter.line(line)
        terminalreporter.line("(remove fixed gaps from the known-failures file; they fail the run when the whole "
                              "suite is collected)" if fails else "(a partial run: not counted as a failure)")

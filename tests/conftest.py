"""sparsekit's own test configuration: the shipped conformance plugin, with this repository's
known-failures files (``tests/xfail/<backend>.txt``) as the default ``--xfails-dir``.

Backends under test (array-api-tests style)::

    pytest                              # every registered backend (sparsekit.backends())
    pytest --backend cpu                # one
    pytest --backend numpy,cpu          # several
    SPARSEKIT_TEST_BACKEND=cupy pytest  # the same through the environment

See ``sparsekit.testing.plugin`` for the known-failures rules (reasons required,
strict, stale entries fail a whole-suite run) and the Hypothesis profiles.
"""
from __future__ import annotations

import signal
from pathlib import Path

import pytest

pytest_plugins = ["sparsekit.testing.plugin"]

# Several tests send SIGINT (Ctrl-C) to a process they start and check that it stops cleanly.
# A shell that starts a job in the background without job control (`make test &`, nohup, some
# CI runners) hands it SIGINT *ignored*, and an ignored signal stays ignored across exec, so
# every child would ignore the test's Ctrl-C. Caught (not ignored) here, SIGINT is back to its
# default in each child at exec, as under an interactive shell; pytest itself stops on Ctrl-C.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

XFAIL_DIR = Path(__file__).parent / "xfail"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    if not config.getoption("--xfails-dir"):
        config.option.xfails_dir = str(XFAIL_DIR)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    # every test here runs under the suite's Hypothesis profile (no deadline on a loaded host),
    # not only the conformance tests the plugin loads it for
    from sparsekit.testing.plugin import _hypothesis_profile

    if session.config._sparsekit_profile is None:
        session.config._sparsekit_profile = _hypothesis_profile()

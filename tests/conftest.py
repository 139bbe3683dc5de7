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

from pathlib import Path

import pytest

pytest_plugins = ["sparsekit.testing.plugin"]

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

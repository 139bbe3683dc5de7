"""The out-of-tree example backend (examples/sparsekit-scipy) passes the conformance suite that
ships in the wheel, run the way its own repository would run it: from its folder, with
``pytest --pyargs sparsekit.testing --backend scipy --xfails-file xfails.txt``."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sparsekit

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sparsekit-scipy"


def test_example_backend_passes_the_shipped_suite():
    if "scipy" not in {r.name for r in sparsekit.backends()}:
        pytest.skip("examples/sparsekit-scipy is not installed here (make venv installs it)")
    env = dict(os.environ, HYPOTHESIS_PROFILE="ci")
    env.pop("SPARSEKIT_TEST_BACKEND", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "sparsekit.testing", "--backend", "scipy",
                           "--xfails-file", "xfails.txt", "-q", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, cwd=EXAMPLE, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", proc.stdout).group(1))
    assert passed >= 100, proc.stdout[-2000:]  # spmm in three formats, dense_mm, sparse_sparse: not all skipped

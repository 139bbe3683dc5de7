"""The core stays import-light: listing backends imports no backend's heavy library.

Each check runs in a fresh interpreter (this process has long since imported
everything) and reports which of the heavy modules ended up in ``sys.modules``.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path


import sparsekit

#: GPU/neuromorphic stacks and peers (DESIGN.md), plus Numba: the cpu backend's
#: info() promises to be readable without it (backends/sparsekit_cpu/__init__.py)
HEAVY = ("cupy", "pyopencl", "lava", "torch", "numba", "jax", "tensorflow")

PROBE = textwrap.dedent(
    """
    import json, sys
    {body}
    heavy = {heavy!r}
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
    print("\\nSPARSEKIT-PROBE " + json.dumps(loaded))
    """
)


def run_probe(body: str) -> list[str]:
    code = PROBE.format(body=textwrap.dedent(body), heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(sparsekit.__file__).parents[1])
    assert proc.returncode == 0, proc.stderr
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("SPARSEKIT-PROBE ")][-1]
    return json.loads(line.split(" ", 1)[1])


def test_probe_detects_a_heavy_import():
    """The probe itself works: a module imported in the child is reported (json stands in)."""
    code = PROBE.format(body="import numba" if _have("numba") else "", heavy=HEAVY + ("json",))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    loaded = json.loads(proc.stdout.strip().splitlines()[-1].split(" ", 1)[1])
    assert "json" in loaded
    if _have("numba"):
        assert "numba" in loaded


def _have(mod: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(mod) is not None


def test_import_sparsekit_is_light():
    assert run_probe("import sparsekit") == []


def test_listing_backends_is_light():
    loaded = run_probe(
        """
        import sparsekit
        recs = sparsekit.backends()
        assert {"numpy", "cpu"} <= {r.name for r in recs}, recs
        for r in recs:
            str(r)
        """
    )
    assert loaded == [], f"sparsekit.backends() imported {loaded}"


def test_make_problem_and_reference_are_light():
    loaded = run_probe(
        """
        import sparsekit
        for k in sparsekit.kernels():
            p = sparsekit.make_problem(k, **sparsekit.get_kernel(k).small_params())
            sparsekit.reference(p); sparsekit.ops(p); sparsekit.compulsory_bytes(p)
        """
    )
    assert loaded == []


def test_cli_backends_is_light():
    body = """
        import runpy
        sys.argv = ["sparsekit", "backends"]
        try:
            runpy.run_module("sparsekit", run_name="__main__", alter_sys=True)
        except SystemExit as e:
            assert e.code in (0, None), e.code
        """
    loaded = run_probe(body)
    assert loaded == [], f"`python -m sparsekit backends` imported {loaded}"


def test_cli_backends_lists_every_backend():
    proc = subprocess.run([sys.executable, "-m", "sparsekit", "backends", "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    listed = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(listed) == {r.name for r in sparsekit.backends()}
    for name, entry in listed.items():
        assert isinstance(entry["available"], bool)
        assert entry["available"] or entry["reason"], f"{name}: unavailable without a reason"
    assert listed["numpy"]["available"]

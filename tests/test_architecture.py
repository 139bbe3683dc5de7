"""The shape of the code: no import circles, the core never imports a backend, backends use
only sparsekit's public modules, every registered backend is on the asv backend axis.

Imports are read from the source (``ast``), every ``import`` statement wherever it stands
(a function-level import is still a dependency), and resolved to the project's own files.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"sparsekit": ROOT / "sparsekit"} | {p.name: p for p in sorted((ROOT / "backends").glob("sparsekit_*"))}


def _module_files() -> dict[str, Path]:
    """dotted module name -> file, for sparsekit and the in-repo backend packages."""
    out = {}
    for pkg, base in PACKAGES.items():
        for path in base.rglob("*.py"):
            rel = path.relative_to(base).with_suffix("")
            parts = [pkg, *rel.parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict) -> set[str]:
    """Project modules ``name`` imports (resolved: ``from a import b`` is a.b when that is a module)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules:  # a.b.attr -> a.b
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _module_files()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_reader_sees_a_circle():
    """The check itself works: a two-module circle is found, a chain is not."""
    assert circles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert circles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    modules = _module_files()
    assert "sparsekit.kernels.base" in import_graph()["sparsekit.kernels.spmm"]
    assert "sparsekit.registry" in _imports("sparsekit.kernels", modules["sparsekit.kernels"], modules)


def test_no_import_circles():
    found = circles(import_graph())
    assert found == [], "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_core_never_imports_a_backend():
    graph = import_graph()
    for mod, deps in graph.items():
        if mod.startswith("sparsekit.") or mod == "sparsekit":
            bad = sorted(d for d in deps if not d.startswith("sparsekit.") and d != "sparsekit")
            assert not bad, f"{mod} imports backend module(s) {bad}"


def test_backends_use_only_public_sparsekit_modules():
    """A third-party backend can rely on nothing else: neither can ours."""
    private = re.compile(r"(^|\.)_[a-z]")
    for mod, deps in import_graph().items():
        if mod.startswith("sparsekit_"):
            bad = sorted(d for d in deps if d.startswith("sparsekit") and not d.startswith("sparsekit_") and private.search(d))
            assert not bad, f"{mod} imports private sparsekit module(s) {bad}"


def test_asv_backend_axis_covers_every_registered_backend():
    """benchmarks/common.BACKENDS is fixed (never what is installed), so it must name every backend
    this project registers: the in-repo ones (pyproject.toml) and the example out-of-tree one."""
    import tomllib

    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["sparsekit.backends"])
    example = ROOT / "examples" / "sparsekit-scipy" / "pyproject.toml"
    if example.exists():
        declared |= set(tomllib.loads(example.read_text())["project"]["entry-points"]["sparsekit.backends"])
    code = "import benchmarks.common as c, json; print(json.dumps(c.BACKENDS))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    import json

    axis = json.loads(proc.stdout)
    assert declared <= set(axis), f"registered but not benchmarked: {sorted(declared - set(axis))}"
    assert len(axis) == len(set(axis))
    import sparsekit

    installed = {r.name for r in sparsekit.backends() if r.source != "register()"}
    assert installed <= set(axis) | {"relu"}, f"installed backends missing from the asv axis: {sorted(installed - set(axis))}"


def test_supports_without_prepare_is_refused_at_class_creation():
    import sparsekit

    with pytest.raises(TypeError, match="_prepare_spmm"):
        type("Half", (sparsekit.Backend,), {"name": "half", "supports": {"spmm": ("csr",), "dense_mm": ("dense",)},
                                            "_prepare_dense_mm": lambda self, p: None})


def test_duplicate_backend_names_are_warned_about(tmp_path):
    """Two distributions registering one name: the first is kept, and a warning names both."""
    for dist, target in (("aaa_dist", "numpy_twin_a"), ("zzz_dist", "numpy_twin_b")):
        d = tmp_path / f"{dist}-1.0.dist-info"
        d.mkdir()
        (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (d / "entry_points.txt").write_text(f"[sparsekit.backends]\ntwin = {target}:info\n")
    code = ("import warnings, sparsekit\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    rec = [r for r in sparsekit.backends() if r.name == 'twin'][0]\n"
            "print(rec.source); print([str(x.message) for x in w])\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    source, warned = proc.stdout.splitlines()
    assert source == "numpy_twin_a:info"
    assert "numpy_twin_a:info (aaa_dist) is used, numpy_twin_b:info (zzz_dist) is ignored" in warned

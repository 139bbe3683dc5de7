"""Behaviour specific to the ``torch`` backend (the conformance suite checks its results).

Cheap listing (no torch import), device selection, the thread policy, the
reasons given for what torch cannot do, the n=1 SpMV path and the STREAM hook.
Skipped when ``sparsekit_torch`` is not installed; the parts needing torch are
skipped without it.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import sparsekit

sparsekit_torch = pytest.importorskip("sparsekit_torch")
from sparsekit_torch import ENV_VAR, requested_device  # noqa: E402

needs_torch = pytest.mark.skipif(
    not {r.name: r for r in sparsekit.backends()}.get("torch", sparsekit.BackendRecord("torch", False, "", "", {})).available,
    reason="torch backend unavailable here",
)


def test_info_does_not_import_torch():
    code = ("import json, sys, sparsekit_torch; i = sparsekit_torch.info(); "
            "print(json.dumps([i['name'], 'torch' in sys.modules, i['requires']]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    name, imported, requires = json.loads(out.stdout.strip().splitlines()[-1])
    assert name == "torch" and not imported and requires == ["torch"]


@pytest.mark.parametrize("spec, want", [("", ""), ("cpu", "cpu"), ("CUDA", "cuda"), ("cuda:1", "cuda:1")])
def test_requested_device_accepts(monkeypatch, spec, want):
    monkeypatch.setenv(ENV_VAR, spec)
    assert requested_device() == want


@pytest.mark.parametrize("spec", ["gpu", "cpu:0", "cuda:x", "mps"])
def test_bad_device_names_the_variable(monkeypatch, spec):
    monkeypatch.setenv(ENV_VAR, spec)
    with pytest.raises(ValueError, match=ENV_VAR):
        requested_device()
    reason = sparsekit_torch.info()["probe"]()
    assert reason and ENV_VAR in reason


@needs_torch
def test_cuda_requested_without_cuda_is_an_error(monkeypatch):
    import torch

    from sparsekit_torch.backend import select_device

    if torch.cuda.is_available():
        pytest.skip("this host has CUDA")
    monkeypatch.setenv(ENV_VAR, "cuda")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        select_device()


@needs_torch
@pytest.mark.parametrize("env, want", [({"SPARSEKIT_NUM_THREADS": "3"}, 3), ({"OMP_NUM_THREADS": "5"}, 5),
                                       ({"SPARSEKIT_NUM_THREADS": "2", "OMP_NUM_THREADS": "7"}, 2)])
def test_thread_policy(monkeypatch, env, want):
    from sparsekit_torch.backend import thread_count

    for var in ("SPARSEKIT_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert thread_count() == want


@needs_torch
def test_threads_pinned_at_load():
    import torch

    from sparsekit_torch.backend import thread_count

    be = sparsekit.backend("torch")
    if not be.cuda:
        assert torch.get_num_threads() == thread_count() == be.threads()


@needs_torch
def test_nm_and_rectangular_bsr_are_unsupported_with_reasons():
    be = sparsekit.backend("torch")
    p = sparsekit.make_problem("spmm", m=16, k=16, n=4, nm="2:4", format="nm", dtype="float32", seed=0)
    with pytest.raises(sparsekit.Unsupported, match="N:M"):
        be.prepare(p)
    p = sparsekit.make_problem("spmm", m=16, k=16, n=4, sparsity=0.5, pattern="block", blocksize=(2, 8),
                               format="bsr", dtype="float32", seed=0)
    with pytest.raises(sparsekit.Unsupported, match="square blocks"):
        be.prepare(p)
    p = sparsekit.make_problem("lif", n_in=8, n_out=8, steps=4, sparsity=0.5, seed=0)
    with pytest.raises(sparsekit.Unsupported):
        be.prepare(p)


@needs_torch
@pytest.mark.parametrize("fmt", ["csr", "bsr"])
def test_single_column_spmv_path(fmt):
    """n = 1 takes torch.mv; the result must still be the m x 1 product, in place each call."""
    from sparsekit.testing import assert_conforms

    p = sparsekit.make_problem("spmm", m=64, k=48, n=1, sparsity=0.7, format=fmt, dtype="float64", seed=3,
                               **({"pattern": "block", "blocksize": (4, 4)} if fmt == "bsr" else {}))
    y = assert_conforms(sparsekit.backend("torch"), p)
    assert y.shape == (64, 1)


@needs_torch
def test_result_not_a_view_of_the_inputs():
    be = sparsekit.backend("torch")
    p = sparsekit.make_problem("kwta", m=32, n=4, k=32, dtype="float32", seed=0)  # k == m: a copy of x
    with be.prepare(p) as plan:
        plan()
        y = plan.result()
    assert not np.shares_memory(y, p.inputs["x"])


@needs_torch
@pytest.mark.parametrize("kind, value", [("copy", 1.0), ("triad", 7.0)])
def test_stream_hook_computes_stream(kind, value):
    be = sparsekit.backend("torch")
    plan = be.stream(kind, 8 * 1000)
    with plan:
        plan()
        plan()
    a = plan._out  # the device tensor the last call wrote
    assert a.shape == (1000,) and bool((a == value).all())
    with pytest.raises(ValueError, match="STREAM"):
        be.stream("scale", 800)

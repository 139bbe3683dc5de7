"""Backend discovery: listing without heavy imports, unavailable backends with reasons,
lazy loading and caching, and the Backend base class's Unsupported dispatch."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import sparsekit
from sparsekit import Backend, Plan, registry

MISSING_MODULE = "sparsekit_test_no_such_module_zz"


@pytest.fixture
def fakes():
    """Register fake backends for one test; always unregistered afterwards."""
    names = []

    def add(name, info):
        names.append(name)
        registry.register(name, info)

    yield add
    for name in names:
        registry.unregister(name)
    sys.modules.pop("_sparsekit_fake_backend", None)
    registry.reset()


def _info(name, **extra):
    base = {"name": name, "device": "test device", "kernels": {"spmm": ("csr",)}, "dtypes": ("float64",),
            "requires": (), "load": "_sparsekit_fake_backend:FakeBackend"}
    base.update(extra)
    return lambda: base


class FakeBackend(Backend):
    name = "fake"
    supports = {"spmm": ("csr",), "kwta": ("dense",)}
    dtypes = ("float64",)

    def device(self):
        return "a test double"

    def _prepare_spmm(self, p):
        w, x = p.inputs["w"], p.inputs["x"]
        return Plan(lambda: np.asarray(w @ x))

    def _prepare_kwta(self, p):
        raise sparsekit.Unsupported("kwta only with k > 0")  # a data-dependent refusal


@pytest.fixture
def fake_module():
    mod = types.ModuleType("_sparsekit_fake_backend")
    mod.FakeBackend = FakeBackend
    sys.modules[mod.__name__] = mod
    yield mod
    sys.modules.pop(mod.__name__, None)


def test_in_repo_backends_listed():
    records = {r.name: r for r in sparsekit.backends()}
    assert {"numpy", "cpu"} <= set(records)
    for name in ("numpy", "cpu"):
        rec = records[name]
        assert isinstance(rec, sparsekit.BackendRecord)
        assert isinstance(rec.available, bool) and isinstance(rec.reason, str) and isinstance(rec.device, str)
        assert rec.device and rec.device != "?"
        assert set(rec.kernels) == set(sparsekit.kernels()), f"{name} should cover the catalogue"
        assert set(rec.kernels["spmm"]) == {"csr", "bsr", "nm"}
        assert set(rec.dtypes) >= {"float32", "float64"}
        assert rec.source == f"sparsekit_{name}:info"  # found through the entry-point group
        if rec.available:
            assert rec.reason == ""
        else:
            assert rec.reason, "an unavailable backend must say why"
    assert records["numpy"].available, "the loopback backend needs nothing but NumPy"
    assert registry.GROUP == "sparsekit.backends"


def test_missing_requirement(fakes):
    fakes("fake_missing", _info("fake_missing", requires=("numpy", MISSING_MODULE)))
    rec = {r.name: r for r in sparsekit.backends()}["fake_missing"]
    assert not rec.available
    assert MISSING_MODULE in rec.reason and "numpy" not in rec.reason.split(":", 1)[1]
    assert "missing" in str(rec) or "unavailable" in str(rec)
    with pytest.raises(sparsekit.BackendUnavailable) as info:
        sparsekit.backend("fake_missing")
    assert isinstance(info.value, RuntimeError)
    assert info.value.name == "fake_missing" and MISSING_MODULE in info.value.reason
    assert MISSING_MODULE in str(info.value)


def test_info_that_raises_is_listed_unavailable(fakes):
    def broken():
        raise ImportError("libfoo.so: cannot open shared object file")

    fakes("fake_broken", broken)
    records = {r.name: r for r in sparsekit.backends()}
    assert {"numpy", "cpu", "fake_broken"} <= set(records)  # one broken package breaks nothing else
    rec = records["fake_broken"]
    assert not rec.available and "libfoo.so" in rec.reason and "ImportError" in rec.reason
    with pytest.raises(sparsekit.BackendUnavailable, match="libfoo"):
        sparsekit.backend("fake_broken")


def test_probe(fakes):
    fakes("fake_nodevice", _info("fake_nodevice", probe=lambda: "no GPU found"))
    fakes("fake_badprobe", _info("fake_badprobe", probe=lambda: 1 / 0))
    fakes("fake_goodprobe", _info("fake_goodprobe", probe=lambda: None))
    records = {r.name: r for r in sparsekit.backends()}
    assert not records["fake_nodevice"].available and records["fake_nodevice"].reason == "no GPU found"
    assert not records["fake_badprobe"].available and "ZeroDivisionError" in records["fake_badprobe"].reason
    assert records["fake_goodprobe"].available


def test_load_failure_marks_unavailable(fakes):
    fakes("fake_noload", _info("fake_noload", load=f"{MISSING_MODULE}:Backend"))
    assert {r.name: r for r in sparsekit.backends()}["fake_noload"].available  # not known until loaded
    with pytest.raises(sparsekit.BackendUnavailable, match=MISSING_MODULE):
        sparsekit.backend("fake_noload")
    rec = {r.name: r for r in sparsekit.backends()}["fake_noload"]
    assert not rec.available and "failed to load" in rec.reason


def test_loaded_lazily_and_cached(fakes, fake_module):
    fakes("fake", _info("fake"))
    a = sparsekit.backend("fake")
    assert isinstance(a, FakeBackend)
    assert sparsekit.backend("fake") is a
    info = a.info()
    assert isinstance(info, sparsekit.BackendInfo)
    assert info.name == "fake" and info.device == "a test double" and info.dtypes == ("float64",)


def test_register_and_unregister(fakes):
    fakes("fake_tmp", _info("fake_tmp"))
    assert "fake_tmp" in registry.backend_names()
    registry.unregister("fake_tmp")
    assert "fake_tmp" not in registry.backend_names()
    with pytest.raises(sparsekit.UnknownBackendError):
        sparsekit.backend("fake_tmp")


# -- Backend.prepare dispatch --------------------------------------------------------

def test_unsupported_dtype_format_kernel():
    b = FakeBackend()
    ok = sparsekit.make_problem("spmm", m=6, k=5, n=3, sparsity=0.5, dtype="float64")
    with b.prepare(ok) as plan:
        plan()
        assert sparsekit.check(ok, plan.result()).ok

    with pytest.raises(sparsekit.Unsupported) as info:
        b.prepare(sparsekit.make_problem("spmm", m=6, k=5, n=3, sparsity=0.5, dtype="float32"))
    assert "float32" in info.value.reason and "float64" in info.value.reason

    with pytest.raises(sparsekit.Unsupported) as info:
        b.prepare(sparsekit.make_problem("spmm", m=8, k=8, n=3, sparsity=0.5, dtype="float64", format="bsr"))
    assert "bsr" in info.value.reason and "csr" in info.value.reason

    with pytest.raises(sparsekit.Unsupported) as info:
        b.prepare(sparsekit.make_problem("dense_mm", m=2, k=2, n=2, dtype="float64"))
    assert "dense_mm" in info.value.reason

    with pytest.raises(sparsekit.Unsupported, match="k > 0"):
        b.prepare(sparsekit.make_problem("kwta", m=3, n=2, k=0, dtype="float64"))

    with pytest.raises(TypeError, match="Problem"):
        b.prepare({"kernel": "spmm"})


def test_plan_contract():
    calls = []
    plan = Plan(lambda: calls.append(1) or np.arange(3), fetch=lambda out: out * 2, close=lambda: calls.append("closed"))
    with pytest.raises(RuntimeError):
        plan.result()
    plan()
    np.testing.assert_array_equal(plan.result(), [0, 2, 4])
    plan.close()
    plan.close()  # idempotent
    assert calls == [1, "closed"]


@pytest.mark.parametrize("name", ["numpy", "cpu"])
def test_real_backends_refuse_low_precision(name):
    try:
        b = sparsekit.backend(name)
    except sparsekit.BackendUnavailable as e:
        pytest.skip(f"backend {name!r} unavailable: {e.reason}")
    for dtype in ("float16", "bfloat16"):
        if dtype in b.info().dtypes:
            continue
        with pytest.raises(sparsekit.Unsupported, match=dtype):
            b.prepare(sparsekit.make_problem("dense_mm", m=4, k=4, n=2, dtype=dtype))
    if "bfloat16" not in b.info().dtypes:
        with pytest.raises(sparsekit.Unsupported):
            b.prepare(sparsekit.make_problem("spmm", m=4, k=4, n=2, sparsity=0.5, dtype="bfloat16"))

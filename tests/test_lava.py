"""The Lava backends' own promises: the 3.11 shim, the fixed-point rule and its bound,
network lifecycle, exact LIF rasters, metrics. (Conformance: tests/test_conformance.py.)"""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

import sparsekit
from sparsekit_lava import metrics, quant
from sparsekit_lava._compat import mutable_defaults_allowed


def _backend(name):
    try:
        return sparsekit.backend(name)
    except sparsekit.BackendUnavailable as e:
        pytest.skip(f"{name} unavailable: {e.reason}")


# -- the Python 3.11 shim ----------------------------------------------------------------
def test_shim_turns_dataclass_default_into_factory_and_is_scoped():
    @dataclasses.dataclass
    class Inner:
        a: int = 0

    def define():
        @dataclasses.dataclass
        class Outer:
            x: Inner = Inner()

        return Outer

    if sys.version_info >= (3, 11):
        with pytest.raises(ValueError, match="mutable default"):
            define()
    with mutable_defaults_allowed():
        Outer = define()
    o1, o2 = Outer(), Outer()
    assert o1.x == Inner() and o1.x is not o2.x  # a copy per instance
    if sys.version_info >= (3, 11):  # restored afterwards
        with pytest.raises(ValueError, match="mutable default"):
            define()
    with mutable_defaults_allowed(), pytest.raises(ValueError):  # a list default still fails
        @dataclasses.dataclass
        class Bad:
            y: list = []


def test_listing_does_not_import_lava_and_loading_does():
    code = ("import sys, sparsekit; recs = {r.name: r for r in sparsekit.backends()}; "
            "assert 'lava' in recs and 'lava-fixed' in recs; assert 'lava' not in sys.modules, 'listing imported lava'; "
            "print(recs['lava'].available)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


# -- the fixed-point rule ----------------------------------------------------------------
def test_quantisation_rule():
    w = np.array([[0.5, -1.27, 0.0], [0.013, 1.0, -0.26]])
    wq, e = quant.quantise_weights(w)
    assert e == -6  # 1.27 / 2**-6 = 81.3 <= 127, 2**-7 would give 162.6
    assert np.all(wq % 2 == 0) and np.abs(wq).max() <= 254  # Lava's mixed-sign form 2m
    assert np.abs(wq / 2 * 2.0 ** e - w).max() <= 2.0 ** e / 2
    assert quant.exponent(np.zeros(3), 8) == 0


@pytest.mark.parametrize("seed", range(5))
def test_allowance_holds_and_is_not_loose(seed):
    p = sparsekit.make_problem("spmm", m=60, k=200, n=9, sparsity=0.7, seed=seed, dtype="float64")
    w, x = p.inputs["w"], p.inputs["x"]
    err = np.abs(quant.emulate(w, x) - sparsekit.reference(p))
    bound = quant.allowance(w, x, "float64")
    assert np.all(err <= bound)
    assert err.max() > 0.02 * bound.max()  # the bound is of the right order, not vacuous


def test_fixed_check_passes_correct_and_fails_outside_the_bound():
    be = _backend("lava-fixed")
    p = sparsekit.make_problem("spmm", m=40, k=64, n=6, sparsity=0.8, seed=3)
    with be.prepare(p) as plan:
        plan()
        y = plan.result()
    # bit-accurate: the Lava fixed_pt network equals the host emulation of the rule
    np.testing.assert_array_equal(y, quant.emulate(p.inputs["w"], p.inputs["x"]).astype(y.dtype))
    assert sparsekit.check(p, y, backend=be).ok
    assert not sparsekit.check(p, y).ok  # the float tolerance alone would reject it: the allowance matters
    bad = y.copy()
    i, j = np.unravel_index(np.argmax(be.error_allowance(p)), y.shape)
    bad[i, j] += 2 * be.error_allowance(p)[i, j] + 1e-3
    assert not sparsekit.check(p, bad, backend=be).ok


# -- lifecycle ----------------------------------------------------------------------------
def test_stopped_network_never_runs_again_and_one_live_network():
    from sparsekit_lava import _network

    be = _backend("lava")
    p = sparsekit.make_problem("spmm", m=8, k=8, n=3, sparsity=0.5, seed=0)
    plan = be.prepare(p)
    plan()
    assert _network.live_networks() == 1
    plan2 = be.prepare(p)  # compiling a second network stops the first
    assert _network.live_networks() == 1
    with pytest.raises(RuntimeError, match="stopped"):
        plan()
    plan2.close()
    plan.close()
    assert _network.live_networks() == 0


def test_unstopped_network_does_not_hang_the_exit():
    code = ("import sparsekit; p = sparsekit.make_problem('spmm', m=8, k=8, n=3, sparsity=0.5); "
            "plan = sparsekit.backend('lava').prepare(p); plan(); print('left running')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "left running" in out.stdout, out.stderr


# -- float: exact rasters, metrics --------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(sparsity=0.9), dict(sparsity=0.5, rate=0.5), dict(sparsity=0.8, bias=0.05, du=1.0, dv=0.0)])
def test_lif_raster_equals_reference_exactly(kw):
    be = _backend("lava")
    p = sparsekit.make_problem("lif", n_in=30, n_out=25, steps=20, seed=2, dtype="float64", **kw)
    with be.prepare(p) as plan:
        plan()
        np.testing.assert_array_equal(plan.result(), sparsekit.reference(p))


def test_metrics_counts_and_energy_label():
    p = sparsekit.make_problem("spmm", m=10, k=12, n=4, sparsity=0.5, seed=0)
    c = metrics.counts(p)
    w, x = p.inputs["w"], p.inputs["x"]
    assert c.synops == sum(int((w[:, l] != 0).sum()) * int(np.count_nonzero(x[l])) for l in range(12))
    assert c.timesteps == 5 and c.input_spikes == np.count_nonzero(x)
    assert metrics.energy_estimate_j(c) == pytest.approx(c.synops * 23.6e-12)
    assert "estimate" in metrics.ENERGY_SOURCE and "Davies" in metrics.ENERGY_SOURCE
    lif = sparsekit.make_problem("lif", n_in=10, n_out=5, steps=6, sparsity=0.5, seed=0)
    cl = metrics.counts(lif)
    assert cl.neuron_updates == 30 and cl.synops == sparsekit.ops(lif).effective

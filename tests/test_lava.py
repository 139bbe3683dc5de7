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


def _only_live_network():
    from sparsekit_lava import _network

    (net,) = [n for n in _network._live if n.running]
    return net


def _assert_released():
    import multiprocessing

    from sparsekit_lava import _network

    assert _network.live_networks() == 0
    assert multiprocessing.active_children() == [], "a stopped network left processes behind"


def test_dropped_plan_releases_its_network():
    import gc
    import threading

    be = _backend("lava")  # imports Lava, under the shim
    from lava.magma.core.process.process import ProcessServer
    from lava.magma.core.process.variable import VarServer

    p = sparsekit.make_problem("spmm", m=8, k=8, n=3, sparsity=0.5, seed=0)
    plan = be.prepare(p)
    plan()
    del plan  # dropped without close(): the network stops now
    _assert_released()
    plan = be.prepare(p)
    loop = [plan, None]
    loop[1] = loop  # only the cyclic GC can free it
    del plan, loop
    gc.collect()
    _assert_released()
    # and nothing accumulates: Lava's global registries (which hold the weights), the ports' threads
    def held():
        return threading.active_count(), len(ProcessServer().processes), len(VarServer().vars)

    before = held()
    for _ in range(3):
        be.prepare(p)()
    _assert_released()
    assert held() == before


def test_interrupted_call_kills_the_network_instead_of_hanging():
    be = _backend("lava")
    plan = be.prepare(sparsekit.make_problem("spmm", m=8, k=8, n=6, sparsity=0.5, seed=0))
    ext = _only_live_network().extractors[0]
    calls = []

    def receive_then_interrupt():
        calls.append(1)
        if len(calls) == 3:  # mid-call, the network still stepping: as a Ctrl-C lands
            raise KeyboardInterrupt
        return type(ext).receive(ext)

    ext.receive = receive_then_interrupt
    with pytest.raises(KeyboardInterrupt):
        plan()
    _assert_released()
    with pytest.raises(RuntimeError, match="stopped"):
        plan()
    plan.close()


def test_stop_is_bounded_when_a_child_died_or_lava_does_not_answer(monkeypatch):
    import os
    import signal
    import threading
    import time
    import warnings

    from sparsekit_lava import _network

    be = _backend("lava")
    p = sparsekit.make_problem("spmm", m=8, k=8, n=3, sparsity=0.5, seed=0)
    plan = be.prepare(p)
    child = _only_live_network()._children[0]
    os.kill(child.pid, signal.SIGKILL)  # Lava's stop protocol would wait for its answer forever
    deadline = time.monotonic() + 5
    while child.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a dead child is seen: no graceful attempt, no timeout
        plan.close()
    assert time.monotonic() - t0 < 2
    _assert_released()

    monkeypatch.setattr(_network, "STOP_TIMEOUT_S", 0.5)
    plan = be.prepare(p)
    net = _only_live_network()
    stuck = threading.Event()
    net.source.stop = lambda: stuck.wait(30)  # a graceful stop that does not return in time
    try:
        with pytest.warns(RuntimeWarning, match="did not answer within 0.5 s; its processes were killed"):
            plan.close()
        _assert_released()
    finally:
        # Lava's Process.__del__ calls stop() again when the process is collected: without
        # this the stand-in would hold up whichever later test the collector runs in, for 30 s
        stuck.set()
        del net.source.stop


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
    assert c.timesteps == 5 and c.input_spikes == np.count_nonzero(x) and c.graded
    assert metrics.energy_estimate_j(c) == pytest.approx(c.synops * 23.6e-12)
    for label in ("ESTIMATE", "Davies", "Loihi 1", "pre-silicon", "minimum"):
        assert label in metrics.ENERGY_SOURCE
    lif = sparsekit.make_problem("lif", n_in=10, n_out=5, steps=6, sparsity=0.5, seed=0)
    cl = metrics.counts(lif)
    assert cl.neuron_updates == 30 and cl.synops == sparsekit.ops(lif).effective and not cl.graded
    with pytest.raises(ValueError, match="no spike counts for kernel 'kwta'"):
        metrics.counts(sparsekit.make_problem("kwta", m=8, n=2, k=2))


def _hand_counted_lif():
    """2 inputs -> 3 LIF neurons, 4 steps, du=0.5 (the current halves each step), dv=1 (v = u + bias),
    vth=1. Neuron 0 <- input 0 (w=2), neuron 1 <- input 1 (w=0.4), neuron 2 has no synapse.
    Inputs: step 0 input 0, step 1 input 1, step 2 none, step 3 both (never delivered).

    Delivered one step late: step 1 brings input 0's spike, step 2 input 1's. By hand:
      neuron 0: u = v = 0, 2, 1, 0.5  -> fires at step 1 (2 > 1; 1 > 1 is false); active at 1, 2, 3
      neuron 1: u = v = 0, 0, 0.4, 0.2 -> never fires; active at 2, 3
      neuron 2: always at rest          -> inactive at every step
    synops: 2 delivered spikes x fan-out 1 = 2; input spikes delivered: 2; output spikes: 1;
    active updates 3 + 2 = 5, inactive 1 + 2 + 4 = 7 (12 = 4 steps x 3 neurons).
    """
    p = sparsekit.make_problem("lif", n_in=2, n_out=3, steps=4, sparsity=0.5, du=0.5, dv=1.0, vth=1.0, bias=0.0,
                               dtype="float64", seed=0)
    p.inputs["w"] = sp.csr_matrix(np.array([[2.0, 0.0], [0.0, 0.4], [0.0, 0.0]]))
    p.inputs["spikes"] = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    return p


def test_energy_estimate_on_a_hand_counted_network():
    p = _hand_counted_lif()
    c = metrics.counts(p)
    assert (c.synops, c.input_spikes, c.output_spikes) == (2, 2, 1)
    assert (c.neuron_updates_active, c.neuron_updates_inactive, c.timesteps) == (5, 7, 4)
    np.testing.assert_array_equal(sparsekit.reference(p)[:, 0], [0, 1, 0, 0])
    e = metrics.energy_estimate(c)
    # 2 x 23.6 + 5 x 81 + 7 x 52 + 1 x 1.7 = 47.2 + 405 + 364 + 1.7 = 817.9 pJ
    assert e.synops_j == pytest.approx(47.2e-12)
    assert e.neuron_updates_active_j == pytest.approx(405e-12)
    assert e.neuron_updates_inactive_j == pytest.approx(364e-12)
    assert e.output_spikes_j == pytest.approx(1.7e-12)
    assert metrics.energy_estimate_j(c) == pytest.approx(817.9e-12)
    # a graded product, by hand: W = [[1, 0, 2], [0, 3, 0]], X = [[1, 0], [0, 0], [4, 5]]: column nonzeros
    # of W (1, 1, 1) x row nonzeros of X (1, 0, 2) = 3 synops (effective MACs), 3 graded spikes, no neuron
    q = sparsekit.make_problem("spmm", m=2, k=3, n=2, sparsity=0.5, dtype="float64", seed=0)
    q.inputs["w"] = sp.csr_matrix(np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]]))
    q.inputs["x"] = np.array([[1.0, 0.0], [0.0, 0.0], [4.0, 5.0]])
    cq = metrics.counts(q)
    assert (cq.synops, cq.input_spikes, cq.output_spikes, cq.neuron_updates, cq.timesteps) == (3, 3, 0, 0, 3)
    assert cq.graded and metrics.energy_estimate_j(cq) == pytest.approx(3 * 23.6e-12)


def test_hand_counted_network_spikes_as_counted_on_lava():
    """The counts come from the oracle; the Lava run of the same network fires the same spike."""
    be = _backend("lava")
    p = _hand_counted_lif()
    with be.prepare(p) as plan:
        plan()
        raster = plan.result()
    np.testing.assert_array_equal(raster, sparsekit.reference(p))
    assert int(np.count_nonzero(raster)) == metrics.counts(p).output_spikes == 1

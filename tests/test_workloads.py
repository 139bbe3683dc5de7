"""The workloads (sparsekit.workloads): recipes, the autoencoder's training, cache and
inference through the backends, and the selector / DLMC / MoE recipes on small runs.

The autoencoder is trained here at a toy size (seconds); the default size is exercised
by the benchmarks and ``sparsekit run autoencoder``.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import sparsekit
from sparsekit.workloads import RECIPES, Recipe, WorkloadResult
from sparsekit.workloads import _common, autoencoder as ae, dlmc, experts, selector

pytest.importorskip("sklearn")

TINY = ae.Config(hidden=32, sparsities=(0.0, 0.5, 0.9), k_values=(4, 32), epochs=60, finetune_epochs=10)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSEKIT_CACHE_DIR", str(tmp_path / "cache"))


def _available(name):
    return any(r.name == name and r.available for r in sparsekit.backends())


def test_recipes_interface():
    assert set(RECIPES) == {"autoencoder", "selector", "dlmc", "experts"}
    assert not set(RECIPES) & set(sparsekit.kernels())
    for name, r in RECIPES.items():
        assert isinstance(r, Recipe) and r.name == name and r.help


def test_training_is_deterministic_and_learns():
    x_train, x_test, _, _ = ae.load_data()
    assert x_train.shape[0] == x_test.shape[0] == 64 and x_test.shape[1] == 359
    assert 0 <= x_train.min() and x_train.max() <= 1
    a = ae.train_k(TINY, 4, x_train)
    b = ae.train_k(TINY, 4, x_train)
    for s in TINY.sparsities:
        np.testing.assert_array_equal(a[s][0], b[s][0])
        np.testing.assert_array_equal(a[s][1], b[s][1])
    baseline = float(np.mean((x_test - x_train.mean(axis=1, keepdims=True)) ** 2))  # predict the mean image
    assert ae.mse(*a[0.0], x_test, 4) < 0.8 * baseline


def test_pruning_levels_and_biases():
    models = ae.train_k(TINY, 32, ae.load_data()[0])
    for s, (w1, w2) in models.items():
        for w in (w1, w2):
            weights = w[:, :-1]
            assert 1 - np.count_nonzero(weights) / weights.size == pytest.approx(s, abs=1e-3)
            assert np.count_nonzero(w[:, -1]) > 0  # the bias column is never pruned


def test_weights_cache_roundtrip(monkeypatch):
    first = ae.trained_models(TINY)
    files = list(_common.cache_dir().glob("autoencoder-*.npz"))
    assert len(files) == 1
    with np.load(files[0], allow_pickle=False) as f:  # plain arrays, no pickle
        assert len(f.files) == 2 * len(first)

    def no_training(*a, **k):
        raise AssertionError("retrained despite the cache")

    monkeypatch.setattr(ae, "train_k", no_training)
    again = ae.trained_models(TINY)
    for key in first:
        np.testing.assert_array_equal(first[key][0], again[key][0])
    other = ae.Config(**{**TINY.__dict__, "seed": 1})  # a different config is a different key
    with pytest.raises(AssertionError, match="retrained"):
        ae.trained_models(other)


@pytest.mark.parametrize("be_name", ["numpy", "cpu", "opencl", "torch"])
def test_inference_through_backend_matches_numpy(be_name):
    if not _available(be_name):
        pytest.skip(f"backend {be_name} unavailable")
    models = ae.trained_models(TINY)
    x = ae.load_data()[1][:, :50]
    be = sparsekit.backend(be_name)
    for k in TINY.k_values:
        w1, w2 = models[(0.9, k)]
        plans, checks, y = ae.sparse_pipeline(be, w1, w2, x, k)
        stages = ["spmm", "kwta", "sparse_sparse"] if k < TINY.hidden else ["spmm", "spmm"]
        assert [name for name, _ in checks] == stages
        assert all(c.ok for _, c in checks), checks
        yref = ae.forward(w1, w2, x, k)[2]
        assert np.max(np.abs(y - yref)) <= 1e-4 * np.max(np.abs(yref))
        for p in plans:
            p.close()
    plans, checks, y = ae.dense_pipeline(be, *models[(0.0, TINY.hidden)], x)
    assert all(c.ok for _, c in checks)
    np.testing.assert_allclose(y, ae.forward(*models[(0.0, TINY.hidden)], x, TINY.hidden)[2], rtol=1e-4, atol=1e-5)


def test_firing_map():
    f = ae.firing_map(0.5, 4, TINY)
    assert f.shape == (10, TINY.hidden)
    assert np.all((0 <= f) & (f <= 1))
    np.testing.assert_allclose(f.sum(axis=1), 4)  # every sample has exactly k winners
    svg = ae.firing_map_svg(0.5, 4, TINY, fmap=f)
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    with pytest.raises(ValueError, match="no trained model"):
        ae.firing_map(0.7, 4, TINY)
    with pytest.raises(ValueError, match="every one"):
        ae.firing_map(0.5, 32, TINY)


def test_problems_from_arrays_use_the_given_data():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((6, 5)) * (rng.random((6, 5)) < 0.5)
    x = rng.standard_normal((5, 4))
    p = _common.spmm_problem(w, x, "float64")
    np.testing.assert_allclose(sparsekit.reference(p), w @ x)
    h = np.where(np.abs(x) > 1, x, 0)
    p = _common.sparse_sparse_problem(w, h, "float64")
    np.testing.assert_allclose(sparsekit.reference(p), w @ h)
    p = _common.kwta_problem(x, 2, "float64")
    assert np.count_nonzero(sparsekit.reference(p), axis=0).max() == 2
    with pytest.raises(ValueError, match="does not fit"):
        _common.spmm_problem(w, x.T, "float64")


def test_autoencoder_recipe_small():
    res = ae.AutoencoderRecipe(TINY).run(["numpy", "no-such-backend"], repeat=1, progress=False, quick=True)
    assert isinstance(res, WorkloadResult) and not res.failed
    assert any("no-such-backend" in n for n in res.notes)
    json.dumps(res.data)
    runs = res.data["inference"]
    assert {(r["weight_sparsity"], r["k"]) for r in runs} == {(0.0, 32), (0.9, 32)}  # quick: k=16 not trained
    assert all(r["status"] == "ok" and r["time_s"] > 0 and r["speedup"] > 0 for r in runs)
    assert len(res.data["mse"]) == len(TINY.sparsities) * len(TINY.k_values)


def test_selector_problems():
    p = selector.layer_problem("selected", 3, width=50, rows=5, k=7)
    assert p.kernel == "gather_mm" and len(p.inputs["rows"]) == 5 and p.inputs["w"].shape == (50, 7)
    assert selector.layer_problem("dense_1000", 3, width=50, rows=5, k=7).inputs["w"].shape == (5, 7)
    assert selector.layer_problem("full_20000", 3, width=50, rows=5, k=7).inputs["w"].shape == (50, 7)
    with pytest.raises(ValueError, match="unknown selector layer"):
        selector.layer_problem("half", 1)


def test_experts_recipe_quick(monkeypatch):
    monkeypatch.setattr(experts, "M", 32)
    monkeypatch.setattr(experts, "K", 32)
    monkeypatch.setattr(experts, "N", 16)
    monkeypatch.setattr(experts, "moe_problem", lambda e, t, seed=0, **kw: sparsekit.make_problem(
        "moe", m=32, k=32, n=16, experts=e, top_k=t, seed=seed))
    monkeypatch.setattr(experts, "dense_all_problem", lambda e, seed=0, **kw: sparsekit.make_problem(
        "dense_mm", m=e * 32, k=32, n=16, seed=seed))
    res = experts.ExpertsRecipe().run(["numpy"], repeat=1, progress=False, quick=True)
    assert not res.failed and len(res.data["runs"]) == 2 * len(experts.TOP_K)
    assert all(r["speedup"] > 0 and r["rel_error"] < 1e-5 for r in res.data["runs"])


def test_dlmc_twin_and_labels(monkeypatch):
    real = dlmc.dlmc_problem("transformer_attn_q", 0.9)
    twin = dlmc.uniform_twin(real)
    assert (twin.params["m"], twin.params["k"], twin.params["n"]) == (512, 512, 256)
    assert abs(twin.params["nnz"] - real.params["nnz"]) <= 1
    assert dlmc.template_of(dlmc.label("rn50/magnitude_pruning/{sparsity}/final_dense")) == \
        "rn50/magnitude_pruning/{sparsity}/final_dense"
    tmpl = "transformer/magnitude_pruning/{sparsity}/body_encoder_layer_0_ffn_conv1_fully_connected"
    assert dlmc.template_of(dlmc.label(tmpl)) == tmpl
    assert dlmc.benchmark_n(tmpl) == 256
    monkeypatch.delenv("SPARSEKIT_DLMC_DIR", raising=False)
    assert dlmc.matrices() == list(sparsekit.io.DLMC_MATRICES)


def test_dlmc_recipe_numpy(monkeypatch):
    monkeypatch.delenv("SPARSEKIT_DLMC_DIR", raising=False)
    monkeypatch.setattr(dlmc, "available_levels", lambda t: [0.98])
    res = dlmc.DLMCRecipe().run(["numpy"], repeat=1, progress=False)
    assert not res.failed and len(res.data["runs"]) == 2
    assert all(r["uniform_over_dlmc"] > 0 for r in res.data["runs"])


def test_importing_workloads_is_light():
    """RECIPES can be listed (``sparsekit run --help``) without scikit-learn, matplotlib or a backend."""
    import subprocess
    import sys

    code = ("import sys, sparsekit.workloads as w; assert len(w.RECIPES) == 4; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sklearn', 'matplotlib', 'torch', 'numba', 'pyopencl', 'lava', 'cupy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

"""The headline (best sparse against the fastest dense product of a machine) and the verdicts on
the field's claims, computed from synthetic asv results built so each verdict can be made to flip;
and the committed results: no roofline fraction above 100%."""
from __future__ import annotations

import math

import pytest

from sparsekit import headline, report_data, verdicts
from test_report import bench_row, benchmarks_json, result_file

BIG = "2048x2048x64"
LEVELS = [0.5, 0.9, 0.99]
FORMATS = [0.5, 0.75, 0.875, 0.9375]


def _results(*, dense=None, torch_spmm=(0.030, 0.006, 0.0015), cpu_spmm=(0.020, 0.004, 0.0004), bsr=(0.02, 0.004, 0.002, 0.001),
             ss=(0.0004,), moe=(0.004, 0.002), selector=(0.0012, 0.001), dlmc=(0.001, 0.001), lava=(0.030, 0.025)):
    """One machine's results. Times in seconds; the fastest dense_mm at BIG is ``dense`` (torch 0.010,
    cpu 0.012, unless given)."""
    dense = dense or {("torch", BIG): 0.010, ("cpu", BIG): 0.012, ("cpu", "4096x512x64"): 0.008}
    spmm = {}
    for s, t in zip(LEVELS, torch_spmm):
        spmm[("torch", "uniform", BIG, s)] = t
    for s, t in zip(LEVELS, cpu_spmm):
        spmm[("cpu", "uniform", BIG, s)] = t
    fmt = {("cpu", "bsr4x4", BIG, s): t for s, t in zip(FORMATS, bsr)}
    ssd = {("cpu", 0.9, BIG, 0.9): ss[0]}
    moed = {("cpu", "8x512x512x64", k): t for k, t in zip((2, 4), moe)}
    sel = {("cpu", 1, "selected"): selector[0], ("cpu", 1, "dense_1000"): selector[1], ("cpu", 1, "full_20000"): 0.02}
    dl = {("cpu", "transformer_attn_q", 0.9, "dlmc"): dlmc[0], ("cpu", "transformer_attn_q", 0.9, "uniform"): dlmc[1]}
    lv = {("lava", "1000x1000x100", 0.9): lava[0], ("lava", "1000x1000x100", 0.99): lava[1]}
    return {
        "bench_dense_mm.DenseMM.time_dense_mm": bench_row([["torch", "cpu"], [BIG, "4096x512x64"]], dense),
        "bench_spmm.SpMM.time_spmm": bench_row([["torch", "cpu"], ["uniform"], [BIG], LEVELS], spmm),
        "bench_spmm.SpMM.track_error": bench_row([["torch", "cpu"], ["uniform"], [BIG], LEVELS], {k: 2e-7 for k in spmm}),
        "bench_spmm.SpMMFormats.time_spmm": bench_row([["cpu"], ["bsr4x4"], [BIG], FORMATS], fmt),
        "bench_sparse_sparse.SparseSparse.time_sparse_sparse": bench_row([["cpu"], [0.9], [BIG], [0.9]], ssd),
        "bench_moe.MoE.time_moe": bench_row([["cpu"], ["8x512x512x64"], [2, 4]], moed),
        "bench_workloads.Selector.time_layer": bench_row([["cpu"], [1], ["selected", "dense_1000", "full_20000"]], sel),
        "bench_workloads.DLMCvsUniform.time_spmm": bench_row([["cpu"], ["transformer_attn_q"], [0.9], ["dlmc", "uniform"]], dl),
        "bench_lava.LavaSpMM.time_spmm": bench_row([["lava"], ["1000x1000x100"], [0.9, 0.99]], lv),
    }


NAMES = {
    "bench_dense_mm.DenseMM.time_dense_mm": ["backend", "shape"],
    "bench_spmm.SpMM.time_spmm": ["backend", "pattern", "shape", "sparsity"],
    "bench_spmm.SpMM.track_error": ["backend", "pattern", "shape", "sparsity"],
    "bench_spmm.SpMMFormats.time_spmm": ["backend", "format", "shape", "sparsity"],
    "bench_sparse_sparse.SparseSparse.time_sparse_sparse": ["backend", "act_sparsity", "shape", "sparsity"],
    "bench_moe.MoE.time_moe": ["backend", "shape", "top_k"],
    "bench_workloads.Selector.time_layer": ["backend", "n", "layer"],
    "bench_workloads.DLMCvsUniform.time_spmm": ["backend", "matrix", "sparsity", "mask"],
    "bench_lava.LavaSpMM.time_spmm": ["backend", "shape", "sparsity"],
}


def judge(tmp_path, **kw):
    root = tmp_path / "results"
    benchmarks_json(root, NAMES)
    result_file(root / "box", _results(**kw))
    [s] = report_data.collect(root)
    h = headline.machine_headline(s)
    return s, h, {v.key: v for v in verdicts.machine_verdicts(s, h)}


def test_headline_is_best_sparse_against_fastest_dense(tmp_path):
    _, h, _ = judge(tmp_path)
    e = next(x for x in h if x["operation"] == "spmm-batch")
    # fastest dense at BIG: torch's 0.010 (cpu's own dense is slower); fastest sparse per level: cpu
    assert e["dense_backend"] == "torch" and e["dense_time"] == 0.010
    assert e["sparse_backends"] == ["cpu", "cpu", "cpu"]
    assert e["speedups"] == pytest.approx([0.5, 2.5, 25.0])
    crossing = 0.5 + (0 - math.log(0.5)) / (math.log(2.5) - math.log(0.5)) * 0.4
    assert e["break_even_sparsity"] == pytest.approx(crossing)
    assert e["speedup_at"]["0.9"] == pytest.approx(2.5) and e["speedup_at"]["0.99"] == pytest.approx(25.0)
    assert e["error_at_90"] == pytest.approx(2e-7) and e["sparse_backend_at_90"] == "cpu"
    # against its own (slower) dense product cpu would look better: that break-even stays in the rows
    own = next(r for r in report_data.collect(tmp_path / "results")[0]["rows"] if r["backend"] == "cpu" and r["shape"] == BIG
               and r["kernel"] == "spmm" and r["variant"] == "uniform")
    assert own["break_even_sparsity"] < e["break_even_sparsity"]
    assert next(x for x in h if x["operation"] == "lif")["missing"]  # not measured: said so


def test_torch_claim_flips(tmp_path):
    _, _, v = judge(tmp_path / "a")  # torch: 0.33, 1.67, 6.7 against 0.010: breaks even below 0.99
    assert v["torch-99"].verdict == "does not hold"
    _, _, v = judge(tmp_path / "b", torch_spmm=(0.3, 0.1, 0.02))  # never faster than dense
    assert v["torch-99"].verdict == "holds" and ">0.99" in v["torch-99"].because


def test_structure_claim_flips(tmp_path):
    # unstructured breaks even at ~0.67, BSR only at ~0.81: structure is not ahead
    _, _, v = judge(tmp_path / "a", bsr=(0.03, 0.012, 0.008, 0.005))
    assert v["structured"].verdict == "does not hold"
    # both win from the middle of the sweep, BSR a little earlier (0.61): neither claim half is clear
    _, _, v = judge(tmp_path / "c")
    assert v["structured"].verdict.startswith("depends")
    # unstructured never wins, block wins from 0.75
    _, _, v = judge(tmp_path / "b", cpu_spmm=(0.2, 0.1, 0.05), torch_spmm=(0.3, 0.2, 0.1), bsr=(0.02, 0.005, 0.002, 0.001))
    assert v["structured"].verdict == "holds"


def test_selector_claim_flips(tmp_path):
    _, _, v = judge(tmp_path / "a", selector=(0.0012, 0.001))
    assert v["selector"].verdict == "holds" and v["selector"].numbers["n=1"] == pytest.approx(1.2)
    _, _, v = judge(tmp_path / "b", selector=(0.003, 0.001))
    assert v["selector"].verdict == "does not hold"


def test_multiply_claim_flips(tmp_path):
    # spmm at 0.9: 0.004 (cpu); sparse x sparse with 90% sparse activations: 10x ideal
    _, _, v = judge(tmp_path / "a", ss=(0.0006,))  # 6.7x: more than half of 10x
    assert v["multiply"].verdict == "holds"
    _, _, v = judge(tmp_path / "b", ss=(0.0035,))  # 1.14x
    assert v["multiply"].verdict == "does not hold"


def test_moe_claim_flips(tmp_path):
    # dense of all 8 experts: 4096x512x64 at 0.008 s
    _, _, v = judge(tmp_path / "a", moe=(0.004, 0.002))
    assert v["moe"].verdict == "holds"
    _, _, v = judge(tmp_path / "b", moe=(0.02, 0.01))
    assert v["moe"].verdict == "does not hold"


def test_dlmc_claim_flips(tmp_path):
    _, _, v = judge(tmp_path / "a", dlmc=(0.001, 0.0011))
    assert v["dlmc"].verdict == "holds"
    _, _, v = judge(tmp_path / "b", dlmc=(0.0005, 0.001))
    assert v["dlmc"].verdict == "does not hold" and "real mask faster" in v["dlmc"].because


def test_event_driven_claim_flips(tmp_path):
    _, _, v = judge(tmp_path / "a", lava=(0.030, 0.025))
    assert v["event-driven"].verdict == "does not hold" and "not Loihi silicon" in v["event-driven"].because
    _, _, v = judge(tmp_path / "b", lava=(0.030, 0.003))
    assert v["event-driven"].verdict == "holds"


def test_missing_data_is_not_measured(tmp_path):
    root = tmp_path / "results"
    benchmarks_json(root, NAMES)
    result_file(root / "box", {"bench_dense_mm.DenseMM.time_dense_mm": bench_row([["cpu"], [BIG]], {("cpu", BIG): 0.01})})
    [s] = report_data.collect(root)
    got = verdicts.machine_verdicts(s, headline.machine_headline(s))
    assert {v.verdict for v in got} == {"not measured here"}
    assert all(v.because for v in got)


def test_committed_results_stay_under_the_roofline():
    """A fraction above 100% would mean a limit is wrong: none may appear in the committed results."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "results"
    summaries = report_data.collect(root)
    assert summaries
    seen = 0
    for s in summaries:
        for r in s["roofline"]:
            for f in [r["dense_fraction"], *r["fractions"]]:
                if f is not None:
                    seen += 1
                    assert f <= 1.0, f"{s['machine']} {r['backend']} {r['kernel']} {r['variant']} {r['shape']}: {f:.0%}"
        for e in headline.machine_headline(s):
            if e.get("roofline_at_90") is not None:
                assert e["roofline_at_90"] <= 1.0, (s["machine"], e["label"])
    assert seen or all(s.get("_ceilings") is None or not s["_ceilings"].cache_levels for s in summaries)

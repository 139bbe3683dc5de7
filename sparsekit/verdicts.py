"""Verdicts: the claims the field repeats about sparsity, judged per machine from its results.

Each claim is a function of one machine's summary (``sparsekit.report_data.machine_summary``)
and its headline (``sparsekit.headline``) returning a ``Verdict``: ``holds``, ``does not hold``,
``depends on ...`` or ``not measured here``, with the numbers behind it. Nothing is written by
hand: where the results lack what a claim needs, it says "not measured here". The thresholds
are stated in each claim's ``rule``, so a reader can disagree with them knowingly.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .fmt import fmt_ratio

HOLDS, FAILS, NOT_MEASURED = "holds", "does not hold", "not measured here"
SELECTOR = "bench_workloads.Selector.time_layer"
DLMC_VS_UNIFORM = "bench_workloads.DLMCvsUniform.time_spmm"
LAVA_SPMM = "bench_lava.LavaSpMM.time_spmm"
LIF = "bench_lif.LIF.time_lif"


@dataclass
class Verdict:
    key: str
    claim: str
    rule: str
    verdict: str = NOT_MEASURED
    because: str = ""
    numbers: dict = field(default_factory=dict)
    #: anchor of the plot or table behind it in the HTML report
    plot: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _values(summary, name):
    from .report_data import values_of

    return values_of(summary["_data"], summary["_benchmarks"], name)


def _fastest(summary, name, key) -> dict:
    """key(params) -> the fastest time any backend took there, for benchmark ``name``."""
    by: dict = {}
    for p, t in _values(summary, name):
        if t is not None:
            k = key(p)
            by[k] = min(t, by.get(k, t))
    return by


def _entries(headline, key):
    return [e for e in headline if e.get("operation") == key and not e.get("missing")]


def _torch_only_pays_above_99(summary, headline) -> Verdict:
    v = Verdict("torch-99", "PyTorch's sparse library only makes sense above 99% sparsity",
                "torch's CSR spmm against the fastest dense product on the machine (any backend), per shape: "
                "holds where it breaks even at 0.99 or later (or never), does not hold where it breaks even earlier",
                plot="headline")
    from .metrics import break_even

    found = {}
    for r in summary["rows"]:
        if r["backend"] != "torch" or r["kernel"] != "spmm" or r["variant"] != "uniform":
            continue
        dense = [t for t in (summary.get("dense") or {}).get(r["dense_shape"], {}).values() if t]
        if not dense or not any(r["times"]):
            continue
        best = min(dense)
        speedups = [best / t if t else float("nan") for t in r["times"]]
        found[r["shape"]] = break_even(r["sparsities"], speedups)
    if not found:
        v.because = "no torch spmm sweep in these results"
        return v
    late = {s: be for s, be in found.items() if be.relation == ">" or (be.sparsity is not None and be.sparsity >= 0.99)}
    v.numbers = {s: str(be) for s, be in found.items()}
    text = ", ".join(f"{s}: {be}" for s, be in found.items())
    if len(late) == len(found):
        v.verdict, v.because = HOLDS, f"torch.sparse breaks even with the fastest dense product only at >= 0.99 ({text})"
    elif not late:
        v.verdict, v.because = FAILS, f"torch.sparse beats the fastest dense product below 99% ({text})"
    else:
        v.verdict, v.because = "depends on the shape", f"break-even by shape: {text}"
    return v


def _structure_pays(summary, headline) -> Verdict:
    v = Verdict("structured", "Unstructured sparsity does not speed things up; block or N:M structure does",
                "on this machine, best sparse against fastest dense at one shape: holds when unstructured CSR "
                "breaks even at 0.95 or later (or never) and BSR or N:M breaks even at least 0.05 earlier; does not "
                "hold when unstructured breaks even no later than both structured formats", plot="headline")
    formats = {e["operation"]: e for e in _entries(headline, "block") + _entries(headline, "nm")}
    if not formats:
        v.because = "no BSR or N:M sweep in these results"
        return v
    shape = next(iter(formats.values()))["dense_shape"]
    unstructured = [e for e in _entries(headline, "spmm-batch") + _entries(headline, "spmm-n1") if e["dense_shape"] == shape]
    if not unstructured:
        v.because = f"no unstructured CSR sweep at {shape}"
        return v

    def point(e):  # a break-even as a number: "never" counts as past the highest level
        if e["break_even_sparsity"] is None:
            return None
        return e["break_even_sparsity"] + (0.01 if e["break_even_relation"] == ">" else 0.0)

    u = point(unstructured[0])
    s = {k: point(e) for k, e in formats.items() if point(e) is not None}
    v.numbers = {"unstructured": unstructured[0]["break_even"], **{k: e["break_even"] for k, e in formats.items()}}
    if u is None or not s:
        v.because = "the sweeps have no dense baseline to break even against"
        return v
    text = f"at {shape}: CSR {unstructured[0]['break_even']}, " + ", ".join(f"{k} {e['break_even']}" for k, e in formats.items())
    if u >= 0.95 and min(s.values()) <= u - 0.05:
        v.verdict = HOLDS
    elif u <= min(s.values()):
        v.verdict = FAILS
    else:
        v.verdict = "depends on the format and level"
    v.because = text
    return v


def _selector_costs_a_small_layer(summary, headline) -> Verdict:
    v = Verdict("selector", "Selecting 1,000 of 20,000 rows costs about what a dense 1,000-wide layer costs",
                "Selector workload, fastest backend of each: holds when selected / dense_1000 <= 1.25 at every batch, "
                "does not hold when it exceeds 1.25 at every batch", plot="workloads")
    by = _fastest(summary, SELECTOR, lambda p: (int(p["n"]), p["layer"]))
    ratios = {n: by[(n, "selected")] / by[(n, "dense_1000")] for n in sorted({n for n, _ in by})
              if (n, "selected") in by and (n, "dense_1000") in by}
    if not ratios:
        v.because = "no Selector workload results"
        return v
    v.numbers = {f"n={n}": r for n, r in ratios.items()}
    full = {n: by[(n, "full_20000")] / by[(n, "selected")] for n in ratios if (n, "full_20000") in by}
    text = "; ".join(f"n={n}: selected/dense_1000 = {r:.2f}" + (f", full 20000 layer {full[n]:.0f}x slower" if n in full else "")
                     for n, r in ratios.items())
    ok = [r <= 1.25 for r in ratios.values()]
    v.verdict = HOLDS if all(ok) else FAILS if not any(ok) else "depends on the batch"
    v.because = text
    return v


def _weights_times_activations(summary, headline) -> Verdict:
    v = Verdict("multiply", "Weight sparsity and activation sparsity multiply their savings",
                "at the same shape and weight sparsity (0.9), the fastest sparse x sparse (activations k-WTA "
                "sparse) against the fastest spmm (dense activations): holds when the gain reaches half the ideal "
                "1/(1 - activation sparsity), does not hold below 1.5x", plot="headline")
    ss = _entries(headline, "sparse_sparse")
    if not ss:
        v.because = "no sparse x sparse sweep in these results"
        return v
    e = ss[0]
    act = None
    for r in summary["rows"]:
        if r["kernel"] == "sparse_sparse" and r["shape"] == e["shape"] and r["variant"] == e["variant"]:
            act = (r.get("_kwargs") or [{}])[0].get("act_sparsity")
            break
    spmm = [x for x in _entries(headline, "spmm-batch") + _entries(headline, "spmm-n1") if x["dense_shape"] == e["dense_shape"]]
    if act is None or not spmm:
        v.because = f"no spmm sweep at {e['dense_shape']} to compare with"
        return v

    def at(entry, s):
        for x, t in zip(entry["sparsities"], entry["sparse_times"]):
            if abs(x - s) < 1e-9 and t:
                return t
        return None

    s = 0.9
    t_spmm, t_ss = at(spmm[0], s), at(e, s)
    if not (t_spmm and t_ss):
        v.because = f"no measurement at weight sparsity {s} for both"
        return v
    gain, ideal = t_spmm / t_ss, 1.0 / max(1.0 - float(act), 1e-9)
    v.numbers = {"gain": gain, "ideal": ideal, "activation_sparsity": act, "weight_sparsity": s}
    v.because = (f"at {e['dense_shape']}, weights {s:g} sparse: activations {act:g} sparse made it {fmt_ratio(gain)} faster "
                 f"than dense activations (ideal {ideal:.0f}x)")
    v.verdict = HOLDS if gain >= 0.5 * ideal else FAILS if gain < 1.5 else "partly: the savings add up, they do not multiply"
    return v


def _routing_pays(summary, headline) -> Verdict:
    v = Verdict("moe", "Routing to experts pays (computing only the chosen experts beats computing all)",
                "fastest top-k MoE against the fastest dense product of all experts: holds when top-2 (or the "
                "sparsest measured top-k) is more than 1.1x faster, does not hold below 0.9x", plot="headline")
    moe = _entries(headline, "moe")
    if not moe:
        v.because = "no MoE sweep in these results"
        return v
    e = moe[0]
    pts = [(s, x) for s, x in zip(e["sparsities"], e["speedups"]) if x is not None]
    if not pts:
        v.because = "no dense baseline measured for the MoE shape"
        return v
    s, x = max(pts, key=lambda p: p[0])
    v.numbers = {f"{s:g}": x for s, x in pts}
    v.because = f"{e['shape']}: " + ", ".join(f"sparsity {s:g} (top-k of E) {fmt_ratio(x)}" for s, x in pts)
    v.verdict = HOLDS if x > 1.1 else FAILS if x < 0.9 else "about even"
    return v


def _real_masks_like_random(summary, headline) -> Verdict:
    v = Verdict("dlmc", "Real pruned masks behave like random ones",
                "DLMCvsUniform workload, fastest backend per mask: holds when uniform/real time lies within "
                "0.8-1.25 for every matrix and level, does not hold otherwise", plot="workloads")
    by = _fastest(summary, DLMC_VS_UNIFORM, lambda p: (p["matrix"], float(p["sparsity"]), p["mask"]))
    ratios = {f"{m}@{s:g}": by[(m, s, "uniform")] / by[(m, s, "dlmc")]
              for (m, s, mask) in by if mask == "dlmc" and (m, s, "uniform") in by}
    if not ratios:
        v.because = "no DLMCvsUniform workload results"
        return v
    v.numbers = ratios
    v.because = "uniform / real: " + ", ".join(f"{k} {r:.2f}" for k, r in ratios.items())
    inside = [0.8 <= r <= 1.25 for r in ratios.values()]
    if all(inside):
        v.verdict = HOLDS
    else:
        faster = sum(r > 1.25 for r in ratios.values())
        slower = sum(r < 0.8 for r in ratios.values())
        v.verdict = FAILS
        v.because += f" ({faster} with the real mask faster, {slower} slower)"
    return v


def _event_driven(summary, headline) -> Verdict:
    v = Verdict("event-driven", "Event-driven neuromorphic hardware does work per synaptic event, not per weight",
                "no neuromorphic chip here: Lava's Loihi simulation (LavaSpMM) from 90% to 99% synapse sparsity, "
                "10x fewer synaptic events: holds when its time drops 5x or more, does not hold below 2x",
                plot="workloads")
    lava: dict = {}
    for p, t in _values(summary, LAVA_SPMM):
        if t is not None and p.get("backend") in ("lava", "lava-fixed"):
            lava.setdefault(p["backend"], {})[float(p["sparsity"])] = t
    drops = {b: d[0.9] / d[0.99] for b, d in lava.items() if 0.9 in d and 0.99 in d}
    if not drops:
        v.because = "no Lava results (the lava backend did not run on this machine)"
        return v
    v.numbers = {b: x for b, x in drops.items()}
    text = ", ".join(f"{b}: {x:.2f}x less time for 10x fewer events" for b, x in drops.items())
    best = max(drops.values())
    v.verdict = HOLDS if best >= 5 else FAILS if best < 2 else "partly"
    v.because = ("in simulation, " + text + ("; the simulator's time follows timesteps, not events" if best < 2 else "")
                 + " (a statement about Lava's CPU simulation, not Loihi silicon)")
    return v


CLAIMS = (_torch_only_pays_above_99, _structure_pays, _selector_costs_a_small_layer, _weights_times_activations,
          _routing_pays, _real_masks_like_random, _event_driven)


def machine_verdicts(summary: dict, headline: list[dict]) -> list[Verdict]:
    commit = (summary.get("run") or {}).get("commit")
    out = []
    for claim in CLAIMS:
        try:
            v = claim(summary, headline)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:  # malformed results: say so, never guess
            key = claim.__name__.strip("_")
            v = Verdict(key, key.replace("_", " "), "", NOT_MEASURED, f"could not be judged: {type(e).__name__}: {e}")
        v.numbers = {**v.numbers, "commit": commit}
        out.append(v)
    return out


def verdicts(summaries: list[dict], headlines: dict) -> dict[str, list[Verdict]]:
    """machine -> its verdicts."""
    return {s["machine"]: machine_verdicts(s, headlines.get(s["machine"], [])) for s in summaries}

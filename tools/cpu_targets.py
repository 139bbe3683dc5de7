"""Side-by-side measurement of the ``cpu`` backend against its CPU peers: the target table
of issue 16 (and 6 before it), on the host it runs on.

    .venv/bin/python tools/cpu_targets.py                      # every target (~5 min on 2 cores)
    .venv/bin/python tools/cpu_targets.py --baseline main      # ... and main's cpu backend beside it
    .venv/bin/python tools/cpu_targets.py --only regress --baseline main   # every default-grid problem, new vs main
    .venv/bin/python tools/cpu_targets.py --only spmv,gather --rounds 7 --json out.json
    .venv/bin/python tools/cpu_targets.py --threads 1 --clock thread   # on a loaded machine
    SPARSEKIT_DLMC_DIR=/work/shared/data/dlmc .venv/bin/python tools/cpu_targets.py --only dlmc

Protocol. Every figure of one target comes from the same process, candidates
interleaved: each round times every candidate once (``sparsekit.timing.time_plan``:
warm-up, then repeats of enough calls to last ``--min-time``), in an order rotated
from round to round, after ``--settle`` seconds idle when the previous candidate
called OpenBLAS (so that its thread pool has stopped spin-waiting; 20 ms after
the others, whose OpenMP pools stop within a millisecond), and a reported ratio is the
median over rounds of the per-round ratios, which keeps a slow moment of a shared
machine from landing on one candidate only. Preparation (conversion, JIT, upload,
the inspector) is never timed, and every candidate's result is checked against
the oracle first.

Candidates. ``cpu``: this checkout's backend, the inspector's choice (its strategy is
printed and stored); ``cpu@REF`` (``--baseline REF``): the cpu backend of git
revision REF, imported from a copy of its ``backends/sparsekit_cpu`` beside this
core; ``cpu+tuned`` (``--tune``): the backend with tuning on (fresh wisdom in a
temporary folder), timed only where it picks another strategy. Peers: NumPy/OpenBLAS
(``numpy`` backend), SciPy CSR, torch (called directly, ``torch.set_num_threads`` = the
core count) where it has the kernel. "The fastest dense" is the fastest of numpy's,
torch's and the cpu backend's own dense product, per round.

Bandwidth (SpMV): a multithreaded read (sum) of 256 MiB, the best of the rounds,
against the bytes each implementation streams: the cpu backend's strategy's own
model (``sparsekit_cpu.strategies.streamed_bytes``; a ``--baseline`` without a
strategy record is counted with the same layout), CSR with 32-bit indices for
SciPy, 64-bit for torch.

Thread pools: OpenBLAS, Numba and torch's OpenMP are all pinned to ``--threads``
(default: the usable cores) before any of them loads; only one of them computes
at a time. ``--clock thread`` (with ``--threads 1`` only) times with the calling
thread's CPU time instead of the wall clock: time the process spends descheduled
by other load is not counted, which makes the ratios usable on a shared machine
(the figures are then single-core ones, bandwidth included).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _early_threads(argv) -> int:
    """--threads, read before NumPy/Numba/torch load (their pools size at import)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    for i, a in enumerate(argv):
        if a.startswith("--threads"):
            value = a.split("=", 1)[1] if "=" in a else (argv[i + 1] if i + 1 < len(argv) else "")
            try:
                return max(1, int(value))
            except ValueError:
                raise SystemExit(f"--threads must be a positive integer, got {value!r}") from None
    return usable


CORES = _early_threads(sys.argv[1:])
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_v] = str(CORES)

import warnings  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

import sparsekit as sk  # noqa: E402
import sparsekit.host  # noqa: E402
from sparsekit.metrics import break_even  # noqa: E402
from sparsekit.timing import time_plan  # noqa: E402

SECTIONS = ("spmm", "spmv", "gather", "dlmc", "sddmm", "sparse_sparse", "kwta")
EXTRA_SECTIONS = ("regress",)  # only when asked for (--only), with --baseline
CLOCK = "wall"
SETTLE = 0.3
BASE = None      # (label, backend) of --baseline
TUNED = None     # cpu backend with tuning on (--tune)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    # torch's "sparse CSR is beta" / "invariant checks disabled" notices, once per tensor
    warnings.filterwarnings("ignore", message=".*[Ss]parse.*", category=UserWarning)
    torch.set_num_threads(CORES)
    return torch


def _thread_time(f, min_time: float) -> float:
    """Median CPU seconds of the calling thread per call (``time_plan``'s protocol)."""
    f()
    t0 = time.thread_time()
    f()
    first = time.thread_time() - t0
    number = max(1, int(min_time / first)) if first > 0 else 1000
    samples = []
    for _ in range(3):
        t0 = time.thread_time()
        for _ in range(number):
            f()
        samples.append((time.thread_time() - t0) / number)
    return float(np.median(samples))


#: strategies of the cpu backend that call BLAS (its pool spins after a call)
_BLAS_STRATEGIES = {"dense.blas", "gather.copy_blas", "gather.strided_blas", "moe.grouped"}


def _uses_blas(name: str, cand) -> bool:
    """Whether a candidate leaves OpenBLAS's pool spinning: NumPy's dense products and
    the cpu backend's BLAS strategies. (libgomp's pools, Numba's and torch's, stop
    spinning within a millisecond; OpenBLAS's yield-spin lasts up to ~0.1 s.)"""
    if name in ("dense:numpy", "dense:cpu", "numpy"):
        return True
    st = getattr(cand, "strategy", None)
    return st is not None and st.name in _BLAS_STRATEGIES


def compare(cands: dict, rounds: int, min_time: float) -> dict[str, list[float]]:
    """Seconds per call of each candidate, one list entry per round, interleaved."""
    names = list(cands)
    times = {k: [] for k in names}
    previous = None
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for k in order:
            # let the previous candidate's pool finish spin-waiting first: OpenBLAS
            # threads spin (yielding) for a while after a call, and the next
            # library's threads would share their cores (measured: a Numba kernel
            # timed right after an OpenBLAS product ran 2x slower)
            blas = previous is None or _uses_blas(previous, cands[previous])
            time.sleep(SETTLE if blas else min(SETTLE, 0.02))
            previous = k
            if CLOCK == "thread":
                times[k].append(_thread_time(cands[k], min_time))
            else:
                times[k].append(time_plan(cands[k], repeat=3, min_time=min_time).median)
    return times


def ratio(times, a, b) -> float:
    """Median over rounds of time[a] / time[b]."""
    return float(np.median(np.asarray(times[a]) / np.asarray(times[b])))


def ratio_to_best(times, a, group) -> float:
    """Median over rounds of time[a] / (the fastest of ``group`` in that round)."""
    best = np.min(np.asarray([times[g] for g in group]), axis=0)
    return float(np.median(np.asarray(times[a]) / best))


def med(times, k) -> float:
    return float(np.median(times[k]))


def _checked(backend, problem):
    be = sk.backend(backend) if isinstance(backend, str) else backend
    plan = be.prepare(problem)
    plan()
    c = sk.check(problem, plan.result())
    if not c.ok:
        raise SystemExit(f"{getattr(be, 'name', be)} gave a wrong result on {problem.describe()}: {c.detail}")
    return plan


def _strategy(plan) -> str:
    st = getattr(plan, "strategy", None)
    return st.name if st is not None else "?"


def _cpu_candidates(problem, c: dict, strategies: dict) -> None:
    """Add the cpu backend (and --baseline, --tune variants) to the candidates ``c``."""
    plan = _checked("cpu", problem)
    c["cpu"] = plan
    strategies["cpu"] = _strategy(plan)
    if BASE:
        c[BASE[0]] = _checked(BASE[1], problem)
    if TUNED is not None:
        tuned = _checked(TUNED, problem)
        strategies["cpu+tuned"] = _strategy(tuned)
        if strategies["cpu+tuned"] != strategies["cpu"]:
            c["cpu+tuned"] = tuned


def _dense_cands(torch, m, k, n, c: dict, seed=0):
    """numpy's, torch's and the cpu backend's dense W @ X of one shape (the fastest is the reference)."""
    p = sk.make_problem("dense_mm", m=m, k=k, n=n, dtype="float32", seed=seed)
    c["dense:numpy"] = sk.backend("numpy").prepare(p)
    c["dense:cpu"] = sk.backend("cpu").prepare(p)
    if torch:
        tw = torch.from_numpy(np.ascontiguousarray(p.inputs["w"], np.float32))
        tx = torch.from_numpy(np.ascontiguousarray(p.inputs["x"], np.float32))
        if n == 1:
            tx = tx.reshape(-1)
            c["dense:torch"] = lambda: torch.mv(tw, tx)
        else:
            c["dense:torch"] = lambda: torch.mm(tw, tx)
    return [k for k in c if k.startswith("dense:")]


def _torch_csr(torch, w):
    w = sp.csr_matrix(w)
    return torch.sparse_csr_tensor(
        torch.from_numpy(w.indptr.astype(np.int64)), torch.from_numpy(w.indices.astype(np.int64)),
        torch.from_numpy(np.ascontiguousarray(w.data, dtype=np.float32)), size=w.shape)


def _row(rows, target, threshold, cpu, met, command, peers=None, base=None, strategy=None, **extra):
    rows.append(dict(target=target, threshold=threshold, cpu=cpu, base=base, peers=peers or {}, met=met,
                     strategy=strategy, command=command, **extra))


def _tuned(st: dict, values: dict) -> str | None:
    """With --tune: the tuned strategy, and its figure where it differs from the model's."""
    if TUNED is None:
        return None
    name = st.get("cpu+tuned", "?")
    return f"{name} ({values['cpu+tuned']:.2f})" if "cpu+tuned" in values else f"{name} (same)"


def _fmt_be(be) -> str:
    return str(be)


# -- targets ----------------------------------------------------------------------------


def t_spmm(args, torch, rows):
    """Break-even against the fastest dense product, 4096x4096 uniform, n = 1 and 128."""
    for n, target, levels in ((1, 0.5, (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)),
                              (128, 0.65, (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9))):
        sparse = ["cpu", "scipy"] + (["torch"] if torch else []) + ([BASE[0]] if BASE else [])
        speed = {k: [] for k in sparse}
        strategies = {}
        dense_c: dict = {}
        dense = _dense_cands(torch, 4096, 4096, n, dense_c)
        for s in levels:
            p = sk.make_problem("spmm", m=4096, k=4096, n=n, sparsity=s, pattern="uniform", dtype="float32", seed=0)
            w, x = p.inputs["w"].astype(np.float32), np.ascontiguousarray(p.inputs["x"], np.float32)
            c = dict(dense_c)
            st: dict = {}
            _cpu_candidates(p, c, st)
            strategies[s] = st
            c["scipy"] = lambda w=w, x=x: w @ x
            if torch:  # one column: torch.mv, as a torch user (and the torch backend) writes it
                tw, tx = _torch_csr(torch, w), torch.from_numpy(x.reshape(-1) if n == 1 else x)
                c["torch"] = lambda tw=tw, tx=tx: tw @ tx
            t = compare(c, args.rounds, args.min_time)
            for k in speed:
                speed[k].append(1.0 / ratio_to_best(t, k, dense))
            if "cpu+tuned" in c:  # tuning picked another strategy: its time beside the model's
                st["cpu+tuned"] += f" ({1.0 / ratio_to_best(t, 'cpu+tuned', dense):.2f}x dense)"
            fastest = min(dense, key=lambda d: med(t, d))
            print(f"  spmm n={n} s={s}: dense " + ", ".join(f"{d[6:]} {med(t, d)*1e3:.2f}" for d in dense)
                  + " ms; speedup vs fastest dense: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in speed.items())
                  + f"; cpu strategy {st['cpu']}" + (f" (tuned: {st['cpu+tuned']})" if "cpu+tuned" in st else ""),
                  flush=True)
        be = {k: break_even(levels, v) for k, v in speed.items()}
        peers = {k: v for k, v in be.items() if k in ("scipy", "torch")}
        best_peer = min((v.sparsity for v in peers.values() if v.sparsity is not None), default=None)
        cpu_be = be["cpu"].sparsity
        met = (cpu_be is not None and be["cpu"].relation != ">" and cpu_be <= target
               and (best_peer is None or cpu_be <= best_peer - 0.1))
        _row(rows, f"spmm break-even vs the fastest dense ({fastest[6:]} at s=0.9), 4096^2 uniform, n={n}",
             f"<= {target} and <= best peer - 0.1", _fmt_be(be["cpu"]), met,
             f"sparsekit run spmm --shape 4096x4096x{n} --sparsity {','.join(map(str, levels))} --backend numpy,cpu,torch",
             peers={k: _fmt_be(v) for k, v in peers.items()}, base=_fmt_be(be[BASE[0]]) if BASE else None,
             strategy="; ".join(f"{s}: {st['cpu']}" for s, st in strategies.items()),
             tuned={s: st.get("cpu+tuned") for s, st in strategies.items()} if TUNED is not None else None)


def read_bandwidth(rounds) -> dict:
    """Bytes/s of a multithreaded read (sum) and STREAM triad over 3 x 256 MiB (best round)."""
    from numba import njit, prange

    @njit(parallel=True, nogil=True)
    def triad(a, b, c, s):
        for i in prange(a.shape[0]):
            a[i] = b[i] + s * c[i]

    @njit(parallel=True, nogil=True, fastmath={"reassoc"})
    def read(a):
        s = a.dtype.type(0)
        for i in prange(a.shape[0]):
            s += a[i]
        return s

    n = 64 * 2**20
    a, b, c = np.zeros(n, np.float32), np.ones(n, np.float32), np.ones(n, np.float32)
    t = compare({"triad": lambda: triad(a, b, c, np.float32(3)), "read": lambda: read(b)}, rounds, 0.2)
    # best round: the reference is what the machine can do, not its average load
    return {"triad": 12 * n / min(t["triad"]), "read": 4 * n / min(t["read"])}


def t_spmv(args, torch, rows):
    """SpMV 16384^2 at 90% against the measured read bandwidth, on the bytes each streams."""
    from sparsekit_cpu.strategies import streamed_bytes

    bw = read_bandwidth(args.rounds)
    ref = bw["read"]
    p = sk.make_problem("spmm", m=16384, k=16384, n=1, sparsity=0.9, pattern="uniform", dtype="float32", seed=0)
    w, x = p.inputs["w"].astype(np.float32), np.ascontiguousarray(p.inputs["x"], np.float32)
    c: dict = {}
    st: dict = {}
    _cpu_candidates(p, c, st)
    c["scipy"] = lambda: w @ x
    if torch:
        tw, tx = _torch_csr(torch, w), torch.from_numpy(x.reshape(-1))  # torch.mv
        c["torch"] = lambda: tw @ tx
    t = compare(c, args.rounds, args.min_time)
    m, nnz = w.shape[0], w.nnz
    csr32 = nnz * 8 + (m + 1) * 4 + 2 * m * 4
    streamed = {"scipy": csr32, "torch": nnz * 12 + (m + 1) * 8 + 2 * m * 4}
    streamed["cpu"] = streamed_bytes(c["cpu"].strategy)
    for k in c:
        if k.startswith("cpu") and k != "cpu":
            st_k = getattr(c[k], "strategy", None)
            # a baseline without a strategy record stores W as this backend does (uint16 columns)
            streamed[k] = (streamed_bytes(st_k) if st_k is not None else None) or streamed["cpu"]
    frac = {k: streamed[k] / med(t, k) / ref for k in c}
    print(f"  bandwidth: read {bw['read']/1e9:.1f} GB/s, triad {bw['triad']/1e9:.1f} GB/s; "
          + ", ".join(f"{k} {med(t, k)*1e3:.2f} ms ({streamed[k]/1e6:.0f} MB)" for k in c)
          + f"; cpu strategy {st['cpu']}", flush=True)
    _row(rows, "SpMV 16384^2 90%: fraction of the measured read bandwidth, on the bytes each streams", ">= 0.85",
         f"{frac['cpu']:.2f}", frac["cpu"] >= 0.85,
         "python tools/cpu_targets.py --only spmv  (sparsekit run spmm --shape 16384x16384x1 --sparsity 0.9)",
         peers={k: f"{v:.2f}" for k, v in frac.items() if k in ("scipy", "torch")},
         base=f"{frac[BASE[0]]:.2f}" if BASE else None, strategy=st["cpu"],
         tuned=_tuned(st, frac),
         read_GBps=round(ref / 1e9, 1), cpu_GBps=round(streamed["cpu"] / med(t, "cpu") / 1e9, 1),
         cpu_streamed_MB=round(streamed["cpu"] / 1e6, 1))


def _selector_asv(n: int, args) -> tuple[float, float] | None:
    """asv's ``Selector.time_layer`` on the cpu backend, selected / dense_1000, timed like the suite."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, root)
    try:
        from benchmarks.bench_workloads import Selector
    except Exception as e:  # noqa: BLE001 - the suite is optional here
        print(f"  asv Selector unavailable: {e}")
        return None
    benches = {}
    try:
        for layer in ("selected", "dense_1000"):
            b = Selector()
            b.setup("cpu", n, layer)
            benches[layer] = b
    except Exception as e:  # noqa: BLE001 - another version of the suite
        print(f"  asv Selector unusable here: {type(e).__name__}: {e}")
        return None
    t = compare({layer: (lambda b=b, layer=layer: b.time_layer("cpu", n, layer)) for layer, b in benches.items()},
                args.rounds, args.min_time)
    for b in benches.values():
        b.teardown()
    return ratio(t, "selected", "dense_1000"), med(t, "selected")


def t_gather(args, torch, rows):
    """1000 of 20000 rows, 1000 columns, against the fastest dense 1000x1000 product."""
    for n, target in ((1, 1.15), (64, 1.1)):
        p = sk.make_problem("gather_mm", m=20000, k=1000, n=n, rows=1000, dtype="float32", seed=1)
        c: dict = {}
        st: dict = {}
        dense = _dense_cands(torch, 1000, 1000, n, c, seed=1)
        _cpu_candidates(p, c, st)
        c["numpy"] = _checked("numpy", p)
        if torch:
            tw = torch.from_numpy(np.ascontiguousarray(p.inputs["w"], np.float32))
            ti = torch.from_numpy(np.asarray(p.inputs["rows"], np.int64))
            tx = torch.from_numpy(np.ascontiguousarray(p.inputs["x"], np.float32))
            c["torch"] = lambda: torch.mm(torch.index_select(tw, 0, ti), tx)
        t = compare(c, args.rounds, args.min_time)
        r = {k: ratio_to_best(t, k, dense) for k in c if not k.startswith("dense:")}
        print(f"  gather n={n}: dense " + ", ".join(f"{d[6:]} {med(t, d)*1e6:.0f}" for d in dense) + " us; "
              + ", ".join(f"{k} {med(t, k)*1e6:.0f} us ({r[k]:.2f}x)" for k in r) + f"; cpu strategy {st['cpu']}",
              flush=True)
        _row(rows, f"gather_mm 1000/20000 rows, k=1000, n={n}: time / the fastest dense 1000x1000", f"<= {target}",
             f"{r['cpu']:.2f}", r["cpu"] <= target, f"sparsekit run gather_mm --shape 20000x1000x{n} --sparsity 0.95",
             peers={"numpy W[idx] @ x": f"{r['numpy']:.2f}", **({"torch index_select+mm": f"{r['torch']:.2f}"} if torch else {})},
             base=f"{r[BASE[0]]:.2f}" if BASE else None, strategy=st["cpu"],
             tuned=_tuned(st, r))
        asv = _selector_asv(n, args)
        if asv:
            _row(rows, f"asv Selector.time_layer n={n}, cpu: selected / dense_1000 (the suite's own timing)",
                 f"<= {target}", f"{asv[0]:.2f}", asv[0] <= target,
                 ".venv/bin/asv run --python=same -b 'Selector' --quick", strategy=st["cpu"])


def dlmc_problems(n: int):
    """(label, problem kwargs) of every DLMC matrix and level the search path holds: the
    vendored ones, and every ``*/magnitude_pruning/*/*.smtx[.gz]`` under ``SPARSEKIT_DLMC_DIR``."""
    from sparsekit.io import DLMC_LEVELS, DLMC_MATRICES, dlmc_dirs

    seen, out = set(), []
    for name, (template, _) in DLMC_MATRICES.items():
        for s in DLMC_LEVELS:
            rel = template.format(sparsity=f"{s:g}")
            seen.add(rel)
            out.append((f"{name} {s}", dict(pattern="dlmc", matrix=name, sparsity=s, n=n)))
    for d in dlmc_dirs()[1:]:
        for path in sorted(d.glob("*/magnitude_pruning/*/*.smtx*")):
            rel = str(path.relative_to(d)).removesuffix(".gz").removesuffix(".smtx")
            if rel not in seen:
                seen.add(rel)
                out.append((rel.replace("/magnitude_pruning/", " "), dict(weights=f"dlmc:{rel}", n=n)))
    return out


def t_dlmc(args, torch, rows):
    """spmm on every DLMC mask at N=256 against torch.sparse CSR."""
    if torch is None:
        print("  dlmc: torch not importable, skipped")
        return
    rounds = max(3, args.rounds - 2)
    results, changed = [], []
    for label, kw in dlmc_problems(256):
        p = sk.make_problem("spmm", dtype="float32", seed=0, format="csr", **kw)
        w, x = p.inputs["w"].astype(np.float32), np.ascontiguousarray(p.inputs["x"], np.float32)
        tw, tx = _torch_csr(torch, w), torch.from_numpy(x)
        c: dict = {}
        st: dict = {}
        _cpu_candidates(p, c, st)
        c["torch"] = lambda tw=tw, tx=tx: tw @ tx
        t = compare(c, rounds, args.min_time)
        r = ratio(t, "cpu", "torch")
        rb = ratio(t, BASE[0], "torch") if BASE else None
        results.append((r, label, med(t, "cpu"), med(t, "torch"), rb, st["cpu"]))
        tuned = (f"; tuned: {st['cpu+tuned']}" + (f" {ratio(t, 'cpu+tuned', 'torch'):.2f}" if "cpu+tuned" in c else "")
                 if "cpu+tuned" in st else "")
        if "cpu+tuned" in c:
            changed.append(f"{label}: {st['cpu']} -> {st['cpu+tuned']}")
        print(f"  dlmc {label} {w.shape}: cpu {med(t, 'cpu')*1e3:.3f} ms, torch {med(t, 'torch')*1e3:.3f} ms,"
              f" cpu/torch {r:.2f}" + (f", {BASE[0]}/torch {rb:.2f}" if BASE else "") + f"; {st['cpu']}{tuned}",
              flush=True)
    worst = max(results)
    median = float(np.median([r[0] for r in results]))
    strategies = sorted({r[5] for r in results})
    _row(rows, f"spmm DLMC N=256: worst cpu/torch.sparse time over {len(results)} matrices x levels (median {median:.2f})",
         "<= 0.9", f"{worst[0]:.2f} ({worst[1]}: {worst[2]*1e3:.3f} vs {worst[3]*1e3:.3f} ms)", worst[0] <= 0.9,
         "SPARSEKIT_DLMC_DIR=/work/shared/data/dlmc python tools/cpu_targets.py --only dlmc",
         peers={"torch.sparse CSR": "1"}, base=(f"{max(r[4] for r in results):.2f} worst" if BASE else None),
         strategy=", ".join(strategies), per_matrix={r[1]: round(r[0], 3) for r in results},
         tuned=changed if TUNED is not None else None)


def t_sddmm(args, torch, rows):
    p = sk.make_problem("sddmm", m=4096, k=128, n=4096, sparsity=0.9, pattern="uniform", dtype="float32", seed=0)
    c = {"numpy": _checked("numpy", p)}
    if torch:
        a, b = torch.from_numpy(np.ascontiguousarray(p.inputs["a"], np.float32)), torch.from_numpy(np.ascontiguousarray(p.inputs["b"], np.float32))
        mask = _torch_csr(torch, sp.csr_matrix(p.inputs["mask"]).astype(np.float32))
        c["torch"] = lambda: torch.sparse.sampled_addmm(mask, a, b, beta=0.0)
    _vs_best(args, rows, p, c, "sddmm 4096x128x4096 90% mask", "sparsekit run sddmm --shape 4096x128x4096 --sparsity 0.9")


def t_sparse_sparse(args, torch, rows):
    p = sk.make_problem("sparse_sparse", m=4096, k=4096, n=64, sparsity=0.9, act_sparsity=0.9, dtype="float32", seed=0)
    w = sp.csr_matrix(p.inputs["w"]).astype(np.float32)
    xc = sp.csc_matrix(p.inputs["x_csc"]).astype(np.float32)
    c = {"numpy": _checked("numpy", p), "scipy": lambda: (w @ xc).toarray()}
    if torch:
        tw, tx = _torch_csr(torch, w), _torch_csr(torch, xc.tocsr())
        c["torch"] = lambda: torch.sparse.mm(tw, tx)
    _vs_best(args, rows, p, c, "sparse_sparse 4096x4096x64, 90% W, 90% X", "sparsekit run sparse_sparse --shape 4096x4096x64 --sparsity 0.9")


def t_kwta(args, torch, rows):
    p = sk.make_problem("kwta", m=4096, n=256, sparsity=0.95, dtype="float32", seed=0)
    c = {"numpy": _checked("numpy", p)}
    if torch:
        x = torch.from_numpy(np.ascontiguousarray(p.inputs["x"], np.float32))
        k = int(p.params["k"])

        def topk():  # values kept in place, the rest zeroed (ties: torch's choice)
            idx = torch.topk(x, k, dim=0, sorted=False).indices
            return torch.zeros_like(x).scatter_(0, idx, x.gather(0, idx))

        c["torch"] = topk
    _vs_best(args, rows, p, c, "kwta 4096x256, k = 5%", "sparsekit run kwta --shape 4096x256 --sparsity 0.95")


def _vs_best(args, rows, problem, peers, label, command):
    c: dict = {}
    st: dict = {}
    _cpu_candidates(problem, c, st)
    c.update(peers)
    t = compare(c, args.rounds, args.min_time)
    r = {k: ratio(t, "cpu", k) for k in peers}
    best = max(r, key=r.get)  # the fastest peer: largest cpu/peer time ratio
    print(f"  {label}: " + ", ".join(f"{k} {med(t, k)*1e3:.3f} ms" for k in c), flush=True)
    _row(rows, f"{label}: cpu time / the fastest peer ({best})", "<= 0.8", f"{r[best]:.2f}", r[best] <= 0.8, command,
         peers={k: f"{med(t, k)*1e3:.3f} ms" for k in peers},
         base=f"{ratio(t, BASE[0], best):.2f}" if BASE else None, strategy=st["cpu"],
         tuned=_tuned(st, {"cpu+tuned": ratio(t, "cpu+tuned", best)} if "cpu+tuned" in c else {}))


#: the default asv grid's problems whose cpu strategy this work changed (as of the AMD EPYC
#: results in results/amd-epyc-2c): CSR SpMM 2048^2 x {1, 64}, BSR 4x4 and N:M at 2048^2 x 64,
#: DLMC at the benchmark's N, GATHER_MM 2048^2 x 64
GRID_SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
FORMAT_SPARSITIES = (0.5, 0.75, 0.875, 0.9375, 0.96875)


def regress_problems():
    out = []
    for n in (1, 64):
        for s in GRID_SPARSITIES:
            out.append(("spmm", dict(m=2048, k=2048, n=n, sparsity=s, pattern="uniform", format="csr")))
    for s in FORMAT_SPARSITIES:
        out.append(("spmm", dict(m=2048, k=2048, n=64, sparsity=s, format="bsr", pattern="block", blocksize=(4, 4))))
        out.append(("spmm", dict(m=2048, k=2048, n=64, sparsity=s, format="nm", pattern="nm")))
    for name, (_, n) in sk.io.DLMC_MATRICES.items():
        for s in sk.io.DLMC_LEVELS:
            out.append(("spmm", dict(matrix=name, sparsity=s, n=n, format="csr")))
    for s in (0.5, 0.75, 0.9, 0.95, 0.99):
        out.append(("gather_mm", dict(m=2048, k=2048, n=64, sparsity=s)))
    return out


def t_regress(args, torch, rows):
    """Every default-grid problem the change touches: cpu / cpu@REF time, side by side."""
    if not BASE:
        raise SystemExit("--only regress needs --baseline REF")
    ratios = []
    for kernel, kw in regress_problems():
        p = sk.make_problem(kernel, dtype="float32", seed=0, **kw)
        c: dict = {}
        st: dict = {}
        _cpu_candidates(p, c, st)
        t = compare({"cpu": c["cpu"], BASE[0]: c[BASE[0]]}, max(3, args.rounds - 2), args.min_time)
        r = ratio(t, "cpu", BASE[0])
        ratios.append((r, p.describe(), st["cpu"]))
        print(f"  {p.describe()[:110]}: cpu/{BASE[0]} {r:.2f} ({st['cpu']})", flush=True)
    worse = [x for x in ratios if x[0] > 1.05]
    _row(rows, f"default-grid problems whose strategy changed ({len(ratios)}): cpu / {BASE[0]} time, worst",
         "<= 1.05 (no regression)", f"{max(ratios)[0]:.2f} ({max(ratios)[1][:60]})", not worse,
         f"python tools/cpu_targets.py --only regress --baseline {args.baseline}",
         base=f"median {float(np.median([x[0] for x in ratios])):.2f}",
         slower=[f"{r:.2f} {d}" for r, d, _ in sorted(worse, reverse=True)])


# -- baseline -----------------------------------------------------------------------------


def load_baseline(ref: str):
    """The cpu backend of git revision ``ref``, imported as ``sparsekit_cpu_base`` from a copy
    of its ``backends/sparsekit_cpu`` (in ``$TMPDIR``), running on this checkout's core."""
    import subprocess
    import tempfile

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sha = subprocess.run(["git", "-C", root, "rev-parse", "--short", ref], capture_output=True, text=True, check=True).stdout.strip()
    dest = os.path.join(tempfile.gettempdir(), f"sparsekit-cpu-base-{sha}")
    pkg = os.path.join(dest, "sparsekit_cpu_base")
    if not os.path.isdir(pkg):
        os.makedirs(pkg, exist_ok=True)
        names = subprocess.run(["git", "-C", root, "ls-tree", "--name-only", f"{ref}:backends/sparsekit_cpu"],
                               capture_output=True, text=True, check=True).stdout.split()
        for name in names:
            if name.endswith(".py"):
                src = subprocess.run(["git", "-C", root, "show", f"{ref}:backends/sparsekit_cpu/{name}"],
                                     capture_output=True, text=True, check=True).stdout
                with open(os.path.join(pkg, name), "w") as f:
                    f.write(src)
    sys.path.insert(0, dest)
    import importlib

    # core modules an older backend imports under their former names (sparsekit._sysinfo
    # became the public sparsekit.host; the functions it used kept their names)
    sys.modules.setdefault("sparsekit._sysinfo", sparsekit.host)
    mod = importlib.import_module("sparsekit_cpu_base.backend")
    return f"cpu@{ref}", mod.CpuBackend()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help=f"comma-separated subset of {', '.join(SECTIONS + EXTRA_SECTIONS)}")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds per comparison (median kept)")
    ap.add_argument("--min-time", type=float, default=0.03, help="seconds per timed repeat")
    ap.add_argument("--json", default="cpu_targets.json", help="write the table here too (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=CORES, help="threads of every pool (read before imports)")
    ap.add_argument("--settle", type=float, default=0.3, help="seconds idle before a candidate that follows a BLAS one")
    ap.add_argument("--clock", choices=("wall", "thread"), default="wall",
                    help="thread: the calling thread's CPU time (needs --threads 1)")
    ap.add_argument("--baseline", default=None, metavar="REF",
                    help="also time the cpu backend of this git revision (e.g. main) beside this one")
    ap.add_argument("--tune", action="store_true",
                    help="also prepare with tuning on (fresh wisdom) and time it where it picks another strategy")
    args = ap.parse_args(argv)
    if args.clock == "thread" and CORES != 1:
        ap.error("--clock thread needs --threads 1 (other threads' work would not be counted)")
    global CLOCK, SETTLE, BASE, TUNED
    CLOCK, SETTLE = args.clock, args.settle
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = sorted(set(only) - set(SECTIONS + EXTRA_SECTIONS))
    if bad:
        ap.error(f"unknown section(s) {', '.join(bad)}; choose from {', '.join(SECTIONS + EXTRA_SECTIONS)}")
    sparsekit.host.pin_malloc_threshold()  # peers' per-call temporaries (numpy's W[rows]) as in the suite
    torch = _torch()
    cpu = sk.backend("cpu")
    if args.baseline:
        BASE = load_baseline(args.baseline)
    if args.tune:
        import tempfile

        from sparsekit_cpu.backend import CpuBackend

        TUNED = CpuBackend()
        TUNED.tune = True
        TUNED.wisdom_path = os.path.join(tempfile.mkdtemp(prefix="cpu-targets-wisdom-"), "cpu-wisdom.json")
    started = time.time()
    header = (f"# {cpu.device()}; threads: {CORES}; clock: {CLOCK}; versions {cpu.versions()}"
              + (f"; torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else "; torch unavailable")
              + (f"; baseline {BASE[0]}" if BASE else "") + ("; tuning compared" if args.tune else ""))
    mach = cpu.machine
    header += (f"\n# machine: {mach.arch}, {mach.vector_bytes}-byte vectors x {mach.vector_registers}, "
               f"L1d {mach.l1d // 1024} KiB, L2 {mach.l2 // 1024} KiB, L3 {mach.l3 // 2**20} MiB"
               + (f", calibrated {mach.calibrated}" if mach.calibrated else ""))
    print(header, flush=True)
    rows: list[dict] = []
    for s in only:
        print(f"[{s}]", flush=True)
        globals()[f"t_{s}"](args, torch, rows)
    cols = (["target", "threshold", "cpu"] + ([BASE[0]] if BASE else []) + ["peers (same run)", "met", "cpu strategy"]
            + (["tuned"] if TUNED is not None else []))
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        met = {True: "yes", False: "NO", None: "-"}[r["met"]]
        peers = "; ".join(f"{k} {v}" for k, v in r["peers"].items())
        cells = ([r["target"], r["threshold"], r["cpu"]] + ([r["base"] or "-"] if BASE else []) + [peers, met, r["strategy"] or "-"]
                 + ([r.get("tuned") or "-"] if TUNED is not None else []))
        print("| " + " | ".join(str(c) for c in cells) + " |")
    print(f"\n{sum(r['met'] is True for r in rows)} of {len(rows)} targets met; {time.time() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "threads": CORES, "clock": CLOCK, "baseline": args.baseline, "rows": rows},
                      f, indent=1, default=str)
        print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Side-by-side measurement of the ``cpu`` backend against its CPU peers (issue 6 part 3).

    .venv/bin/python tools/cpu_targets.py                 # every target, 5 rounds
    .venv/bin/python tools/cpu_targets.py --only spmv,gather --rounds 7 --json out.json
    .venv/bin/python tools/cpu_targets.py --threads 1 --clock thread   # on a loaded machine

Every figure of one target comes from the same process, candidates interleaved:
each round times every candidate once (``sparsekit.timing.time_plan``: warm-up,
then repeats of enough calls to last ``--min-time``), in an order rotated from
round to round, after ``--settle`` seconds idle (so that the previous
candidate's thread pool has stopped spin-waiting), and the reported ratio is the
median over rounds of the per-round ratios. That keeps a slow moment of a shared machine from landing on
one candidate only. Preparation (conversion, JIT, upload) is never timed.

Peers: NumPy/OpenBLAS dense (``numpy`` backend), SciPy CSR, and torch (called
directly, ``torch.set_num_threads`` = the core count) where it has the kernel.
Bandwidth reference for SpMV: the best of a multithreaded STREAM triad (Numba,
3 x 4 bytes per element, write-allocate not counted) and a multithreaded read
(sum) over arrays far larger than the last-level cache.

Thread pools: OpenBLAS, Numba and torch's OpenMP are all pinned to ``--threads``
(default: the usable cores) before any of them loads; only one of them computes
at a time. ``--clock thread`` (with ``--threads 1`` only) times with the calling
thread's CPU time instead of the wall clock: every library then computes in the
calling thread, and time the process spends descheduled by other load is not
counted, which makes the ratios usable on a shared machine (the figures are then
single-core ones, bandwidth included).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import time  # noqa: E402


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
from sparsekit.metrics import break_even  # noqa: E402
from sparsekit.timing import time_plan  # noqa: E402

SECTIONS = ("spmm", "spmv", "gather", "dlmc", "sddmm", "sparse_sparse", "kwta")


def _torch():
    try:
        import torch
    except ImportError:
        return None
    # torch's "sparse CSR is beta" / "invariant checks disabled" notices, once per tensor
    warnings.filterwarnings("ignore", message=".*[Ss]parse.*", category=UserWarning)
    torch.set_num_threads(CORES)
    return torch


CLOCK = "wall"
SETTLE = 0.3


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


def compare(cands: dict, rounds: int, min_time: float) -> dict[str, list[float]]:
    """Seconds per call of each candidate, one list entry per round, interleaved."""
    names = list(cands)
    times = {k: [] for k in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for k in order:
            # let the previous candidate's pool finish spin-waiting first: OpenBLAS
            # threads spin (yielding) for a while after a call, and the next
            # library's threads would share their cores (measured: a Numba kernel
            # timed right after an OpenBLAS product ran 2x slower)
            time.sleep(SETTLE)
            if CLOCK == "thread":
                times[k].append(_thread_time(cands[k], min_time))
            else:
                times[k].append(time_plan(cands[k], repeat=3, min_time=min_time).median)
    return times


def ratio(times, a, b) -> float:
    """Median over rounds of time[a] / time[b]."""
    return float(np.median(np.asarray(times[a]) / np.asarray(times[b])))


def med(times, k) -> float:
    return float(np.median(times[k]))


def _checked(backend: str, problem):
    plan = sk.backend(backend).prepare(problem)
    plan()
    c = sk.check(problem, plan.result())
    if not c.ok:
        raise SystemExit(f"{backend} gave a wrong result on {problem.kernel}: {c.detail}")
    return plan


def _dense_plan(m, k, n, seed=0):
    return sk.backend("numpy").prepare(sk.make_problem("dense_mm", m=m, k=k, n=n, dtype="float32", seed=seed))


def _torch_csr(torch, w):
    w = sp.csr_matrix(w)
    return torch.sparse_csr_tensor(
        torch.from_numpy(w.indptr.astype(np.int64)), torch.from_numpy(w.indices.astype(np.int64)),
        torch.from_numpy(np.ascontiguousarray(w.data, dtype=np.float32)), size=w.shape)


# -- targets ----------------------------------------------------------------------------


def t_spmm(args, torch, rows):
    """Break-even against numpy dense_mm, 4096x4096 uniform, n = 1 and 128."""
    levels = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    for n, target in ((1, 0.6), (128, 0.7)):
        speed = {"cpu": [], "scipy": [], "torch": []} if torch else {"cpu": [], "scipy": []}
        dense = _dense_plan(4096, 4096, n)
        for s in levels:
            p = sk.make_problem("spmm", m=4096, k=4096, n=n, sparsity=s, pattern="uniform", dtype="float32", seed=0)
            w, x = p.inputs["w"].astype(np.float32), np.ascontiguousarray(p.inputs["x"], np.float32)
            c = {"dense": dense, "cpu": _checked("cpu", p), "scipy": lambda w=w, x=x: w @ x}
            if torch:  # one column: torch.mv, as a torch user (and the torch backend) writes it
                tw, tx = _torch_csr(torch, w), torch.from_numpy(x.reshape(-1) if n == 1 else x)
                c["torch"] = lambda tw=tw, tx=tx: tw @ tx
            t = compare(c, args.rounds, args.min_time)
            for k in speed:
                speed[k].append(ratio(t, "dense", k))
            print(f"  spmm n={n} s={s}: dense {med(t, 'dense')*1e3:.2f} ms, speedups "
                  + ", ".join(f"{k} {v[-1]:.2f}" for k, v in speed.items()), flush=True)
        be = {k: break_even(levels, v) for k, v in speed.items()}
        rows.append(dict(target=f"spmm break-even 4096^2 uniform n={n} (<= {target})",
                         cpu=str(be["cpu"]), peers={k: str(v) for k, v in be.items() if k != "cpu"},
                         met=be["cpu"].sparsity is not None and be["cpu"].sparsity <= target,
                         command=f"sparsekit run spmm --shape 4096x4096x{n} --sparsity {','.join(map(str, levels))}"))


def stream_bandwidth(rounds) -> dict:
    """Bytes/s of a multithreaded STREAM triad and of a multithreaded read, 3 x 256 MB."""
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
    """SpMV 16384^2 at 90% against the measured streaming bandwidth."""
    bw = stream_bandwidth(args.rounds)
    ref = max(bw.values())
    p = sk.make_problem("spmm", m=16384, k=16384, n=1, sparsity=0.9, pattern="uniform", dtype="float32", seed=0)
    w, x = p.inputs["w"].astype(np.float32), np.ascontiguousarray(p.inputs["x"], np.float32)
    c = {"cpu": _checked("cpu", p), "scipy": lambda: w @ x}
    if torch:
        tw, tx = _torch_csr(torch, w), torch.from_numpy(x.reshape(-1))  # torch.mv
        c["torch"] = lambda: tw @ tx
    t = compare(c, args.rounds, args.min_time)
    m, nnz = w.shape[0], w.nnz
    model = sk.compulsory_bytes(p)  # CSR with 32-bit indices, x and y once
    # what the cpu backend really streams: float32 values, uint16 columns, uint32
    # offsets once per column panel (see sparsekit_cpu.backend.spmv_panel_width)
    from sparsekit_cpu.backend import spmv_panel_width

    width = spmv_panel_width(w.shape, nnz, 4)
    panels = -(-w.shape[1] // width) if width else 1
    actual = nnz * 6 + panels * (m + 1) * 4 + 2 * m * 4
    frac = {k: model / med(t, k) / ref for k in c}
    print(f"  bandwidth: triad {bw['triad']/1e9:.1f} GB/s, read {bw['read']/1e9:.1f} GB/s; "
          + ", ".join(f"{k} {med(t, k)*1e3:.2f} ms" for k in c), flush=True)
    rows.append(dict(target="SpMV 16384^2 90% fraction of stream bandwidth, CSR-model bytes (>= 0.8)",
                     cpu=f"{frac['cpu']:.2f}", peers={k: f"{v:.2f}" for k, v in frac.items() if k != "cpu"},
                     met=frac["cpu"] >= 0.8, bandwidth_GBps=round(ref / 1e9, 1),
                     command="python tools/cpu_targets.py --only spmv  (sparsekit run spmm --shape 16384x16384x1 --sparsity 0.9)"))
    rows.append(dict(target="SpMV 16384^2 90% fraction of stream bandwidth, bytes the cpu backend streams (6 B/nnz + offsets per panel)",
                     cpu=f"{actual / med(t, 'cpu') / ref:.2f}", peers={}, met=None,
                     command="python tools/cpu_targets.py --only spmv"))


def t_gather(args, torch, rows):
    """1000 of 20000 rows, 1000 columns, against a dense 1000x1000 product."""
    for n, target in ((1, 1.25), (64, 1.1)):
        p = sk.make_problem("gather_mm", m=20000, k=1000, n=n, rows=1000, dtype="float32", seed=1)
        c = {"dense": _dense_plan(1000, 1000, n), "cpu": _checked("cpu", p), "numpy": _checked("numpy", p)}
        t = compare(c, args.rounds, args.min_time)
        r = {k: ratio(t, k, "dense") for k in ("cpu", "numpy")}
        print(f"  gather n={n}: dense {med(t, 'dense')*1e6:.0f} us, cpu {med(t, 'cpu')*1e6:.0f} us, "
              f"numpy {med(t, 'numpy')*1e6:.0f} us", flush=True)
        rows.append(dict(target=f"gather_mm 1000/20000 rows, k=1000, n={n}: time / dense 1000x1000 (<= {target})",
                         cpu=f"{r['cpu']:.2f}", peers={"numpy W[idx] @ x": f"{r['numpy']:.2f}"}, met=r["cpu"] <= target,
                         command=f"sparsekit run gather_mm --shape 20000x1000x{n} --sparsity 0.95"))


def t_dlmc(args, torch, rows):
    """spmm on the vendored DLMC masks at N=256 against torch.sparse CSR."""
    if torch is None:
        print("  dlmc: torch not importable, skipped")
        return
    from sparsekit.io import DLMC_LEVELS, DLMC_MATRICES

    worst = None
    for name in DLMC_MATRICES:
        for s in DLMC_LEVELS:
            p = sk.make_problem("spmm", pattern="dlmc", matrix=name, sparsity=s, n=256, dtype="float32", seed=0)
            w, x = p.inputs["w"].astype(np.float32), np.ascontiguousarray(p.inputs["x"], np.float32)
            tw, tx = _torch_csr(torch, w), torch.from_numpy(x)
            t = compare({"cpu": _checked("cpu", p), "torch": lambda: tw @ tx}, args.rounds, args.min_time)
            r = ratio(t, "cpu", "torch")
            print(f"  dlmc {name} {s} {w.shape}: cpu {med(t, 'cpu')*1e3:.3f} ms, torch {med(t, 'torch')*1e3:.3f} ms,"
                  f" cpu/torch {r:.2f}", flush=True)
            if worst is None or r > worst[0]:
                worst = (r, f"{name} {s}", med(t, "cpu"), med(t, "torch"))
    rows.append(dict(target="spmm DLMC subset N=256: worst cpu/torch time ratio over 12 matrices (<= 1)",
                     cpu=f"{worst[0]:.2f} ({worst[1]}: {worst[2]*1e3:.3f} ms)", peers={"torch.sparse CSR": f"{worst[3]*1e3:.3f} ms"},
                     met=worst[0] <= 1.0,
                     command="sparsekit run spmm --pattern dlmc --matrix transformer_attn_q --shape 512x512x256 "
                             "--sparsity 0.5,0.7,0.8,0.9,0.95,0.98 --backend cpu,torch (rn50_conv3x3: 256x2304x256)"))


def t_sddmm(args, torch, rows):
    p = sk.make_problem("sddmm", m=4096, k=128, n=4096, sparsity=0.9, pattern="uniform", dtype="float32", seed=0)
    c = {"cpu": _checked("cpu", p), "numpy": _checked("numpy", p)}
    if torch:
        a, b = torch.from_numpy(np.ascontiguousarray(p.inputs["a"], np.float32)), torch.from_numpy(np.ascontiguousarray(p.inputs["b"], np.float32))
        mask = _torch_csr(torch, sp.csr_matrix(p.inputs["mask"]).astype(np.float32))
        c["torch"] = lambda: torch.sparse.sampled_addmm(mask, a, b, beta=0.0)
    _vs_best(args, rows, c, "sddmm 4096x128x4096 90% mask", "sparsekit run sddmm --shape 4096x128x4096 --sparsity 0.9")


def t_sparse_sparse(args, torch, rows):
    p = sk.make_problem("sparse_sparse", m=4096, k=4096, n=64, sparsity=0.9, act_sparsity=0.9, dtype="float32", seed=0)
    w = sp.csr_matrix(p.inputs["w"]).astype(np.float32)
    xc = sp.csc_matrix(p.inputs["x_csc"]).astype(np.float32)
    c = {"cpu": _checked("cpu", p), "numpy": _checked("numpy", p), "scipy": lambda: (w @ xc).toarray()}
    _vs_best(args, rows, c, "sparse_sparse 4096x4096x64, 90% W, 90% X", "sparsekit run sparse_sparse --shape 4096x4096x64 --sparsity 0.9")


def t_kwta(args, torch, rows):
    p = sk.make_problem("kwta", m=4096, n=256, sparsity=0.95, dtype="float32", seed=0)
    c = {"cpu": _checked("cpu", p), "numpy": _checked("numpy", p)}
    if torch:
        x = torch.from_numpy(np.ascontiguousarray(p.inputs["x"], np.float32))
        k = int(p.params["k"])

        def topk():  # values kept in place, the rest zeroed (ties: torch's choice)
            idx = torch.topk(x, k, dim=0, sorted=False).indices
            return torch.zeros_like(x).scatter_(0, idx, x.gather(0, idx))

        c["torch"] = topk
    _vs_best(args, rows, c, "kwta 4096x256, k = 5%", "sparsekit run kwta --shape 4096x256 --sparsity 0.95")


def _vs_best(args, rows, c, label, command):
    t = compare(c, args.rounds, args.min_time)
    peers = {k: ratio(t, "cpu", k) for k in c if k != "cpu"}
    best = max(peers, key=peers.get)  # the fastest peer: largest cpu/peer time ratio
    print(f"  {label}: " + ", ".join(f"{k} {med(t, k)*1e3:.3f} ms" for k in c), flush=True)
    rows.append(dict(target=f"{label}: cpu time / best peer ({best})", cpu=f"{peers[best]:.2f}",
                     peers={k: f"{med(t, k)*1e3:.3f} ms" for k in c}, met=None, command=command))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {', '.join(SECTIONS)}")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds per comparison (median kept)")
    ap.add_argument("--min-time", type=float, default=0.03, help="seconds per timed repeat")
    ap.add_argument("--json", default=None, help="also write the table here")
    ap.add_argument("--threads", type=int, default=CORES, help="threads of every pool (read before imports)")
    ap.add_argument("--settle", type=float, default=0.3, help="seconds idle before timing each candidate")
    ap.add_argument("--clock", choices=("wall", "thread"), default="wall",
                    help="thread: the calling thread's CPU time (needs --threads 1)")
    args = ap.parse_args(argv)
    if args.clock == "thread" and CORES != 1:
        ap.error("--clock thread needs --threads 1 (other threads' work would not be counted)")
    global CLOCK, SETTLE
    CLOCK, SETTLE = args.clock, args.settle
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = sorted(set(only) - set(SECTIONS))
    if bad:
        ap.error(f"unknown section(s) {', '.join(bad)}; choose from {', '.join(SECTIONS)}")
    torch = _torch()
    cpu = sk.backend("cpu")
    print(f"# {cpu.device()}; threads: {CORES}; clock: {CLOCK}; versions {cpu.versions()}"
          + (f"; torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else "; torch unavailable"))
    rows: list[dict] = []
    for s in only:
        print(f"[{s}]", flush=True)
        globals()[f"t_{s}"](args, torch, rows)
    print("\n| target | cpu | peers (same run) | met | reproduce |\n|---|---|---|---|---|")
    for r in rows:
        met = {True: "yes", False: "NO", None: "-"}[r["met"]]
        peers = "; ".join(f"{k} {v}" for k, v in r["peers"].items())
        print(f"| {r['target']} | {r['cpu']} | {peers} | {met} | `{r['command']}` |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

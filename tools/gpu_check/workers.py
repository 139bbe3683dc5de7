"""The kit's phases that touch a device, each run in its own process: ``python -m gpu_check.workers NAME``.

The orchestrator (``cli``) never imports CuPy or torch: a CUDA crash, a hang or an
out-of-memory costs one phase, and a phase past its deadline is stopped (SIGINT, then
SIGKILL) without losing what it wrote. Every worker appends its measurements to
``points.jsonl`` as it goes and exits 0 when it ran to its end (measurements may be
n/a there), 1 when it failed.

* ``describe``: the backends as the registry lists them (cupy's device probe), the
  library versions (``sparsekit/versions.py``), written to a JSON file;
* ``grid``: the break-even grid on one backend (``grid.py``), the asv files rewritten
  after every point;
* ``bandwidth``: device-to-device copy and triad (``Backend.stream``, float64 arrays
  of 1 GiB, far beyond any L2), then ``gather_mm`` at a few shapes and selected
  fractions: its compulsory bytes per second as a fraction of that copy bandwidth;
* ``calibrate``: ``sparsekit.calibrate`` (quick) on the GPU backends, saved as
  ``calibration.json`` beside the result file (the report's roofline fractions);
* ``report``: ``sparsekit report`` over the machine's folder beside the repository's
  ``results/benchmarks.json``: the break-even table, written to a JSON file too.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from gpu_check import grid as grid_mod
from gpu_check import results

#: bandwidth: STREAM arrays (bytes each) and the gather_mm shapes (m, k, n) x selected fractions
STREAM_BYTES = 1 << 30
GATHER_SHAPES = ((16384, 4096, 1), (65536, 1024, 1), (4096, 4096, 64))
GATHER_SELECTED = (0.5, 0.1, 0.01)


def _load(path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def describe(args) -> int:
    import sparsekit
    from sparsekit import versions

    records = {r.name: {"available": r.available, "reason": r.reason, "device": r.device} for r in sparsekit.backends()}
    out = {"backends": records, "versions": versions.lines()}
    rec = records.get("cupy")
    if rec is not None and rec["available"]:
        import sparsekit_cupy

        out["gpu"] = sparsekit_cupy.probe_device()
    results.write_json_atomic(Path(args.json), out, indent=1)
    for name, r in records.items():
        print(f"{name:10} {'available' if r['available'] else 'unavailable: ' + r['reason']}  [{r['device']}]")
    return 0


def grid(args) -> int:
    import benchmarks  # noqa: F401  (pins the host thread pools, as asv's runs do)

    out, run = Path(args.out), _load(args.run)
    grid_mod.check_grid()  # a point the report could not pair is a bug of the kit: fail before measuring
    full = grid_mod.full_params()
    todo = grid_mod.points(args.backend)
    longest = 0.0
    for i, point in enumerate(todo):
        if time.time() + max(longest, 1.0) > args.deadline:  # the next point would likely be cut: stop cleanly
            print(f"deadline: {len(todo) - i} point(s) of {args.backend} not measured", flush=True)
            for rest in todo[i:]:
                results.append_point(out / results.POINTS_FILE, grid_mod.record(
                    rest, status="deadline", reason="not reached before the phase's deadline"))
            break
        rec = grid_mod.measure(point)
        longest = max(longest, rec["duration"])
        results.append_point(out / results.POINTS_FILE, rec)
        results.write_asv(out / "results", run, results.read_points(out / results.POINTS_FILE), full)
        print(grid_mod.describe(rec), flush=True)
    return 0


def bandwidth(args) -> int:
    import sparsekit
    from sparsekit.timing import time_plan

    out = Path(args.out)
    be = sparsekit.backend(args.backend)
    copy_bw = None
    for kind, words in (("copy", 2), ("triad", 3)):
        plan = be.stream(kind, STREAM_BYTES)
        t = time_plan(plan, repeat=5, min_time=0.02, max_time=2.0)
        plan.close()
        bw = words * STREAM_BYTES / t.median
        copy_bw = bw if kind == "copy" else copy_bw
        results.append_point(out / results.POINTS_FILE, {"kind": "stream", "asv": False, "backend": args.backend,
                                                          "stream": kind, "bytes": STREAM_BYTES, "seconds": t.median,
                                                          "gbps": bw / 1e9, "status": "ok"})
        print(f"{args.backend} D2D {kind}: {bw / 1e9:.1f} GB/s (float64 arrays of {STREAM_BYTES >> 20} MiB)", flush=True)
    if args.backend != "cupy":
        return 0
    spec = sparsekit.get_kernel("gather_mm")
    for m, k, n in GATHER_SHAPES:
        for frac in GATHER_SELECTED:
            if time.time() + 5 > args.deadline:
                print("deadline: gather fractions cut short", flush=True)
                return 0
            p = sparsekit.make_problem("gather_mm", m=m, k=k, n=n, rows=max(1, int(m * frac)), dtype="float32", seed=0)
            with be.prepare(p) as plan:
                t = time_plan(plan, repeat=5, min_time=0.02, max_time=1.0)
                check = sparsekit.check(p, plan.result())
            moved = spec.compulsory_bytes(p) / t.median
            rec = {"kind": "gather_fraction", "asv": False, "backend": args.backend, "m": m, "k": k, "n": n,
                   "rows": p.params["rows"], "seconds": t.median, "gbps": moved / 1e9, "fraction_of_copy": moved / copy_bw,
                   "path": be.last_path, "check_ok": check.ok, "status": "ok"}
            results.append_point(out / results.POINTS_FILE, rec)
            print(f"gather_mm {m}x{k}x{n}, {rec['rows']} rows: {t.median * 1e6:.1f} us, {moved / 1e9:.1f} GB/s = "
                  f"{moved / copy_bw:.2f} of the copy ({be.last_path})" + ("" if check.ok else "  WRONG RESULT"), flush=True)
    return 0


def calibrate(args) -> int:
    """One backend at a time, saved after each, so a deadline keeps the ones finished."""
    from sparsekit import calibrate as cal

    run = _load(args.run)
    merged = None
    for name in args.backends.split(","):
        result = cal.calibrate([name], quick=True, progress=False)
        if merged is None:
            merged = {**result, "machine": run["machine"]}
        else:
            merged["backends"].update(result["backends"])
            merged["notes"] += result["notes"]
        path = cal.save(merged, str(Path(args.out) / "results"), run["machine"])
        print(cal.table(result), flush=True)
    print(f"calibration: {path}", flush=True)
    return 0 if merged and merged["backends"] else 1


def report(args) -> int:
    from sparsekit import report as rep

    run = _load(args.run)
    root = Path(args.scratch) / "report-results"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(Path(args.out) / "results" / run["machine"], root / run["machine"])
    bench_json = Path(args.repo) / "results" / "benchmarks.json"
    if bench_json.is_file():  # what a committed folder is read with
        shutil.copy(bench_json, root / "benchmarks.json")
    rows = rep.summarize(root, run["machine"])
    results.write_json_atomic(Path(args.json), rows, indent=1, allow_nan=False, default=str)
    rep.main(results_dir=str(root), machine=run["machine"], html_dir=None)  # 1 = no pairs measured: said, not a failure
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gpu_check.workers")
    sub = ap.add_subparsers(dest="name", required=True)
    for name in ("describe", "grid", "bandwidth", "calibrate", "report"):
        p = sub.add_parser(name)
        p.add_argument("--out", default=".")
        p.add_argument("--run")
        p.add_argument("--json")
        p.add_argument("--scratch")
        p.add_argument("--repo")
        p.add_argument("--backend", default="cupy")
        p.add_argument("--backends", default="cupy")
        p.add_argument("--deadline", type=float, default=float("inf"))
    args = ap.parse_args(argv)
    try:
        return {"describe": describe, "grid": grid, "bandwidth": bandwidth, "calibrate": calibrate,
                "report": report}[args.name](args)
    except KeyboardInterrupt:  # the orchestrator's deadline: what was appended stays
        print(f"{args.name}: stopped (deadline or interrupt)", flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Gather kernel bandwidth against a device-to-device copy, measured in the same run (cupy backend).

    python tools/gpu_bandwidth.py [--json FILE] [--quick]

Prints, for the GPU the ``cupy`` backend selects: the STREAM copy and triad bandwidth
(``CupyBackend.stream``: float64 device arrays of 1 GiB each, read + write counted),
then for ``gather_mm`` (Y = W[rows] @ X, float32) at several shapes and selected
fractions the median time, the compulsory bytes moved (the catalogue's model: the
selected rows of W, X, Y and the indices) per second, and that as a fraction of
the copy bandwidth. n = 1 is the bandwidth-bound case (a row-gathering GEMV); n = 64
shows how far the tiled kernel stays from the copy roof when it also computes.

Times come from ``sparsekit.timing.time_plan`` (every call synchronised). Exits 2
with the reason when the backend is unavailable.
"""
from __future__ import annotations

import argparse
import json
import sys

import sparsekit
from sparsekit.timing import time_plan

SHAPES = [(16384, 4096, 1), (65536, 1024, 1), (4096, 4096, 64)]
SELECTED = [0.5, 0.1, 0.01]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--quick", action="store_true", help="256 MiB copy arrays, fewer repeats")
    args = ap.parse_args(argv)
    rec = {r.name: r for r in sparsekit.backends()}["cupy"]
    if not rec.available:
        print(f"backend 'cupy' unavailable: {rec.reason}", file=sys.stderr)
        return 2
    be = sparsekit.backend("cupy")
    repeat = 3 if args.quick else 7
    n_bytes = (256 if args.quick else 1024) << 20
    out = {"device": be.device(), "versions": be.versions(), "stream": {}, "gather_mm": []}
    for kind, words in (("copy", 2), ("triad", 3)):
        t = time_plan(be.stream(kind, n_bytes), repeat=repeat)
        out["stream"][kind] = {"bytes_per_s": words * n_bytes / t.median, "seconds": t.median}
    copy_bw = out["stream"]["copy"]["bytes_per_s"]
    print(f"{be.device()}\nD2D copy {copy_bw / 1e9:.1f} GB/s, triad {out['stream']['triad']['bytes_per_s'] / 1e9:.1f} GB/s")
    print(f"{'gather_mm shape':>22} {'rows':>7} {'time':>10} {'GB/s':>8} {'of copy':>8}")
    spec = sparsekit.get_kernel("gather_mm")
    for m, k, n in SHAPES:
        for frac in SELECTED:
            p = sparsekit.make_problem("gather_mm", m=m, k=k, n=n, rows=max(1, int(m * frac)), dtype="float32", seed=0)
            with be.prepare(p) as plan:
                t = time_plan(plan, repeat=repeat)
                plan()
                check = sparsekit.check(p, plan.result())
            bw = spec.compulsory_bytes(p) / t.median
            row = {"m": m, "k": k, "n": n, "rows": p.params["rows"], "seconds": t.median, "bytes_per_s": bw,
                   "fraction_of_copy": bw / copy_bw, "kernel": be.last_path, "ok": check.ok}
            out["gather_mm"].append(row)
            print(f"{m:>8}x{k}x{n:<6} {row['rows']:>7} {t.median * 1e6:>8.1f}us {bw / 1e9:>8.1f} {bw / copy_bw:>8.2f}"
                  + ("" if check.ok else "  WRONG RESULT"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0 if all(r["ok"] for r in out["gather_mm"]) else 1


if __name__ == "__main__":
    sys.exit(main())

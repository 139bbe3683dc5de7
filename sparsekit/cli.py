"""The ``sparsekit`` command line (a contract: keep options stable).

    sparsekit backends [--json]
    sparsekit run KERNEL --backend numpy,cpu --shape 4096x4096x128 --sparsity 0.5,0.9,0.99
                  [--pattern P] [--format F] [--weights FILE] [--matrix NAME] [--dtype D]
                  [--seed S] [--repeat R] [--json]
    sparsekit report [--results DIR] [--machine NAME] [--json]

Exit status: 0 on success, 1 when a result failed its correctness check or
nothing could run, 2 on bad usage (unknown kernel, backend, malformed option).
"""
from __future__ import annotations

import argparse
import json
import sys

from tabulate import tabulate

from . import __version__


def _floats(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _shape(text: str) -> list[int]:
    try:
        dims = [int(t) for t in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape must look like 4096x4096x128, got {text!r}") from None
    if any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"shape entries must be >= 1, got {text!r}")
    return dims


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="sparsekit", description="Where does sparse beat dense, on this hardware?")
    ap.add_argument("--version", action="version", version=f"sparsekit {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    b = sub.add_parser("backends", help="list registered backends, available or not (with the reason)")
    b.add_argument("--json", action="store_true")

    r = sub.add_parser("run", help="sweep one kernel over sparsity levels on some backends")
    r.add_argument("kernel")
    r.add_argument("--backend", default="numpy,cpu", help="comma-separated backend names (default: numpy,cpu)")
    r.add_argument("--shape", type=_shape, default=None,
                   help="MxKxN for products; MxN for kwta; N_INxN_OUTxSTEPS for lif (default 1024x1024x64)")
    r.add_argument("--sparsity", type=_floats, default=[0.5, 0.9, 0.99], help="comma-separated levels")
    r.add_argument("--pattern", default=None, help="uniform, block, nm, powerlaw, selector, kwta, dlmc")
    r.add_argument("--format", default=None, help="spmm storage: csr, bsr, nm")
    r.add_argument("--blocksize", type=_shape, default=None, help="block pattern / bsr block, e.g. 4x4")
    r.add_argument("--weights", default=None, help=".npz/.npy/.smtx file (sets M and K; sweep has one level)")
    r.add_argument("--matrix", default=None, help="DLMC matrix short name (with --pattern dlmc)")
    r.add_argument("--experts", type=int, default=None, help="moe: number of experts")
    r.add_argument("--top-k", type=int, default=None, help="moe: experts per token")
    r.add_argument("--dtype", default="float32")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--repeat", type=int, default=7, help="timed repeats per point (median kept)")
    r.add_argument("--json", action="store_true")
    r.add_argument("--no-progress", action="store_true")

    rep = sub.add_parser("report", help="break-even summary from asv results")
    rep.add_argument("--results", default="results", help="asv results folder (default: results)")
    rep.add_argument("--machine", default=None, help="only this machine's results")
    rep.add_argument("--json", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "backends":
            return _cmd_backends(args)
        if args.command == "run":
            return _cmd_run(args)
        return _cmd_report(args)
    except (KeyError, ValueError, TypeError, FileNotFoundError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"sparsekit: error: {msg}", file=sys.stderr)
        return 2


def _cmd_backends(args) -> int:
    from .registry import backends

    recs = backends()
    if args.json:
        print(json.dumps([{"name": r.name, "available": r.available, "reason": r.reason, "device": r.device,
                           "kernels": {k: list(v) for k, v in r.kernels.items()}, "dtypes": list(r.dtypes)}
                          for r in recs], indent=2))
        return 0
    table = [[r.name, "yes" if r.available else "no", r.device, ", ".join(r.kernels), r.reason] for r in recs]
    print(tabulate(table, headers=["name", "available", "device", "kernels", "reason"]))
    return 0


def _problem_grid(args) -> list[dict]:
    k = args.kernel
    shape = args.shape
    base: dict = {}
    if k == "lif":
        if shape is not None and len(shape) > 3:
            raise ValueError(f"lif: --shape needs N_INxN_OUTxSTEPS, got {'x'.join(map(str, shape))}")
        n_in, n_out, steps = (shape or [1000, 1000, 100]) + [100] * (3 - len(shape or [1, 1, 1]))
        base = {"n_in": n_in, "n_out": n_out, "steps": steps}
    elif k == "kwta":
        if shape is not None and len(shape) != 2:
            raise ValueError(f"kwta: --shape needs MxN, got {'x'.join(map(str, shape))}")
        m, n = shape or [1024, 64]
        base = {"m": m, "n": n}
    else:
        dims = shape or [1024, 1024, 64]
        if len(dims) != 3:
            raise ValueError(f"{k}: --shape needs MxKxN, got {'x'.join(map(str, dims))}")
        base = {"m": dims[0], "k": dims[1], "n": dims[2]}
    for opt, key in (("pattern", "pattern"), ("format", "format"), ("matrix", "matrix"),
                     ("experts", "experts"), ("top_k", "top_k")):
        if getattr(args, opt) is not None:
            base[key] = getattr(args, opt)
    if args.blocksize is not None:
        base["blocksize"] = tuple(args.blocksize[:2])
    if args.weights is not None:  # the file sets the weight matrix's dimensions
        for key in ("m", "k", "n_in", "n_out"):
            base.pop(key, None)
        base["weights"] = args.weights
        return [base]
    if k == "moe":
        return [base]  # its sparsity is 1 - top_k/experts
    return [{**base, "sparsity": s} for s in args.sparsity]


def _cmd_run(args) -> int:
    from .kernels import get_kernel
    from .sweep import rows_as_dicts, sweep

    get_kernel(args.kernel)
    names = [b.strip() for b in args.backend.split(",") if b.strip()]
    from .registry import backend_names

    known = backend_names()
    for name in names:
        if name not in known:
            raise KeyError(f"unknown backend {name!r}: registered are {', '.join(known)}")
    rows, be, notes = sweep(args.kernel, names, _problem_grid(args), dtype=args.dtype, seed=args.seed,
                            repeat=args.repeat, progress=not (args.no_progress or args.json))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps({"rows": rows_as_dicts(rows), "break_even": {k: str(v) for k, v in be.items()},
                          "notes": notes}, indent=2, default=str))
    else:
        table = [[r.backend, r.shape, _fmt(r.sparsity, ".3f"), _ms(r.time_s), _fmt(r.speedup, ".2f"),
                  _fmt(r.error, ".1e"), _fmt(r.gflops, ".2f"), _fmt(r.gbps, ".2f"),
                  r.status + (f": {r.detail}" if r.detail else "")] for r in rows]
        print(tabulate(table, headers=["backend", "shape", "sparsity", "median ms", "vs dense", "error",
                                       "eff GFLOP/s", "GB/s", "status"]))
        if be:
            print()
            print(tabulate([[k, str(v)] for k, v in be.items()], headers=["backend", "break-even sparsity"]))
    if any(r.status in ("FAIL", "error") for r in rows) or not any(r.status == "ok" for r in rows):
        return 1
    return 0


def _fmt(v, spec: str) -> str:
    return "" if v is None else format(v, spec)


def _ms(t) -> str:
    return "" if t is None else f"{t * 1e3:.4g}"


def _cmd_report(args) -> int:
    from . import report

    return report.main(args.results, machine=args.machine, fmt="json" if args.json else "table")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

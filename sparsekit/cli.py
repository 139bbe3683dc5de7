"""The ``sparsekit`` command line (a contract: keep options stable).

    sparsekit backends [--json]
    sparsekit run KERNEL --backend numpy,cpu --shape 4096x4096x128 --sparsity 0.5,0.9,0.99
                  [--pattern P] [--format F] [--blocksize BxB] [--weights FILE] [--matrix NAME]
                  [--experts E] [--top-k K] [--dtype D] [--seed S] [--repeat R]
                  [--timeout SECONDS] [--in-process] [--force] [--output FILE.json]
                  [--json] [--no-progress]
    sparsekit run RECIPE --backend ... [--seed S] [--repeat R] [--quick] [--json] [--no-progress]
    sparsekit calibrate [--backend B] [--results DIR] [--machine NAME] [--quick] [--json] [--no-progress]
    sparsekit report [--results DIR] [--machine NAME] [--json] [--html DIR | --no-html]

``run`` executes each backend in its own worker process with a per-problem
``--timeout``: a backend that crashes, hangs, raises or runs out of memory is a
row marked ``crashed``/``timeout``/``error``/``oom`` with the reason, and
everything else is still printed and saved (``--in-process`` turns this off,
for debugging). ``--output`` rewrites a JSON result file atomically after every
row; ``--json`` prints the same document (schema:
``sparsekit/schemas/run.schema.json``, draft 2020-12). A problem whose
estimated footprint exceeds the available memory is refused unless ``--force``.

Exit status (every command):

    0    success
    1    a result failed its correctness check (FAIL), or nothing could run
    2    bad usage: unknown kernel/backend, malformed option, unreadable input file, problem too large
    3    a backend crashed, hung (timeout), raised or ran out of memory (and nothing FAILed)
    130  interrupted (Ctrl-C or SIGTERM); what finished is printed and saved
"""
from __future__ import annotations

import argparse
import json
import sys

from . import __version__

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_FAULT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

EXIT_CODES = """exit status:
  0    success
  1    a result failed its correctness check (FAIL), or nothing could run
  2    bad usage (unknown kernel/backend, malformed option, bad input file, problem too large)
  3    a backend crashed, hung (timeout), raised or ran out of memory
  130  interrupted (Ctrl-C or SIGTERM); finished rows are still printed and saved"""


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


def _seconds(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"--timeout must be >= 0 (0: no limit), got {text!r}")
    return v or None


def _recipes() -> dict:
    """Workload recipes (``sparsekit.workloads.RECIPES``); empty when that package cannot be imported."""
    try:
        from . import workloads
    except Exception:  # noqa: BLE001 - a broken recipe module must not break `sparsekit run KERNEL`
        return {}
    return dict(getattr(workloads, "RECIPES", {}) or {})


def _run_epilog(with_recipes: bool) -> str:
    from .kernels import kernels

    text = "kernels: " + ", ".join(kernels())
    if with_recipes:
        rec = _recipes()
        if rec:
            text += "\nworkload recipes (sparsekit run NAME):\n" + "\n".join(
                f"  {name:12s} {getattr(r, 'help', '')}" for name, r in rec.items())
    return text + "\n\n" + EXIT_CODES


def _shape_help() -> str:
    """Each kernel's ``--shape`` axes and default, from its spec (``KernelSpec.shape_axes``)."""
    from .kernels import specs

    return "; ".join(f"{s.name} {'x'.join(a.upper() for a in s.shape_axes)} (default {'x'.join(map(str, s.example_shape))})"
                     for s in specs())


def _parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    argv = sys.argv[1:] if argv is None else argv
    raw = argparse.RawDescriptionHelpFormatter
    ap = argparse.ArgumentParser(prog="sparsekit", description="Where does sparse beat dense, on this hardware?",
                                 epilog=EXIT_CODES, formatter_class=raw)
    ap.add_argument("--version", action="version", version=f"sparsekit {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    b = sub.add_parser("backends", help="list registered backends, available or not (with the reason)",
                       description="List every registered backend, available or not (with the reason), "
                                   "without importing any heavy library.", epilog=EXIT_CODES, formatter_class=raw)
    b.add_argument("--json", action="store_true", help="print a JSON list instead of a table")

    # recipe names are only looked up when the command is `run` (keeps `backends` light)
    r = sub.add_parser("run", help="sweep one kernel over sparsity levels, or run a workload recipe",
                       description="Sweep KERNEL over sparsity levels on some backends (each in a worker "
                                   "process), or run a workload RECIPE.",
                       epilog=_run_epilog("run" in argv), formatter_class=raw)
    r.add_argument("kernel", metavar="KERNEL|RECIPE", nargs="?",
                   help="a kernel of the catalogue or a workload recipe (below); none with --quick: `sparsekit quick`")
    r.add_argument("--backend", default="numpy,cpu", help="comma-separated backend names (default: numpy,cpu)")
    r.add_argument("--shape", type=_shape, default=None,
                   help="the kernel's shape axes: " + _shape_help() if "run" in argv else "the kernel's shape axes")
    r.add_argument("--sparsity", type=_floats, default=[0.5, 0.9, 0.99], help="comma-separated levels")
    r.add_argument("--pattern", default=None, help="uniform, block, nm, powerlaw, selector, kwta, dlmc")
    r.add_argument("--format", default=None, help="spmm storage: csr, bsr, nm")
    r.add_argument("--blocksize", type=_shape, default=None, help="block pattern / bsr block, e.g. 4x4")
    r.add_argument("--weights", default=None, help=".npz/.npy/.smtx file (sets M and K; sweep has one level)")
    r.add_argument("--matrix", default=None, help="DLMC matrix short name (with --pattern dlmc)")
    r.add_argument("--experts", type=int, default=None, help="moe: number of experts")
    r.add_argument("--top-k", type=int, default=None, help="moe: experts per token")
    r.add_argument("--dtype", default="float32")
    r.add_argument("--seed", type=int, default=0, help="problem seed (recorded in the output)")
    r.add_argument("--repeat", type=int, default=7, help="timed repeats per point (median kept)")
    r.add_argument("--timeout", type=_seconds, default=600.0, metavar="SECONDS",
                   help="per problem and backend, prepare + dense baseline + timing included; a backend "
                        "past it is killed and marked timeout (default 600; 0: no limit)")
    r.add_argument("--in-process", action="store_true",
                   help="run backends in this process, without workers: no crash or hang protection (debugging)")
    r.add_argument("--force", action="store_true",
                   help="run problems whose estimated memory footprint exceeds the memory available")
    r.add_argument("--output", default=None, metavar="FILE.json",
                   help="write the results (same document as --json) to FILE, rewritten after every row")
    r.add_argument("--quick", action="store_true",
                   help="recipes: smaller problems and fewer repeats; without KERNEL: the quick headline (sparsekit quick)")
    r.add_argument("--explain", action="store_true",
                   help="after the table, each row's strategy: what the backend's inspector chose and why")
    r.add_argument("--json", action="store_true", help="print a JSON document (schema: sparsekit/schemas/run.schema.json)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    q = sub.add_parser("quick", help="the headline for this machine in a few minutes, without asv",
                       description="Run every kernel's default grid and the Selector and DLMC workloads on the default "
                                   "CPU backends in this process (short timing protocol), write the results as asv "
                                   "files under .quick/results/ and print the headline; the HTML report goes to "
                                   "html/quick/.", epilog=EXIT_CODES, formatter_class=raw)
    q.add_argument("--backend", default=None, help="comma-separated backend names (default: numpy,cpu,torch,scipy,opencl, "
                                                   "those available)")
    q.add_argument("--results", default=None, metavar="DIR", help="results folder (default: .quick/results)")
    q.add_argument("--html", default=None, metavar="DIR", help="report folder (default: html/quick)")
    q.add_argument("--no-progress", action="store_true", help="do not print each step on stderr")

    cmp_ = sub.add_parser("compare", help="what changed between two commits' results of a machine, and whether it is real",
                          description="Compare the two newest commits of a machine's asv results (or --base/--head) "
                                      "the way `asv compare` does (the project's factor, asv's statistical test); "
                                      "--confirm re-measures flagged changes with both commits side by side; --run BASE "
                                      "measures BASE and HEAD side by side first (the regression gate: with --gate, exit "
                                      "1 on a confirmed slowdown, accuracy loss or new failure).",
                          epilog=EXIT_CODES, formatter_class=raw)
    cmp_.add_argument("--results", default="results", metavar="DIR", help="asv results folder (default: results)")
    cmp_.add_argument("--machine", default=None, help="machine folder (default: this host's machine name)")
    cmp_.add_argument("--base", default=None, metavar="COMMIT", help="older commit (default: the one before --head)")
    cmp_.add_argument("--head", default=None, metavar="COMMIT", help="newer commit (default: the newest measured)")
    cmp_.add_argument("--factor", type=float, default=None, help="ratio that counts as a change (default: 1.3)")
    cmp_.add_argument("--confirm", action="store_true", help="re-measure flagged changes on both commits side by side")
    cmp_.add_argument("--run", default=None, metavar="BASE",
                      help="first measure BASE (a git revision) and HEAD side by side into .asv/compare/ "
                           "(the default grid, or --bench), then compare and confirm")
    cmp_.add_argument("--bench", action="append", default=None, metavar="REGEX", help="with --run: asv -b filter")
    cmp_.add_argument("--gate", action="store_true", help="exit 1 on a confirmed regression")
    cmp_.add_argument("--launch-method", default=None, help="asv's launch method for re-measurements")
    cmp_.add_argument("--json", action="store_true", help="print the changes as JSON")

    c = sub.add_parser("calibrate", help="measure each backend's peak GFLOP/s and bandwidth (roofline limits)",
                       description="Measure each backend's attainable peak (float32 GEMM) and memory bandwidth "
                                   "(STREAM triad) and save them beside the results; `run` then reports the "
                                   "fraction of this roofline each kernel reaches.",
                       epilog=EXIT_CODES, formatter_class=raw)
    try:
        from .calibrate import configure_parser
    except ImportError as e:
        c.set_defaults(calibrate_unavailable=f"sparsekit.calibrate cannot be imported ({e})")
    else:
        configure_parser(c)

    rep = sub.add_parser("report", help="the headline, verdicts and tables from asv results, and the HTML report",
                         description="Print where sparse beats dense on each machine (the headline) and the verdicts "
                                     "on the field's claims, from the asv results, and write the HTML report.",
                         epilog=EXIT_CODES, formatter_class=raw)
    rep.add_argument("--results", default="results", help="asv results folder (default: results)")
    rep.add_argument("--machine", default=None, help="only this machine's results")
    rep.add_argument("--json", action="store_true",
                     help="print one JSON document: headline, verdicts, break-even rows (schema: report.schema.json)")
    rep.add_argument("--all", action="store_true", dest="all_tables",
                     help="print every table (each backend's own-dense break-even, accuracy, workloads, "
                          "calibration, roofline) before the headline")
    html = rep.add_mutually_exclusive_group()
    html.add_argument("--html", default=None, metavar="DIR",
                      help="folder of the HTML report (default: html/report beside the results folder)")
    html.add_argument("--no-html", action="store_true", help="do not write the HTML report")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser(argv).parse_args(argv)
    try:
        if args.command == "backends":
            return _cmd_backends(args)
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "calibrate":
            return _cmd_calibrate(args)
        if args.command == "quick":
            return _cmd_quick(args)
        if args.command == "compare":
            return _cmd_compare(args)
        return _cmd_report(args)
    except (KeyError, ValueError, TypeError, FileNotFoundError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"sparsekit: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("sparsekit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _cmd_backends(args) -> int:
    from tabulate import tabulate

    from .registry import backends

    recs = backends()
    if args.json:
        print(json.dumps([{"name": r.name, "available": r.available, "reason": r.reason, "device": r.device,
                           "kernels": {k: list(v) for k, v in r.kernels.items()}, "dtypes": list(r.dtypes)}
                          for r in recs], indent=2))
        return EXIT_OK
    table = [[r.name, "yes" if r.available else "no", r.device, ", ".join(r.kernels), r.reason] for r in recs]
    print(tabulate(table, headers=["name", "available", "device", "kernels", "reason"]))
    return EXIT_OK


def _problem_grid(args) -> list[dict]:
    """make_problem parameter sets of a sweep: the shape along the kernel's ``shape_axes``
    (``KernelSpec``), one set per ``--sparsity`` level when the kernel sweeps it."""
    from .kernels import get_kernel

    spec = get_kernel(args.kernel)
    base: dict = spec.params_from_shape(args.shape if args.shape is not None else spec.example_shape)
    for opt, key in (("pattern", "pattern"), ("format", "format"), ("matrix", "matrix"),
                     ("experts", "experts"), ("top_k", "top_k")):
        if getattr(args, opt) is not None:
            base[key] = getattr(args, opt)
    if args.blocksize is not None:
        base["blocksize"] = tuple(args.blocksize[:2])
    if args.weights is not None:  # the file sets the weight matrix's dimensions
        from .io import as_csr

        for key in spec.shape_axes[:2]:
            base.pop(key, None)
        # vet the file here, once: a hostile or broken file is a usage error before any worker starts
        as_csr(args.weights)
        base["weights"] = args.weights
        return [base]
    if spec.sweep_param != "sparsity":
        return [base]  # e.g. moe: its sparsity is 1 - top_k/experts
    for s in args.sparsity:
        if not 0.0 <= s <= 1.0:
            raise ValueError(f"--sparsity levels must lie in [0, 1], got {s:g}")
    return [{**base, "sparsity": s} for s in args.sparsity]


def _backend_list(text: str) -> list[str]:
    from .registry import backend_names

    names = [b.strip() for b in text.split(",") if b.strip()]
    if not names:
        raise ValueError("--backend names no backend")
    known = backend_names()
    for name in names:
        if name not in known:
            raise KeyError(f"unknown backend {name!r}: registered are {', '.join(known)}")
    return names


def _cmd_compare(args) -> int:
    from . import changes

    factor = args.factor or changes.FACTOR
    if args.run:
        return changes.run_gate(args.run, bench=args.bench, factor=factor, machine=args.machine,
                                launch=args.launch_method, as_json=args.json, gate_exit=args.gate)
    return changes.main(args.results, args.machine, args.base, args.head, factor=factor, do_confirm=args.confirm,
                        as_json=args.json, gate_exit=args.gate, launch=args.launch_method)


def _cmd_quick(args) -> int:
    from . import quick

    names = _backend_list(args.backend) if getattr(args, "backend", None) and args.command == "quick" else None
    return quick.main(names, results_dir=getattr(args, "results", None) or quick.RESULTS_DIR,
                      html_dir=getattr(args, "html", None) or quick.HTML_DIR, progress=not args.no_progress)


def _cmd_run(args) -> int:
    from .kernels import get_kernel, kernels

    if args.kernel is None:
        if args.quick:
            return _cmd_quick(args)
        raise ValueError("run needs a KERNEL or RECIPE (see `sparsekit run --help`), or --quick for the quick headline")
    if args.kernel not in kernels():
        recipes = _recipes()
        if args.kernel in recipes:
            return _cmd_recipe(args, recipes[args.kernel])
        get_kernel(args.kernel)  # UnknownKernelError naming the catalogue
    return _cmd_sweep(args)


def _cmd_recipe(args, recipe) -> int:
    from tabulate import tabulate

    names = _backend_list(args.backend)
    res = recipe.run(names, seed=args.seed, repeat=args.repeat, progress=not (args.no_progress or args.json),
                     quick=args.quick)
    from .runfile import clean, write_atomic

    doc = clean({"workload": res.name, "data": res.data, "notes": list(res.notes)})  # strict JSON: NaN -> null
    if args.output:
        write_atomic(args.output, doc)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        for title, headers, rows in res.tables:
            print(title)
            print(tabulate(rows, headers=headers))
            print()
        for note in res.notes:
            print(f"note: {note}", file=sys.stderr)
    return EXIT_FAIL if res.failed else EXIT_OK


def _cmd_sweep(args) -> int:
    from tabulate import tabulate

    from . import runfile
    from .kernels import get_kernel
    from .preflight import check_fits
    from .measure import FAULTS
    from .sweep import break_even_table, sweep

    get_kernel(args.kernel)
    names = _backend_list(args.backend)
    grid = _problem_grid(args)
    if not args.force:
        for params in grid:
            check_fits(args.kernel, params, args.dtype)  # TooLarge (a ValueError): exit 2 with the sizes
    roof = _Roofline(args.kernel)
    record = runfile.RunRecord(args.kernel, names, dtype=args.dtype, seed=args.seed, argv=sys.argv,
                               isolated=not args.in_process, timeout=args.timeout, path=args.output)
    rows: list = []

    def on_row(row) -> None:
        roof.fill(row)
        rows.append(row)
        record.add(row)

    interrupted = False
    notes: list[str] = []
    restore = _sigterm_as_interrupt()
    try:
        rows, be, notes = sweep(args.kernel, names, grid, dtype=args.dtype, seed=args.seed, repeat=args.repeat,
                                progress=not (args.no_progress or args.json), isolate=not args.in_process,
                                timeout=args.timeout, on_row=on_row, on_backend=record.backend, notes=notes)
    except KeyboardInterrupt:  # workers are already killed; keep and report what finished
        interrupted = True
        notes.append(f"interrupted: {len(rows)} finished row(s) kept")
        be = break_even_table(rows, names)
    finally:
        restore()
    notes += roof.notes
    record.finish(rows, be, notes, interrupted=interrupted)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(record.document(), indent=2))
    else:
        if roof.hint:
            print(f"note: {roof.hint}", file=sys.stderr)
        show_roof = any(r.roofline is not None for r in rows)
        table = [[r.backend, r.shape, _fmt(r.sparsity, ".3f"), _ms(r.time_s), _fmt(r.speedup, ".2f"),
                  _fmt(r.error, ".1e"), _fmt(r.gflops, ".2f"), _fmt(r.gbps, ".2f")]
                 + ([_fmt(r.roofline, ".1%")] if show_roof else [])
                 + [r.status + (f": {r.detail}" if r.detail else "")] for r in rows]
        print(tabulate(table, headers=["backend", "shape", "sparsity", "median ms", "vs dense", "error",
                                       "eff GFLOP/s", "GB/s"] + (["roofline"] if show_roof else []) + ["status"]))
        if be:
            print()
            print(tabulate([[k, str(v)] for k, v in be.items()], headers=["backend", "break-even sparsity"]))
        if args.explain:
            print()
            chosen = [[r.backend, r.shape, _fmt(r.sparsity, ".3f"), r.strategy] for r in rows if r.strategy]
            print(tabulate(chosen, headers=["backend", "shape", "sparsity", "strategy (inspector's choice and why)"])
                  if chosen else "no backend here records a strategy (the cpu backend does: plan.strategy)")
    if args.output:
        print(f"saved {args.output}", file=sys.stderr)
    if interrupted:
        return EXIT_INTERRUPTED
    return run_status(rows, FAULTS)


def _sigterm_as_interrupt():
    """Treat SIGTERM (a CI job cancelled, ``kill``) like Ctrl-C during a sweep; returns the undo."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def run_status(rows, faults=("error", "oom", "crashed", "timeout")) -> int:
    """The exit status of a sweep's rows: FAIL beats faults beats "nothing ran"."""
    if any(r.status == "FAIL" for r in rows):
        return EXIT_FAIL
    if any(r.status in faults for r in rows):
        return EXIT_FAULT
    if not any(r.status == "ok" for r in rows):
        return EXIT_FAIL
    return EXIT_OK


class _Roofline:
    """Fills ``Row.roofline`` from this machine's saved calibration (``sparsekit calibrate``): the
    fraction of the machine's limits, the bandwidth that of the level the problem's footprint fits in."""

    def __init__(self, kernel: str):
        from .roofline import Ceilings

        self.notes: list[str] = []
        self.ceilings = None
        self.hint = ""
        try:
            from . import calibrate

            calib = calibrate.load()
        except ImportError:
            return
        except ValueError as e:  # a corrupt calibration file: say so, measure anyway
            self.notes.append(f"roofline: {e}")
            return
        self.ceilings = Ceilings.from_calibration(calib)
        #: said once on stderr (table output only): a hint, not a fact about this run's rows
        if self.ceilings is None:
            self.hint = "no calibration for this machine: `sparsekit calibrate` adds a roofline column"
        elif not self.ceilings.cache_levels:
            self.hint = ("this machine's calibration predates per-level bandwidths: cache-resident problems get no "
                         "roofline figure until `sparsekit calibrate` runs again")

    def fill(self, row) -> None:
        if self.ceilings is None or row.time_s is None or row.gflops is None or row.gbps is None:
            return
        # gflops/gbps were derived from the effective MACs (2 FLOPs each) and compulsory bytes over time_s
        flops, nbytes = row.gflops * 1e9 * row.time_s, row.gbps * 1e9 * row.time_s
        row.roofline, _ = self.ceilings.fraction(flops, nbytes, row.time_s)


def _fmt(v, spec: str) -> str:
    return "" if v is None else format(v, spec)


def _ms(t) -> str:
    return "" if t is None else f"{t * 1e3:.4g}"


def _cmd_calibrate(args) -> int:
    if getattr(args, "calibrate_unavailable", None):
        print(f"sparsekit calibrate: {args.calibrate_unavailable}", file=sys.stderr)
        return EXIT_USAGE
    from .calibrate import run_cli

    return run_cli(args)


def _cmd_report(args) -> int:
    from . import report

    kwargs = {}
    if args.no_html:
        kwargs["html_dir"] = None
    elif args.html is not None:
        kwargs["html_dir"] = args.html
    return report.main(args.results, machine=args.machine, fmt="json" if args.json else "table",
                       all_tables=args.all_tables, **kwargs)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

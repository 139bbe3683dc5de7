"""``sparsekit calibrate``: each backend's machine limits, for roofline fractions.

Per backend (its device, measured through the backend interface, never by
importing a backend module):

* memory bandwidth, STREAM copy (a = b) and triad (a = b + q c) on float64
  arrays far larger than the last-level cache (4 x LLC, at least 128 MiB each;
  ``quick``: 2 x LLC, at least 32 MiB), best of several passes, bytes counted as
  STREAM counts them: 2 words per element for copy, 3 for triad (the
  write-allocate read is not counted). The arrays come from ``Backend.stream``;
  its default (``sparsekit.host.stream_pass``) streams host memory with one thread per core,
  because a NumPy ufunc is single-threaded and one core cannot saturate a
  memory controller. A backend with its own device or thread pool overrides it.
* dense GEMM peak: the backend's own ``dense_mm`` plan on square n x n x n
  problems, n doubled from 256 until one call lasts ``GEMM_TARGET_S`` (or 8192),
  and on the suite's panel shapes (``GEMM_PANELS``); the best rate, each the best
  of several calls, in float32 (the benchmark dtype; ``gemm_gflops``) and,
  unless ``quick``, float64 too (``details["gemm"]``). A sample of the result's
  rows is checked against the float64 oracle so a wrong GEMM cannot set a peak.

Units: GB/s and GFLOP/s are 1e9 bytes and 1e9 floating-point operations per
second; one multiply-accumulate (the catalogue's ``Ops``) is 2 FLOPs.

Roofline fraction of a measured call: ``sparsekit.roofline.roofline_fraction``.

The result is a dict (``calibrate``), saved as ``results/<machine>/calibration.json``
beside the asv results (``save``/``load``)::

    {"machine": ..., "created": ISO-8601 UTC, "versions": {...}, "notes": [...],
     "backends": {name: {"device", "copy_gbps", "triad_gbps", "gemm_gflops",
                         "threads", "details": {...}}}}

A figure that could not be measured is ``None`` (with a note saying why); an
unavailable backend appears only in ``notes``, with its reason.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import pathlib
import platform
import sys
import time

import numpy as np

from . import host
from .timing import best_seconds
from .host import STREAM_WORDS, cpu_description, machine_name

#: seconds one GEMM call should last at the chosen size (long enough for clocks and caches to settle)
GEMM_TARGET_S = 0.1
GEMM_TARGET_QUICK_S = 0.03
GEMM_SIZES = (256, 512, 1024, 2048, 4096, 8192)
MiB = 1 << 20
FILENAME = "calibration.json"


def stream_bytes(quick: bool = False) -> int:
    """Bytes per STREAM array: well beyond the last-level cache (see the module doc)."""
    llc = host.cache_sizes().llc
    return max(2 * llc, 32 * MiB) if quick else max(4 * llc, 128 * MiB)


# -- measurements ----------------------------------------------------------------------

def measure_stream(be, kind: str, n_bytes: int, repeats: int = 5) -> dict | None:
    """{"gbps", "seconds", "bytes_per_array"} of the backend's STREAM ``kind``; None if it has none."""
    plan = be.stream(kind, n_bytes)
    if plan is None:
        return None
    with plan:
        sec = best_seconds(plan, repeats)
    n = int(n_bytes) // 8
    return {"gbps": STREAM_WORDS[kind] * 8 * n / sec / 1e9, "seconds": sec, "bytes_per_array": 8 * n}


def _sampled_check(problem, result, rows: int = 16, allowance=None) -> str | None:
    """None when a sample of result rows meets the dtype's rounding bound (plus the backend's
    documented ``error_allowance``, if any), else what is wrong."""
    from .kernels.base import accumulation_bound

    w, x = problem.inputs["w"], problem.inputs["x"]
    idx = np.linspace(0, w.shape[0] - 1, min(rows, w.shape[0])).astype(np.int64)
    w64, x64 = w[idx].astype(np.float64), x.astype(np.float64)
    ref = w64 @ x64
    got = np.asarray(result)[idx].astype(np.float64)
    bound = accumulation_bound(w.shape[1], problem.dtype, np.abs(w64) @ np.abs(x64))
    if allowance is not None:
        allowance = np.asarray(allowance, dtype=np.float64)
        bound = bound + (allowance[idx] if allowance.ndim == 2 else allowance)
    if not np.all(np.isfinite(got)):
        return "result holds NaN or Inf"
    excess = np.abs(got - ref) - bound
    if excess.size and excess.max() > 0:
        return f"result differs from the float64 oracle beyond the {problem.dtype} rounding bound"
    return None


#: panel shapes (m, k, n) of the suite's dense baselines: a backend's GEMM can run
#: faster on these than on squares of the size measured (PoCL's register-blocked
#: kernel did: 2x), and a "peak" below a rate the suite reaches is no roof
GEMM_PANELS = ((2048, 2048, 64), (4096, 4096, 128))


def _gemm_rate(be, m: int, k: int, n: int, dtype: str, repeats: int, target: float | None) -> dict | None:
    """{"gflops", "shape", "seconds"} of one dense_mm shape; None when a call is shorter than ``target``."""
    from .kernels import make_problem

    problem = make_problem("dense_mm", m=m, k=k, n=n, dtype=dtype, seed=0)
    plan = be.prepare(problem)
    try:
        plan()  # warm-up
        t0 = time.perf_counter()
        plan()
        once = time.perf_counter() - t0
        if target is not None and once < target:
            return None
        sec = min(once, best_seconds(plan, repeats - 1)) if repeats > 1 else once
        allow = getattr(be, "error_allowance", None)
        problem_ = _sampled_check(problem, plan.result(), allowance=allow(problem) if callable(allow) else None)
        if problem_:
            raise RuntimeError(f"dense_mm {m}x{k}x{n} {dtype}: {problem_}")
        return {"gflops": 2.0 * m * k * n / sec / 1e9, "shape": f"{m}x{k}x{n}", "n": max(m, k, n), "seconds": sec}
    finally:
        plan.close()


def measure_gemm(be, dtype: str = "float32", quick: bool = False, repeats: int | None = None) -> dict:
    """{"gflops", "shape", "n", "seconds"} of the backend's best dense_mm (see the module doc):
    the first square size whose call lasts the target time, and the suite's panel shapes.

    Raises ``sparsekit.Unsupported`` when the backend has no dense_mm in ``dtype``,
    and ``RuntimeError`` when its result fails the sampled oracle check.
    """
    target = GEMM_TARGET_QUICK_S if quick else GEMM_TARGET_S
    repeats = repeats or (3 if quick else 5)
    best = None
    for n in GEMM_SIZES:
        best = _gemm_rate(be, n, n, n, dtype, repeats, None if n == GEMM_SIZES[-1] else target)
        if best is not None:
            break
    for shape in GEMM_PANELS[:1] if quick else GEMM_PANELS:
        r = _gemm_rate(be, *shape, dtype, repeats, None)
        if r["gflops"] > best["gflops"]:
            best = r
    return best


def _versions() -> dict:
    import scipy

    from . import __version__

    return {"sparsekit": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__}


def _say(progress: bool, text: str) -> None:
    if progress:
        print(f"calibrate: {text}", file=sys.stderr, flush=True)


def _calibrate_one(name: str, be, quick: bool, progress: bool, notes: list) -> dict:
    from . import registry
    from ._errors import Unsupported
    from .backend import Backend

    n_bytes = stream_bytes(quick)
    repeats = 3 if quick else 5
    entry = {"device": be.device(), "copy_gbps": None, "triad_gbps": None, "gemm_gflops": None, "threads": None,
             "details": {"versions": be.versions(), "stream": {}, "gemm": {},
                         "stream_source": "host threads (Backend.stream default)"
                         if type(be).stream is Backend.stream else f"{name}'s own Backend.stream"}}
    threads = getattr(be, "threads", None)
    entry["threads"] = int(threads()) if callable(threads) else host.thread_policy()
    for kind in ("copy", "triad"):
        _say(progress, f"{name}: STREAM {kind}, {n_bytes // MiB} MiB per array")
        try:
            got = measure_stream(be, kind, n_bytes, repeats)
        except Exception as e:  # a backend's hook failing must not lose the other figures
            notes.append(f"{name}: STREAM {kind} failed: {type(e).__name__}: {e}")
            continue
        if got is None:
            notes.append(f"{name}: no STREAM {kind} (its Backend.stream returns None)")
            continue
        entry[f"{kind}_gbps"] = got["gbps"]
        entry["details"]["stream"][kind] = got
    rec = {r.name: r for r in registry.backends()}.get(name)
    dtypes = ("float32",) if quick else ("float32", "float64")
    for dtype in dtypes:
        if rec is not None and rec.dtypes and dtype not in rec.dtypes:
            notes.append(f"{name}: no GEMM peak in {dtype} (the backend does not do that dtype)")
            continue
        _say(progress, f"{name}: dense_mm peak, {dtype}")
        try:
            got = measure_gemm(be, dtype, quick=quick)
        except Unsupported as e:
            notes.append(f"{name}: no GEMM peak in {dtype}: {e.reason}")
            continue
        except RuntimeError as e:
            notes.append(f"{name}: GEMM peak not recorded: {e}")
            continue
        entry["details"]["gemm"][dtype] = got
        if dtype == "float32":
            entry["gemm_gflops"] = got["gflops"]
    return entry


def calibrate(backends: list[str], *, quick: bool = False, progress: bool = True) -> dict:
    """Measure each backend's STREAM bandwidth and GEMM peak (see the module doc for the dict).

    Unknown names raise ``UnknownBackendError``; an unavailable backend gets a note
    with its reason and no entry. ``quick`` uses smaller arrays, fewer repeats and
    float32 only (a smoke run, less accurate). ``progress`` prints each step on stderr.
    """
    from . import registry
    from ._errors import BackendUnavailable, UnknownBackendError

    if isinstance(backends, str):
        backends = [b.strip() for b in backends.split(",") if b.strip()]
    known = registry.backend_names()
    unknown = [b for b in backends if b not in known]
    if unknown:
        raise UnknownBackendError(f"unknown backend(s) {', '.join(unknown)}: registered are {', '.join(known) or 'none'}")
    notes: list[str] = []
    out = {"machine": machine_name(), "cpu": cpu_description(),
           "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "versions": _versions(), "quick": bool(quick), "backends": {}, "notes": notes}
    for name in dict.fromkeys(backends):
        try:
            be = registry.backend(name)
        except BackendUnavailable as e:
            notes.append(f"{name}: unavailable: {e.reason}")
            _say(progress, f"{name}: skipped, unavailable: {e.reason}")
            continue
        out["backends"][name] = _calibrate_one(name, be, quick, progress, notes)
    return out


# -- storage -----------------------------------------------------------------------------

def path_for(results_dir="results", machine: str | None = None) -> pathlib.Path:
    return pathlib.Path(results_dir) / (machine or machine_name()) / FILENAME


def save(result: dict, results_dir="results", machine: str | None = None) -> pathlib.Path:
    """Write ``result`` to ``<results_dir>/<machine>/calibration.json`` (machine: this host's asv name)."""
    path = path_for(results_dir, machine)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_json_clean(result), indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def load(results_dir="results", machine: str | None = None) -> dict | None:
    """The saved calibration, or None when there is none; ``ValueError`` naming a corrupt file."""
    path = path_for(results_dir, machine)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ValueError(f"{path}: not a calibration file ({e}); rerun `sparsekit calibrate`") from None
    if not isinstance(data, dict) or not isinstance(data.get("backends"), dict):
        raise ValueError(f"{path}: not a calibration file (no 'backends' table); rerun `sparsekit calibrate`")
    return data


def _json_clean(obj):
    """NaN/inf -> None: the file stays standard JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _json_clean(obj.item())
    return obj


# -- limits of a backend ----------------------------------------------------------------

def _positive(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0


def backend_limits(calib: dict | None, backend: str) -> tuple[float, float] | None:
    """(float32 GEMM peak GFLOP/s, triad GB/s) of ``backend`` in a calibration; None if either is missing."""
    if not calib:
        return None
    entry = (calib.get("backends") or {}).get(backend)
    if not entry:
        return None
    peak, bw = entry.get("gemm_gflops"), entry.get("triad_gbps")
    if not (_positive(peak) and _positive(bw)):
        return None
    return float(peak), float(bw)


# -- command line ------------------------------------------------------------------------

def configure_parser(p) -> None:
    """Options of ``sparsekit calibrate``."""
    p.add_argument("--backend", default="numpy,cpu", help="comma-separated backend names (default: numpy,cpu)")
    p.add_argument("--results", default="results", metavar="DIR", help="results folder (default: results)")
    p.add_argument("--machine", default=None, metavar="NAME",
                   help="machine folder under --results (default: this host's asv machine name)")
    p.add_argument("--quick", action="store_true", help="smaller arrays, fewer repeats, float32 only (less accurate)")
    p.add_argument("--json", action="store_true", help="print the calibration as JSON instead of a table")
    p.add_argument("--no-progress", action="store_true", help="do not print each step on stderr")


def _fmt(v, spec: str) -> str:
    return format(v, spec) if _positive(v) else "n/a"


def table(result: dict) -> str:
    from tabulate import tabulate

    rows = []
    for name, e in result["backends"].items():
        f64 = e["details"].get("gemm", {}).get("float64", {}).get("gflops")
        rows.append([name, e["device"], e["threads"], _fmt(e["copy_gbps"], ".1f"), _fmt(e["triad_gbps"], ".1f"),
                     _fmt(e["gemm_gflops"], ".1f"), _fmt(f64, ".1f")])
    return tabulate(rows, headers=["backend", "device", "threads", "copy GB/s", "triad GB/s", "GEMM GFLOP/s f32",
                                   "GEMM GFLOP/s f64"], disable_numparse=True)


def run_cli(args) -> int:
    """Calibrate, save beside the results, print a table (or JSON). 0 on success, 1 if nothing was calibrated."""
    from ._errors import UnknownBackendError

    names = [b.strip() for b in args.backend.split(",") if b.strip()]
    if not names:
        print("sparsekit calibrate: --backend names no backend", file=sys.stderr)
        return 2
    try:
        result = calibrate(names, quick=args.quick, progress=not args.no_progress)
    except UnknownBackendError as e:
        print(f"sparsekit calibrate: {e}", file=sys.stderr)
        return 2
    if result["backends"]:
        path = save(result, args.results, args.machine)
    if args.json:
        print(json.dumps(_json_clean(result), indent=1))
    else:
        if result["backends"]:
            print(table(result))
        for note in result["notes"]:
            print(f"note: {note}")
        if result["backends"]:
            print(f"saved {path}")
    if not result["backends"]:
        print("sparsekit calibrate: no backend could be calibrated", file=sys.stderr)
        return 1
    return 0

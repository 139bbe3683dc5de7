"""``sparsekit calibrate``: the machine's limits, for roofline fractions.

Measured on the host, with the thread policy the benchmarks use:

* **read bandwidth against working-set size** (the Empirical Roofline Toolkit's method):
  working sets from 16 KiB doubling to DRAM size (4 x the LLC, at least 128 MiB), each
  read repeatedly within one call, the best of several probes kept at each size: a
  threaded NumPy sum (one slice per core), a BLAS matrix-vector product (OpenBLAS's own
  threads) and the read stream of every backend that reads with its own threads (the
  cpu backend's Numba kernel, which keeps several vector accumulators: NumPy alone
  cannot reach an L1 or L2 cache's speed). A problem is held against the bandwidth
  measured at the largest working set no bigger than its footprint -- bandwidth only
  falls as the working set grows, so that figure bounds what the problem can reach
  (``sparsekit.roofline.Ceilings``): a cache-resident problem is not held against DRAM.
  Each level's figure (L1d, L2, LLC: the point at half its capacity; DRAM) is shown too.
* per backend, through the backend interface (never by importing a backend module):
  STREAM read, copy (a = b) and triad (a = b + q c) on float64 arrays far larger
  than the last-level cache, bytes counted as STREAM counts them (1, 2 and 3 words
  per element; the write-allocate read is not counted), from ``Backend.stream``
  (default ``sparsekit.host.stream_pass``: one host thread per core; a backend with
  its own device or thread pool overrides it); and the dense GEMM peak of its own
  ``dense_mm`` on square n x n x n problems (n doubled from 256 until one call lasts
  ``GEMM_TARGET_S``, or 8192) and on the suite's compute-bound dense shapes
  (``gemm_shapes()``), the best rate, each the best of several calls, in float32
  (``gemm_gflops``) and, unless ``quick``, float64 too. A sample of the result's rows
  is checked against the float64 oracle so a wrong GEMM cannot set a peak.
* per backend with its own vector code (``Backend.peak_probe``: the cpu backend), the
  arithmetic peak: independent FMA chains held in registers on its threads, the
  Empirical Roofline Toolkit's compute kernel.
* the machine's limits (``limits``): the curve and levels above, DRAM copy/triad (the
  best backend), and the compute peak: the best GEMM rate or FMA-chain rate of any
  backend -- a limit of the machine, not of one library (a sparse kernel with its own
  vector code can outrun the BLAS GEMM on this CPU), so each backend's fraction says how
  close it came to what the machine can do.

Units: GB/s and GFLOP/s are 1e9 bytes and 1e9 floating-point operations per
second; one multiply-accumulate (the catalogue's ``Ops``) is 2 FLOPs.

The result is a dict (``calibrate``), saved as ``results/<machine>/calibration.json``
beside the asv results (``save``/``load``)::

    {"machine", "microarchitecture", "cpu", "created" (ISO-8601 UTC), "commit" (git HEAD,
     when known), "versions", "quick", "llc_bytes", "notes": [...],
     "limits": {"curve": [{"bytes", "read_gbps", "source", "probes"}],
                "levels": [{"name", "capacity", "probe_bytes", "read_gbps", "source"}],
                "copy_gbps", "triad_gbps", "read_gbps", "gemm_gflops", "gemm_backend",
                "peak_gflops", "peak_source"},
     "backends": {name: {"device", "read_gbps", "copy_gbps", "triad_gbps", "gemm_gflops",
                         "threads", "code", "details": {...}}}}

``code`` is a hash of the backend's own source files: a calibration whose backend
code differs from the results' (another commit) is flagged stale by the report.
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


# -- read bandwidth per memory level -------------------------------------------------------

#: seconds of reading one probe measurement aims at (repeated passes over a cache-sized set)
PROBE_TARGET_S = 0.02
PROBE_REPEATS = 5


def memory_levels(quick: bool = False) -> list[dict]:
    """[{"name", "capacity"}] smallest first: L1d, L2 (private: x cores), the last-level cache,
    DRAM (capacity None)."""
    c, cores = host.cache_sizes(), host.cpu_count()
    levels = [{"name": "L1d", "capacity": c.l1d * cores}, {"name": "L2", "capacity": c.l2 * cores},
              {"name": "LLC", "capacity": c.llc}]
    out, below = [], 0
    for lv in levels:
        if lv["capacity"] <= below:  # a level no larger than the one under it (sysfs oddities): skip
            continue
        out.append(lv)
        below = lv["capacity"]
    out.append({"name": "DRAM", "capacity": None})
    return out


#: seconds of idle between probes of different libraries (see ``sparsekit.timing``)
SETTLE_S = 0.15
#: the smallest working set measured (below it, a call's own overhead is the figure)
SMALLEST_SET = 16 << 10


def working_sets(quick: bool = False) -> list[int]:
    """Bytes of the read-bandwidth curve's working sets: 16 KiB doubling to the DRAM size
    (``stream_bytes``); quick: every other one."""
    sizes, s = [], SMALLEST_SET
    top = stream_bytes(quick)
    while s < top:
        sizes.append(s)
        s *= 2 if not quick else 4
    return sizes + [top]


def _rate(run, nbytes: int, repeats: int) -> float:
    """GB/s of ``run`` moving ``nbytes`` per call, best of ``repeats`` after a warm-up."""
    return nbytes / best_seconds(run, repeats) / 1e9


def _passes(n_bytes: int) -> int:
    """Passes over an n_bytes working set so one measurement reads about PROBE_TARGET_S worth."""
    return max(1, int(PROBE_TARGET_S * 50e9 // max(n_bytes, 1)))


def probe_threaded_sum(n_bytes: int, repeats: int = PROBE_REPEATS) -> float:
    """Threads (one per core) each summing their slice ``passes`` times in one NumPy call each
    (``sparsekit.host.stream_pass``), so per-call overhead does not hide a cache's speed."""
    passes = _passes(n_bytes)
    run, _, close = host.stream_pass("read", n_bytes, passes=passes)
    try:
        return _rate(run, (int(n_bytes) // 8) * 8 * passes, repeats)
    finally:
        close()


def probe_gemv(n_bytes: int, repeats: int = PROBE_REPEATS) -> float:
    """y = A x over a float32 A of n_bytes (BLAS gemv, its own threads), ``passes`` times per call."""
    k = 512
    m = max(1, n_bytes // (4 * k))
    a = np.full((m, k), 0.5, dtype=np.float32)
    x = np.ones(k, dtype=np.float32)
    y = np.empty(m, dtype=np.float32)
    passes = _passes(a.nbytes)

    def run():
        for _ in range(passes):
            np.dot(a, x, out=y)

    return _rate(run, a.nbytes * passes, repeats)


#: the host read probes, by name (the best of them and of the backends' own read streams sets a point)
READ_PROBES = {"numpy threaded sum": probe_threaded_sum, "BLAS gemv": probe_gemv}


def _backend_read(be, n_bytes: int, repeats: int) -> float | None:
    """GB/s of a backend's own read stream (``Backend.stream("read", ...)``) at ``n_bytes``; None without one."""
    passes = _passes(n_bytes)
    plan = be.stream("read", n_bytes, passes)
    if plan is None:
        return None
    with plan:
        return _rate(plan, int(n_bytes) * passes, repeats)


def measure_curve(backends: dict, quick: bool = False, progress: bool = False, notes: list | None = None) -> list[dict]:
    """Read bandwidth against working-set size (``working_sets``): at each size the best of the host
    probes (``READ_PROBES``) and of every backend here that reads with its own threads (one that
    overrides ``Backend.stream``). [{"bytes", "read_gbps", "source", "probes"}]"""
    from .backend import Backend

    own = {n: be for n, be in backends.items() if type(be).stream is not Backend.stream}
    repeats = 3 if quick else PROBE_REPEATS
    out = []
    for size in working_sets(quick):
        _say(progress, f"read bandwidth at {size / MiB:.3g} MiB")
        probes = {}
        candidates = dict(READ_PROBES)
        candidates.update({f"{n} backend": (lambda nb, r, be=be: _backend_read(be, nb, r)) for n, be in own.items()})
        for name, probe in candidates.items():
            time.sleep(SETTLE_S)  # the previous probe's thread pool (OpenBLAS) spins ~0.1 s after its last call
            try:
                got = probe(size, repeats)
            except Exception as e:  # noqa: BLE001 - one probe failing must not lose the others
                if notes is not None:
                    notes.append(f"read probe {name!r} failed at {size} B: {type(e).__name__}: {e}")
                continue
            if got is not None:
                probes[name] = got
        best = max(probes, key=probes.get) if probes else None
        out.append({"bytes": size, "read_gbps": probes.get(best), "source": best, "probes": probes})
    return out


def levels_from_curve(curve: list[dict], quick: bool = False) -> list[dict]:
    """Each memory level's read bandwidth for display and the plot: the curve's point at the
    largest working set no bigger than half the level (DRAM: the largest)."""
    out = []
    for lv in memory_levels(quick):
        cap = lv["capacity"]
        inside = [p for p in curve if cap is None or p["bytes"] <= cap // 2] if curve else []
        p = inside[-1] if inside else None
        out.append({**lv, "probe_bytes": p["bytes"] if p else None, "read_gbps": p["read_gbps"] if p else None,
                    "source": p["source"] if p else None})
    return out


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
#: the smallest n of a dense shape that counts as compute-bound (below: GEMV-like, memory-bound)
GEMM_MIN_N = 32


def gemm_shapes(quick: bool = False) -> list[tuple[int, int, int]]:
    """``GEMM_PANELS`` and every compute-bound dense-equivalent shape of the kernels' default
    benchmark grids (each kernel's ``KernelSpec.benchmarks``), largest work last."""
    if quick:
        return list(GEMM_PANELS[:1])
    from .kernels import specs

    shapes = set(GEMM_PANELS)
    for spec in specs():
        for g in spec.benchmarks:
            import itertools

            for values in itertools.product(*g.values(False)):
                try:
                    pt = spec.bench_point(g, dict(zip(g.param_names, values)))
                except Exception:  # noqa: BLE001 - a grid point that cannot be described adds no shape
                    continue
                if pt is not None:
                    m, k, n = (int(d) for d in pt.dense_shape.split("x"))
                    if n >= GEMM_MIN_N:
                        shapes.add((m, k, n))
    return sorted(shapes, key=lambda s: s[0] * s[1] * s[2])


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
    for shape in gemm_shapes(quick):
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
    entry = {"device": be.device(), "read_gbps": None, "copy_gbps": None, "triad_gbps": None, "gemm_gflops": None,
             "threads": None, "code": backend_code_hash(name),
             "details": {"versions": be.versions(), "stream": {}, "gemm": {},
                         "stream_source": "host threads (Backend.stream default)"
                         if type(be).stream is Backend.stream else f"{name}'s own Backend.stream"}}
    threads = getattr(be, "threads", None)
    entry["threads"] = int(threads()) if callable(threads) else host.thread_policy()
    for kind in ("read", "copy", "triad"):
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
    probe = be.peak_probe("float32")
    if probe is not None:
        _say(progress, f"{name}: arithmetic peak (FMA chains), float32")
        plan, flops = probe
        time.sleep(SETTLE_S)  # the GEMM's BLAS pool still spins and would share the cores
        with plan:
            entry["peak_gflops"] = flops / best_seconds(plan, max(repeats, 5)) / 1e9
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
    out = {"machine": machine_name(), "microarchitecture": host.microarchitecture()[0], "cpu": cpu_description(),
           "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "commit": git_commit(), "versions": _versions(), "quick": bool(quick),
           "llc_bytes": host.cache_sizes().llc, "backends": {}, "notes": notes}
    live = {}
    for name in dict.fromkeys(backends):
        try:
            live[name] = registry.backend(name)
        except BackendUnavailable as e:
            notes.append(f"{name}: unavailable: {e.reason}")
            _say(progress, f"{name}: skipped, unavailable: {e.reason}")
    curve = measure_curve(live, quick, progress, notes)
    for name, be in live.items():
        out["backends"][name] = _calibrate_one(name, be, quick, progress, notes)
    out["limits"] = machine_limits(curve, out["backends"], quick)
    return out


def tune_backends(names: list[str], progress: bool = True) -> dict:
    """``Backend.tune_strategies`` of each named backend that has something to tune: {name: rows}."""
    from . import registry

    out = {}
    for name in names:
        be = registry.backend(name)
        _say(progress, f"{name}: tuning its inspector's open choices")
        rows = be.tune_strategies((lambda line: _say(True, f"{name}: {line}")) if progress else None)
        if rows is not None:
            out[name] = rows
    return out


def machine_limits(curve: list[dict], backends: dict, quick: bool = False) -> dict:
    """The machine's limits: the read-bandwidth curve (its largest working set: also the best
    backend's STREAM read), each level's point of it, DRAM copy and triad, and the best GEMM rate
    of any backend (see the module doc)."""
    def best(key):
        vals = {n: e[key] for n, e in backends.items() if _positive(e.get(key))}
        return (max(vals.values()), max(vals, key=vals.get)) if vals else (None, None)

    curve = [dict(p) for p in curve]
    read, read_by = best("read_gbps")
    if curve and read is not None and not (_positive(curve[-1]["read_gbps"]) and curve[-1]["read_gbps"] >= read):
        curve[-1].update(read_gbps=read, source=f"{read_by} STREAM read")
    levels = levels_from_curve(curve, quick)
    gemm, gemm_by = best("gemm_gflops")
    fma, fma_by = best("peak_gflops")
    peak, peak_by = max([(gemm or 0.0, f"{gemm_by} GEMM"), (fma or 0.0, f"{fma_by} FMA chains")])
    return {"curve": curve, "levels": levels, "read_gbps": curve[-1]["read_gbps"] if curve else None,
            "copy_gbps": best("copy_gbps")[0], "triad_gbps": best("triad_gbps")[0],
            "gemm_gflops": gemm, "gemm_backend": gemm_by,
            "peak_gflops": peak or None, "peak_source": peak_by if peak else None}


def backend_code_hash(name: str) -> str | None:
    """A short hash of the source files of the package a backend is loaded from (None if unknown)."""
    import hashlib
    import importlib.util

    from . import registry

    rec = {r.name: r for r in registry.backends()}.get(name)
    module = (rec.load.partition(":")[0] if rec is not None else "").split(".")[0]
    spec = importlib.util.find_spec(module) if module else None
    if spec is None or not spec.submodule_search_locations:
        return None
    h = hashlib.sha256()
    for root in spec.submodule_search_locations:
        for path in sorted(pathlib.Path(root).rglob("*")):
            if path.suffix in (".py", ".cl", ".cu", ".c", ".h") and path.is_file():
                h.update(path.name.encode())
                h.update(path.read_bytes())
    return h.hexdigest()[:16]


def git_commit(cwd=None) -> str | None:
    """The checkout's HEAD commit, or None outside a git checkout."""
    import subprocess

    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


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


def backend_limits(calib: dict | None, backend: str) -> tuple[float, float] | None:  # noqa: D103 - kept for scripts
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
    p.add_argument("--tune", action="store_true",
                   help="also let each backend that can (cpu) time the strategies its inspector cannot decide "
                        "between and remember the winners for this machine (its wisdom file)")
    p.add_argument("--no-progress", action="store_true", help="do not print each step on stderr")


def _fmt(v, spec: str) -> str:
    return format(v, spec) if _positive(v) else "n/a"


def table(result: dict) -> str:
    from tabulate import tabulate

    rows = []
    for name, e in result["backends"].items():
        f64 = e["details"].get("gemm", {}).get("float64", {}).get("gflops")
        rows.append([name, e["device"], e["threads"], _fmt(e.get("read_gbps"), ".1f"), _fmt(e["copy_gbps"], ".1f"),
                     _fmt(e["triad_gbps"], ".1f"), _fmt(e["gemm_gflops"], ".1f"), _fmt(f64, ".1f")])
    out = tabulate(rows, headers=["backend", "device", "threads", "read GB/s", "copy GB/s", "triad GB/s",
                                  "GEMM GFLOP/s f32", "GEMM GFLOP/s f64"], disable_numparse=True)
    limits = result.get("limits") or {}
    levels = [[lv["name"], "-" if lv.get("capacity") is None else f"{lv['capacity'] / MiB:.3g} MiB",
               "-" if not lv.get("probe_bytes") else f"{lv['probe_bytes'] / MiB:.3g} MiB", _fmt(lv.get("read_gbps"), ".1f"),
               lv.get("source") or "-"] for lv in limits.get("levels", [])]
    if levels:
        out += "\n\nmachine limits: read bandwidth by memory level, peak " + _fmt(limits.get("peak_gflops"), ".1f") + \
               f" GFLOP/s ({limits.get('peak_source') or 'no backend'})\n"
        out += tabulate(levels, headers=["level", "capacity", "working set", "read GB/s", "best probe"],
                        disable_numparse=True)
    return out


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
    if getattr(args, "tune", False):
        tune_backends(list(result["backends"]), progress=not args.no_progress)
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

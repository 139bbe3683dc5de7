"""The short break-even grid: points of the asv suite's own benchmarks, measured as asv would.

Each point is a benchmark class of ``benchmarks/`` with parameter values taken from
its own ``params`` (checked by ``check_grid``), so the result file pairs in
``sparsekit report`` and the asv site exactly like a ``make bench`` result. A point
is measured by the class itself: ``setup`` (problem generation, ``prepare``: upload,
compilation, one warm-up call), then ``sparsekit.timing.time_plan`` on the prepared
plan (every call synchronised by the plan), the oracle check of the last call's
result (``track_error``), ``teardown``. Dense baselines come first, so whatever a
deadline cuts, the points measured can be paired.

On ``cupy`` the SpMM points run a second time with our own CSR kernel forced
(``csr_spmm``; ``csr_spmv`` at n = 1): cuSPARSE against our kernels, recorded in
``points.jsonl`` (not an asv benchmark: the asv point is the automatic choice).
"""
from __future__ import annotations

import itertools
import time

#: (module, class, time method, {axis: values}); dense baselines first, values from the class's params
GRID = (
    ("bench_dense_mm", "DenseMM", "time_dense_mm", {"shape": ["2048x2048x64", "2048x2048x1", "1024x64x1024"]}),
    ("bench_spmm", "SpMM", "time_spmm", {"pattern": ["uniform"], "shape": ["2048x2048x64", "2048x2048x1"],
                                         "sparsity": [0.5, 0.9, 0.99]}),
    ("bench_spmm", "SpMMFormats", "time_spmm", {"format": ["bsr4x4", "nm"], "shape": ["2048x2048x64"],
                                                "sparsity": [0.5, 0.875, 0.96875]}),
    ("bench_gather_mm", "GatherMM", "time_gather_mm", {"shape": ["2048x2048x64"], "sparsity": [0.5, 0.9, 0.99]}),
    ("bench_sddmm", "SDDMM", "time_sddmm", {"pattern": ["uniform"], "shape": ["1024x64x1024"], "sparsity": [0.5, 0.9, 0.99]}),
    ("bench_kwta", "KWTA", "time_kwta", {"shape": ["2048x64"], "sparsity": [0.5, 0.9, 0.99]}),
    ("bench_sparse_sparse", "SparseSparse", "time_sparse_sparse", {"act_sparsity": [0.9], "shape": ["2048x2048x64"],
                                                                    "sparsity": [0.5, 0.9, 0.99]}),
)
#: benchmark class whose points are rerun with our CSR kernel forced on cupy
VARIANT_CLASS = "bench_spmm.SpMM"
#: sparsekit.timing.time_plan settings: asv's sample time for these benchmarks, fewer repeats
REPEAT, MIN_TIME, MAX_TIME = 5, 0.02, 1.0


def _class(module: str, cls: str):
    import importlib

    return getattr(importlib.import_module(f"benchmarks.{module}"), cls)


def full_params() -> dict:
    """benchmark class ("bench_spmm.SpMM") -> its params lists, the order asv's files use."""
    return {f"{m}.{c}": _class(m, c).params for m, c, _, _ in GRID}


def check_grid() -> None:
    """Every grid value must be one of its benchmark's params (else the report could not pair it)."""
    for module, cls, method, axes in GRID:
        bench = _class(module, cls)
        names = bench.param_names
        if not hasattr(bench, method):
            raise ValueError(f"{module}.{cls} has no {method}")
        for axis, values in axes.items():
            allowed = bench.params[names.index(axis)]
            bad = [v for v in values if v not in allowed]
            if bad:
                raise ValueError(f"{module}.{cls}: {axis} {bad} not in its params {allowed}")
        if set(axes) != set(names[1:]):
            raise ValueError(f"{module}.{cls}: the grid gives {sorted(axes)}, the benchmark takes {names[1:]}")


def own_csr_path(shape: str) -> str:
    return "csr_spmv" if shape.endswith("x1") else "csr_spmm"


def points(backend: str) -> list[dict]:
    """The grid's points for one backend, in measuring order (variants right after their SpMM point)."""
    out = []
    for module, cls, method, axes in GRID:
        bench = _class(module, cls)
        names = bench.param_names
        for values in itertools.product(*(axes[a] for a in names[1:])):
            params = [backend, *values]
            base = {"module": module, "class": cls, "method": method, "param_names": names, "params": params,
                    "version": str(getattr(bench, "version", "1"))}
            out.append({**base, "force": {}, "asv": True})
            if backend == "cupy" and f"{module}.{cls}" == VARIANT_CLASS:
                shape = params[names.index("shape")]
                out.append({**base, "force": {"force_csr": own_csr_path(shape)}, "asv": False})
    return out


def record(point: dict, **fields) -> dict:
    """The ``points.jsonl`` record of a point (see ``results``), with ``fields`` added."""
    return {"benchmark": f"{point['module']}.{point['class']}", "method": point["method"], "version": point["version"],
            "param_names": point["param_names"], "params": point["params"], "force": point["force"],
            "asv": point["asv"], **fields}


def measure(point: dict) -> dict:
    """Run one point as asv would (setup, timed calls, track_error, teardown); the record to append."""
    import sparsekit
    from sparsekit import registry
    from sparsekit.timing import time_plan

    bench = _class(point["module"], point["class"])()
    backend, *rest = point["params"]
    rec = record(point, started_at=int(time.time() * 1000))
    t0 = time.perf_counter()
    instance = None
    try:
        if point["force"]:
            instance = registry.backend(backend)  # the instance setup() will use
            for attr, value in point["force"].items():
                setattr(instance, attr, value)
        bench.setup(backend, *rest)
        timing = time_plan(bench.plan, repeat=REPEAT, min_time=MIN_TIME, max_time=MAX_TIME)
        check = sparsekit.check(bench.problem, bench.plan.result(), backend=bench.backend)
        rec.update(status="ok", seconds=timing.median, best=timing.best, number=timing.number, repeats=timing.repeats,
                   samples=list(getattr(timing, "samples", ())),  # seconds per call of each sample, where timing keeps them
                   error=check.error, check_ok=check.ok, check_detail=check.detail,
                   path=getattr(bench.backend, "last_path", None))
    except NotImplementedError as e:  # asv's n/a: unavailable backend, Unsupported
        rec.update(status="n/a", reason=str(e))
    except sparsekit.BackendUnavailable as e:
        rec.update(status="n/a", reason=str(e))
    except Exception as e:  # a failure costs this point, not the grid
        rec.update(status="failed", reason=f"{type(e).__name__}: {e}")
    finally:
        try:
            bench.teardown(*point["params"])
        except Exception:
            pass
        if instance is not None:
            for attr in point["force"]:
                setattr(instance, attr, None)
        rec["duration"] = round(time.perf_counter() - t0, 3)
    return rec


def describe(rec: dict) -> str:
    names, params = rec["param_names"], rec["params"]
    label = ", ".join(f"{n}={v}" for n, v in zip(names[1:], params[1:]))
    force = "".join(f" [{v}]" for v in rec.get("force", {}).values())
    if rec["status"] == "ok":
        flag = "" if rec.get("check_ok", True) else "  WRONG RESULT: " + str(rec.get("check_detail"))
        return (f"{params[0]:6} {rec['benchmark']}{force} {label}: {rec['seconds'] * 1e6:9.1f} us "
                f"(err {rec['error']:.2g}; {rec.get('path')}){flag}")
    return f"{params[0]:6} {rec['benchmark']}{force} {label}: {rec['status']} {rec.get('reason', '')}"

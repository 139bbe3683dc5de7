"""Shared helpers of the asv suite (after SciPy's ``benchmarks/benchmarks/common.py``).

Rules every benchmark module follows:

* ``params``/``param_names`` are fixed lists, never computed from what is
  installed: the backend axis is always ``BACKENDS``, so results from different
  machines line up in one asv site. A kernel benchmark's other parameters come from
  its ``KernelSpec.benchmarks`` grid (``grid_name``), the one place per kernel. A backend that is not registered, cannot run
  here, or raises ``Unsupported`` for the kernel/format/dtype makes ``setup``
  raise ``NotImplementedError``: asv shows n/a.
* ``setup`` does everything that is not the operation: problem generation,
  ``backend.prepare`` (conversion, upload, compilation) and one warm-up call.
  ``time_<kernel>`` calls only the prepared plan, which synchronises itself.
* ``track_error`` records the relative error of the warm-up call's result
  against the float64 oracle (``sparsekit.check``); it does not rerun anything.
* Shapes are strings (``"2048x2048x64"``: m x k x n of the product) so that the
  report can pair a sparse benchmark with ``DenseMM`` at its dense-equivalent
  shape on the same backend (``sparsekit report``).
* ``SPARSEKIT_FULL=1`` in the environment selects the large grid (``grid``).

The module imports no backend and nothing heavy at import time: a process that
only finds out its backend is unavailable exits quickly.
"""
from __future__ import annotations

import abc
import os

#: every backend the project knows, in a fixed order (never what is installed): the in-repo
#: ones and the example out-of-tree SciPy backend (examples/sparsekit-scipy, a peer). A third
#: party benchmarking its own backend names it in SPARSEKIT_BENCH_BACKENDS (comma-separated),
#: appended here: a choice the user states, still not a guess from what happens to be installed.
BACKENDS = ["numpy", "cpu", "opencl", "cupy", "lava", "lava-fixed", "torch", "scipy"]
BACKENDS += [b for b in dict.fromkeys(x.strip() for x in os.environ.get("SPARSEKIT_BENCH_BACKENDS", "").split(","))
             if b and b not in BACKENDS]

# Every benchmark process allocates large blocks the same way, whatever ran before it in the
# process (sparsekit.host.pin_malloc_threshold says why; a no-op off glibc).
from sparsekit.host import pin_malloc_threshold  # noqa: E402

pin_malloc_threshold()

#: the large grid, selected with SPARSEKIT_FULL=1
FULL = os.environ.get("SPARSEKIT_FULL", "").strip().lower() not in ("", "0", "false", "no", "off")

DTYPE = "float32"
SEED = 0

def grid(default, full):
    """``full`` when SPARSEKIT_FULL=1, else ``default`` (both fixed lists)."""
    return list(full if FULL else default)


def shape(*dims) -> str:
    """``shape(2048, 2048, 64)`` -> ``"2048x2048x64"``."""
    return "x".join(str(int(d)) for d in dims)


def dims(shape_str: str) -> tuple[int, ...]:
    """``"2048x2048x64"`` -> ``(2048, 2048, 64)``."""
    return tuple(int(t) for t in shape_str.split("x"))


def spec_grid(kernel: str, name: str):
    """The ``BenchGrid`` called ``name`` of ``kernel``'s spec."""
    from sparsekit.kernels import get_kernel

    spec = get_kernel(kernel)
    for g in spec.benchmarks:
        if g.name == name:
            return spec, g
    raise LookupError(f"kernel {kernel!r} has no benchmark grid {name!r} (it has: "
                      f"{', '.join(g.name for g in spec.benchmarks) or 'none'})")


def dense_shapes(specs=None) -> list[str]:
    """Every dense-equivalent m x k x n of the kernels' benchmark grids, first seen first: the
    shapes ``DenseMM`` must time so the report can pair each sparse point with its dense_mm."""
    from sparsekit.kernels import specs as all_specs

    out: list[str] = []
    for spec in (all_specs() if specs is None else specs):
        for g in spec.benchmarks:
            for values in _points(g):
                pt = spec.bench_point(g, dict(zip(g.param_names, values)))
                if pt is not None and pt.dense_shape not in out:
                    out.append(pt.dense_shape)
    return out


def _points(g):
    import itertools

    return itertools.product(*g.values(FULL))


def require_backend(name: str, kernel: str, fmt: str | None = None, dtype: str = DTYPE):
    """The backend instance, or ``NotImplementedError`` (asv: n/a) saying why not.

    Checks the cheap registry record first (no backend import, no problem
    generated) so that unavailable combinations cost next to nothing.
    """
    import sparsekit
    from sparsekit import registry

    records = {r.name: r for r in sparsekit.backends()}
    rec = records.get(name)
    if rec is None:
        raise NotImplementedError(f"backend {name!r} is not installed (registered: {', '.join(records) or 'none'})")
    if not rec.available:
        raise NotImplementedError(f"backend {name!r} is unavailable: {rec.reason}")
    if rec.kernels and kernel not in rec.kernels:
        raise NotImplementedError(f"backend {name!r} has no {kernel} kernel")
    if fmt is not None and rec.kernels and fmt not in tuple(rec.kernels.get(kernel, ())):
        raise NotImplementedError(f"backend {name!r} does not do {kernel} in format {fmt!r}")
    if rec.dtypes and dtype not in rec.dtypes:
        raise NotImplementedError(f"backend {name!r} does not do dtype {dtype}")
    try:
        return registry.backend(name)
    except (sparsekit.BackendUnavailable, sparsekit.UnknownBackendError) as e:
        raise NotImplementedError(str(e)) from None


_SHARED: dict = {}


def shared(make, *args, **kwargs):
    """``make(*args, **kwargs)``, generated once per benchmark process: asv runs every parameter
    combination of a benchmark in one process, the backend axis outermost, so without this the
    same problem (and its float64 oracle, cached on it) would be generated once per backend.
    Sharing is safe: backends must leave a problem's inputs untouched (the conformance suite
    checks it), and generation is deterministic."""
    key = (getattr(make, "__module__", ""), getattr(make, "__qualname__", repr(make)), args,
           tuple(sorted((k, _hashable(v)) for k, v in kwargs.items())))
    if key not in _SHARED:
        _SHARED[key] = make(*args, **kwargs)
    return _SHARED[key]


def _hashable(v):
    return tuple(_hashable(x) for x in v) if isinstance(v, (list, tuple)) else v


def prepare(backend, problem):
    """``backend.prepare(problem)`` plus one warm-up call; ``Unsupported`` -> n/a."""
    import sparsekit

    try:
        plan = backend.prepare(problem)
    except sparsekit.Unsupported as e:
        raise NotImplementedError(f"{backend.name}: {e.reason}") from None
    plan()  # warm-up: caches, lazy allocation, JIT; its result is what track_error checks
    return plan


class TimingProtocol:
    """asv timing protocol of the suite: calibrated ``number`` so one sample lasts
    >= sample_time, 3 to 10 samples within 2 s, one round (setup already made the
    warm-up call)."""

    # timeout: asv.conf.json's default_benchmark_timeout (180 s), the one place it is set
    number = 0
    repeat = (3, 10, 2.0)
    sample_time = 0.02
    rounds = 1
    warmup_time = 0.0
    #: bump only when a benchmark's meaning changes (asv drops older results)
    version = "1"


class KernelBenchmark(TimingProtocol, abc.ABC):
    """Base of every benchmark class: ``params[0]`` is the backend.

    A subclass sets ``kernel`` and either ``grid_name`` (a ``BenchGrid`` of the kernel's
    spec, which supplies ``param_names``, ``params`` and the make_problem keywords) or
    its own ``params``, ``param_names`` and ``problem_params(*rest)``; and defines
    ``time_<kernel>`` calling ``self.plan()``. Abstract, so asv does not collect it.
    """

    kernel = ""
    #: the spec's benchmark grid this class runs (None: the class sets params itself)
    grid_name = None
    #: storage format asked of the backend (spmm), checked before generating
    format = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("grid_name"):
            _, g = spec_grid(cls.kernel, cls.grid_name)
            cls.param_names = ["backend", *g.param_names]
            cls.params = [BACKENDS, *g.values(FULL)]
            if "problem_params" not in cls.__dict__:
                # set before ABCMeta counts abstract methods, so the class is concrete (and collected)
                cls.problem_params = KernelBenchmark._grid_problem_params

    @abc.abstractmethod
    def problem_params(self, *params) -> dict:
        """make_problem keyword arguments for the parameters after the backend."""

    def _grid_problem_params(self, *params) -> dict:
        spec, g = spec_grid(self.kernel, self.grid_name)
        return spec.bench_kwargs(g, dict(zip(g.param_names, params)))

    def fmt(self, *params) -> str | None:
        if self.grid_name:
            return self.problem_params(*params).get("format", self.format)
        return self.format

    def setup(self, backend, *params):
        import sparsekit

        kwargs = self.problem_params(*params)
        be = require_backend(backend, self.kernel, self.fmt(*params), kwargs.get("dtype", DTYPE))
        kwargs.setdefault("dtype", DTYPE)
        kwargs.setdefault("seed", SEED)
        self.problem = shared(sparsekit.make_problem, self.kernel, **kwargs)
        self.backend = be
        self.plan = prepare(be, self.problem)

    def teardown(self, *params):
        plan = getattr(self, "plan", None)
        if plan is not None:
            plan.close()

    def track_error(self, *params):
        """max|Y - Yref| / max|Yref| of the backend's result (see the kernel's error_unit)."""
        import sparsekit

        check = sparsekit.check(self.problem, self.plan.result(), backend=getattr(self, "backend", None))
        if not check.ok:
            import sys

            print(f"{self.problem.describe()}: result fails the oracle check: {check.detail}", file=sys.stderr)
        return check.error

    track_error.unit = "relative error"

"""Benchmarks of kernels that other packages add to the catalogue.

A research group registers a kernel through the ``sparsekit.kernels`` entry-point
group (see ``sparsekit.kernels``); its spec's ``benchmarks`` grids become asv
classes here, named after the grids, with the usual backend axis, and a
``DenseMM_<kernel>`` class times the dense_mm baselines at its dense-equivalent
shapes that the built-in ``DenseMM`` does not cover, so the report pairs them. The
built-in kernels have their own modules. Where no such package is installed this
module defines nothing.
"""
from sparsekit.kernels import BUILTIN, specs

from .common import BACKENDS, KernelBenchmark, dense_shapes, dims

_BUILTIN = {cls.name for cls in BUILTIN}


def _timer(kernel: str):
    def time(self, backend, *params):
        self.plan()

    time.__name__ = f"time_{kernel}"
    return time


def _kernel_class(spec, grid):
    return type(grid.name, (KernelBenchmark,), {
        "__module__": __name__, "__doc__": f"{spec.name}: {spec.summary} (registered by {type(spec).__module__})",
        "kernel": spec.name, "grid_name": grid.name, f"time_{spec.name}": _timer(spec.name)})


def _dense_class(kernel: str, shapes: list[str]):
    def problem_params(self, shape):
        m, k, n = dims(shape)
        return {"m": m, "k": k, "n": n}

    return type(f"DenseMM_{kernel}", (KernelBenchmark,), {
        "__module__": __name__, "__doc__": f"dense_mm baselines of {kernel}'s sweeps",
        "kernel": "dense_mm", "param_names": ["backend", "shape"], "params": [BACKENDS, shapes],
        "problem_params": problem_params, "time_dense_mm": _timer("dense_mm")})


def _define() -> None:
    builtin_specs = [s for s in specs() if s.name in _BUILTIN]
    covered = set(dense_shapes(builtin_specs))
    for spec in specs():
        if spec.name in _BUILTIN:
            continue
        for grid in spec.benchmarks:
            globals()[grid.name] = _kernel_class(spec, grid)
        extra = [s for s in dense_shapes([spec]) if s not in covered]
        if extra:
            globals()[f"DenseMM_{spec.name}"] = _dense_class(spec.name, extra)


_define()

"""sparsekit backends ``lava`` and ``lava-fixed``: the kernels as Lava processes on Lava's
Loihi 2 simulator (CPU).

* ``lava``: Lava's ``floating_pt`` process models -- what event-driven execution costs.
* ``lava-fixed``: the ``fixed_pt`` models, bit-accurate to Loihi's integer arithmetic,
  with weights and graded spikes quantised to 8-bit mantissas and a shared exponent
  (``sparsekit_lava.quant``) -- what fixed point changes in the answer.

Import-light: ``info_float()``/``info_fixed()`` are read by ``sparsekit backends`` and
never import Lava. Availability is judged from the installed distribution
(``importlib.util.find_spec`` and its metadata); Lava itself is imported, through the
Python 3.11 shim in ``sparsekit_lava._compat``, only when a backend is loaded, and a
failure there is reported by the registry with its reason.

Also here: ``sparsekit_lava.metrics`` (synaptic operations, spike and neuron-update
counts, timesteps per second and an energy estimate labelled Loihi 1, pre-silicon).
"""
from __future__ import annotations

import importlib.util

#: kernel -> formats (``lava`` float models)
KERNELS_FLOAT = {
    "dense_mm": ("dense",),
    "spmm": ("csr",),
    "sparse_sparse": ("dense",),
    "lif": ("dense",),
}
#: ``lava-fixed``: the synaptic products (the fixed-point LIF raster has no derived tolerance yet)
KERNELS_FIXED = {
    "dense_mm": ("dense",),
    "spmm": ("csr",),
    "sparse_sparse": ("dense",),
}
DTYPES = ("float32", "float64")


def lava_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lava-nc")
    except PackageNotFoundError:
        return None


def probe() -> str | None:
    """None when Lava looks usable, else why not (no import of Lava)."""
    if importlib.util.find_spec("lava") is None:
        return "Lava is not installed (pip install --no-deps --ignore-requires-python lava-nc==0.10.0, plus the [lava] extra)"
    ver = lava_version()
    if ver is None:
        return "a 'lava' package is importable but it is not the lava-nc distribution"
    for dep in ("asteval", "networkx", "scipy"):
        if importlib.util.find_spec(dep) is None:
            return f"lava-nc {ver} needs {dep}, which is not installed (the [lava] extra)"
    return None


def _info(name: str, kernels: dict, models: str, load: str) -> dict:
    ver = lava_version()
    return {
        "name": name,
        "device": f"Loihi 2 simulation on the CPU (Lava {ver or 'not installed'}, {models} process models)",
        "kernels": kernels,
        "dtypes": DTYPES,
        "requires": ("numpy", "scipy"),
        "load": load,
        "probe": probe,
    }


def info_float() -> dict:
    return _info("lava", KERNELS_FLOAT, "floating_pt", "sparsekit_lava.backend:LavaFloatBackend")


def info_fixed() -> dict:
    return _info("lava-fixed", KERNELS_FIXED, "fixed_pt", "sparsekit_lava.backend:LavaFixedBackend")

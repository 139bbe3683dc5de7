"""The ``cupy`` backend: NVIDIA GPUs through CuPy (cuBLAS, cuSPARSE) and our own CUDA kernels.

Import-light on purpose: ``info()`` is read by ``sparsekit backends`` and must not
import CuPy (starting CUDA in the listing process would also make every later
``fork`` unsafe). Without CuPy the registry reports "missing Python package(s):
cupy" from ``requires``. With CuPy, a short subprocess (``sparsekit_cupy._probe``)
asks the CUDA runtime for its devices and describes the selected one; its answer
is cached in ``${XDG_CACHE_HOME:-~/.cache}/sparsekit/cupy-probe.json`` keyed by
the CuPy version, ``CUDA_VISIBLE_DEVICES``, ``SPARSEKIT_CUPY_DEVICE``, the Python
executable and the NVIDIA driver's device files, so a repeated listing reads a
file. A probe that timed out or crashed is not cached; "no CUDA device" is (it
is keyed by the driver files, so installing a driver invalidates it).

``SPARSEKIT_CUPY_DEVICE``: index of the CUDA device to use (default 0, i.e. the
first of ``CUDA_VISIBLE_DEVICES``).

The cache file handling is the ``opencl`` backend's (same distribution), reused.
The kernels live in ``sparsekit_cupy.backend``; the CUDA C sources in
``sparsekit_cupy._sources``.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from sparsekit import host
from sparsekit.host import dist_version as _version
from sparsekit.versions import CUPY_DISTRIBUTIONS

#: what the backend implements, for every dtype in DTYPES
KERNELS = {
    "dense_mm": ("dense",),
    "spmm": ("csr", "bsr", "nm"),
    "sddmm": ("dense",),
    "gather_mm": ("dense",),
    "kwta": ("dense",),
    "sparse_sparse": ("dense",),
    "moe": ("dense",),
}
#: float16: stored as half, summed in float32, rounded once (cuBLAS with fp32 compute; own
#: kernels convert with PTX cvt). bfloat16: CuPy has no bfloat16 dtype, so not claimed.
DTYPES = ("float16", "float32", "float64")
ENV_DEVICE = "SPARSEKIT_CUPY_DEVICE"
PROBE_TIMEOUT = 60.0  # a first CUDA context on a big GPU can take several seconds
PROBE_MARKER = "SPARSEKIT-CUPY-PROBE "
#: files whose presence / change means the NVIDIA driver changed
_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/nvidiactl")

_memo: dict[str, dict] = {}


def cache_path() -> Path:
    return host.probe_cache_path("cupy")


def _driver_state() -> list:
    state = []
    for f in _DRIVER_FILES:
        try:
            state.append((f, int(os.stat(f).st_mtime)))
        except OSError:
            state.append((f, None))
    return state


def cache_key() -> str:
    cupy_dist = next((d for d in CUPY_DISTRIBUTIONS if _version(d)), "")
    return host.probe_key([cupy_dist, _version(cupy_dist) if cupy_dist else None,
                               os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get(ENV_DEVICE, ""),
                               sys.executable, _driver_state()])


def run_probe(timeout: float = PROBE_TIMEOUT) -> dict:
    """Run ``_probe.main`` in a fresh interpreter; ``{"ok": False, "reason": ..., "cache": False}`` if it fails."""
    return host.run_probe_subprocess(str(Path(__file__).resolve().parents[1]), "sparsekit_cupy._probe",
                                      PROBE_MARKER, "CUDA device", timeout)


def parse_probe_output(stdout: str, stderr: str, returncode: int) -> dict:
    """The probe's JSON line, or a failure naming the last line of its stderr (not cached)."""
    return host.parse_probe_output(stdout, stderr, returncode, PROBE_MARKER, "CUDA device")


def probe_device(refresh: bool = False) -> dict:
    """The selected CUDA device's description (cached in memory and on disk); see the module doc."""
    return host.cached_probe(_memo, cache_key(), cache_path(), run_probe, refresh)


def device_label(desc: dict) -> str:
    """``NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB; CUDA runtime 12.8, driver 12.9) device 0``."""
    return (f"{desc['name']} (sm_{desc['cc']}, {desc['memory'] / 2**30:.1f} GiB; CUDA runtime {desc['runtime']}, "
            f"driver {desc['driver']}) device {desc['index']}")


def info() -> dict:
    out = {"name": "cupy", "kernels": KERNELS, "dtypes": DTYPES, "requires": ("cupy",),
           "load": "sparsekit_cupy.backend:CupyBackend"}
    if importlib.util.find_spec("cupy") is None:
        # the registry reports the missing package; no probe needed
        return {**out, "device": "NVIDIA GPU (CuPy not installed)"}
    desc = probe_device()
    if not desc.get("ok"):
        reason = desc.get("reason") or "no usable CUDA device"
        return {**out, "device": "no CUDA device", "probe": lambda: reason}
    return {**out, "device": device_label(desc), "probe": lambda: None}

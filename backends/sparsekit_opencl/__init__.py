"""The ``opencl`` backend: our own OpenCL C kernels on any OpenCL device (PoCL on a CPU when there is none).

Import-light on purpose: ``info()`` is read by ``sparsekit backends`` and must not
import PyOpenCL in the listing process. It learns the device from a probe that
runs in a short subprocess (``sys.executable``, at most ``PROBE_TIMEOUT`` s), which
imports PyOpenCL, selects the device (``SPARSEKIT_OPENCL_DEVICE``, see
``sparsekit_opencl._device``) and prints its name, OpenCL version, platform and
the extensions the dtypes depend on. The answer is cached on disk in
``${XDG_CACHE_HOME:-~/.cache}/sparsekit/opencl-probe.json``, keyed by the PyOpenCL
(and PoCL wheel) version, ``SPARSEKIT_OPENCL_DEVICE``, the Python executable and
the installed ICD files, so a repeated listing reads a file instead of starting
an interpreter. A probe that timed out or crashed is not cached.

The kernels live in ``sparsekit_opencl.backend`` (OpenCL C sources: the ``*.cl``
files next to it).
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from sparsekit import host
from sparsekit.host import dist_version as _version

from ._device import ENV_VAR

#: what the backend implements (``prepare`` honours every entry for every dtype it lists)
KERNELS = {
    "dense_mm": ("dense",),
    "spmm": ("csr", "bsr", "nm"),
    "sddmm": ("dense",),
    "gather_mm": ("dense",),
    "kwta": ("dense",),
    "sparse_sparse": ("dense",),
}
#: seconds the probe subprocess may take (a first PoCL start and its smoke build can take a few)
PROBE_TIMEOUT = 30.0
PROBE_MARKER = "SPARSEKIT-OPENCL-PROBE "

_memo: dict[str, dict] = {}


def dtypes_for(fp64: bool, fp16: bool) -> tuple:
    """float32 always; float64 with cl_khr_fp64; float16 with cl_khr_fp16 (bfloat16 never)."""
    return (("float16",) if fp16 else ()) + ("float32",) + (("float64",) if fp64 else ())


def device_label(desc: dict) -> str:
    """``pthread-AMD EPYC (OpenCL 3.0; Portable Computing Language 0:0)``."""
    return f"{desc['name']} ({desc['version']}; {desc['platform']} {desc['index']})"


def cache_path() -> Path:
    return host.probe_cache_path("opencl")


def _icd_state() -> list:
    """What decides which OpenCL drivers the ICD loader finds (env and vendor files)."""
    state: list = [os.environ.get(v, "") for v in ("OCL_ICD_VENDORS", "OCL_ICD_FILENAMES", "OPENCL_VENDOR_PATH")]
    vendors = Path("/etc/OpenCL/vendors")
    try:
        state += sorted((f.name, int(f.stat().st_mtime)) for f in vendors.iterdir())
    except OSError:
        pass
    return state


def cache_key() -> str:
    # the CPU is part of the answer: a CPU driver's compiler may not know a newer microarchitecture
    ident = host.cpuid()
    return host.probe_key([_version("pyopencl"), _version("pocl-binary-distribution"), os.environ.get(ENV_VAR, ""),
                           sys.executable, _icd_state(), [ident["vendor"], ident["family"], ident["model"]]])


def run_probe(timeout: float = PROBE_TIMEOUT) -> dict:
    """Run the probe in a fresh interpreter; ``{"ok": False, "reason": ..., "cache": False}`` if it fails."""
    return host.run_probe_subprocess(str(Path(__file__).resolve().parents[1]), "sparsekit_opencl._probe",
                                      PROBE_MARKER, "OpenCL device", timeout)


def probe_device(refresh: bool = False) -> dict:
    """The selected device's description (cached in memory and on disk); see the module doc."""
    return host.cached_probe(_memo, cache_key(), cache_path(), run_probe, refresh)


def info() -> dict:
    out = {
        "name": "opencl",
        "kernels": KERNELS,
        "requires": ("pyopencl",),
        "load": "sparsekit_opencl.backend:OpenCLBackend",
    }
    if importlib.util.find_spec("pyopencl") is None:
        # the registry reports the missing package; no probe needed
        return {**out, "device": "OpenCL device (PyOpenCL not installed)", "dtypes": dtypes_for(False, False)}
    desc = probe_device()
    if not desc.get("ok"):
        reason = desc.get("reason") or "no usable OpenCL device"
        return {**out, "device": "no OpenCL device", "dtypes": dtypes_for(False, False), "probe": lambda: reason}
    return {**out, "device": device_label(desc), "dtypes": dtypes_for(desc["fp64"], desc["fp16"]),
            "probe": lambda: None}

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

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

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
#: seconds the probe subprocess may take (a first PoCL start can take a few)
PROBE_TIMEOUT = 20.0
PROBE_MARKER = "SPARSEKIT-OPENCL-PROBE "
CACHE_VERSION = 1

_memo: dict[str, dict] = {}


def dtypes_for(fp64: bool, fp16: bool) -> tuple:
    """float32 always; float64 with cl_khr_fp64; float16 with cl_khr_fp16 (bfloat16 never)."""
    return (("float16",) if fp16 else ()) + ("float32",) + (("float64",) if fp64 else ())


def device_label(desc: dict) -> str:
    """``pthread-AMD EPYC (OpenCL 3.0; Portable Computing Language 0:0)``."""
    return f"{desc['name']} ({desc['version']}; {desc['platform']} {desc['index']})"


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sparsekit" / "opencl-probe.json"


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


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
    parts = [_version("pyopencl"), _version("pocl-binary-distribution"), os.environ.get(ENV_VAR, ""),
             sys.executable, _icd_state()]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(data.get("entries"), dict):
        return {}
    return data["entries"]


def _write_cache(path: Path, key: str, result: dict) -> None:
    entries = _read_cache(path)
    entries.pop(key, None)
    entries[key] = result
    entries = dict(list(entries.items())[-16:])  # the most recent few configurations
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "entries": entries}, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs the next listing a probe


def run_probe(timeout: float = PROBE_TIMEOUT) -> dict:
    """Run the probe in a fresh interpreter; ``{"ok": False, "reason": ..., "cache": False}`` if it fails."""
    here = str(Path(__file__).resolve().parents[1])
    code = f"import sys; sys.path.insert(0, {here!r}); from sparsekit_opencl._probe import main; main()"
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"ok": False, "cache": False,
                "reason": f"the OpenCL device probe did not finish in {timeout:g} s (a hanging driver?)"}
    except OSError as e:
        return {"ok": False, "cache": False, "reason": f"could not start the OpenCL device probe: {e}"}
    for line in proc.stdout.splitlines():
        if line.startswith(PROBE_MARKER):
            try:
                return json.loads(line[len(PROBE_MARKER):])
            except ValueError:
                break
    tail = [ln for ln in (proc.stderr or "").strip().splitlines() if ln.strip()]
    why = tail[-1].strip() if tail else f"exit status {proc.returncode}"
    return {"ok": False, "cache": False, "reason": f"the OpenCL device probe failed: {why}"}


def probe_device(refresh: bool = False) -> dict:
    """The selected device's description (cached in memory and on disk); see the module doc."""
    key = cache_key()
    if not refresh and key in _memo:
        return _memo[key]
    path = cache_path()
    result = None if refresh else _read_cache(path).get(key)
    if result is None:
        result = run_probe()
        if result.pop("cache", True):
            _write_cache(path, key, result)
    _memo[key] = result
    return result


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

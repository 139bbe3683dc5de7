"""The device probe: imports PyOpenCL, selects the device, describes it as JSON.

``sparsekit_opencl.info()`` runs ``main()`` in a short subprocess (so the
process listing backends never imports PyOpenCL) and caches what it prints; the
backend calls ``open_device()`` in-process to get the same device.
"""
from __future__ import annotations

import json
import os

from ._device import ENV_VAR, DeviceSelectionError, opencl_version, select

#: extensions the backend's dtype support depends on
RELEVANT_EXTENSIONS = ("cl_khr_fp64", "cl_khr_fp16")


def inventory(cl):
    """[(platform name, [(device name, type), ...]), ...] and the matching pyopencl objects."""
    try:
        platforms = cl.get_platforms()
    except cl.Error as e:  # the ICD loader reports "no platform" as an error (PLATFORM_NOT_FOUND_KHR)
        raise DeviceSelectionError(
            f"no OpenCL platform found ({e}); install a driver (ICD), e.g. pip install 'pyopencl[pocl]'") from None
    inv, objs = [], []
    for p in platforms:
        try:
            devices = p.get_devices()
        except cl.Error:  # a platform without devices
            devices = []
        inv.append((p.name.strip(), [(d.name.strip(), cl.device_type.to_string(d.type)) for d in devices]))
        objs.append((p, devices))
    return inv, objs


def open_device(spec: str | None = None):
    """(pyopencl.Device, "P:D") chosen by ``spec`` (default: ``$SPARSEKIT_OPENCL_DEVICE``)."""
    import pyopencl as cl

    if spec is None:
        spec = os.environ.get(ENV_VAR, "")
    inv, objs = inventory(cl)
    p, d = select(spec, inv)
    return objs[p][1][d], f"{p}:{d}"


def describe(device, index: str) -> dict:
    import pyopencl as cl

    ext = set(device.extensions.split())
    return {
        "ok": True,
        "index": index,
        "name": device.name.strip(),
        "version": opencl_version(device.version),
        "version_string": device.version.strip(),
        "platform": device.platform.name.strip(),
        "platform_version": device.platform.version.strip(),
        "driver": device.driver_version.strip(),
        "type": cl.device_type.to_string(device.type),
        "extensions": {e: e in ext for e in RELEVANT_EXTENSIONS},
        "fp64": "cl_khr_fp64" in ext,
        "fp16": "cl_khr_fp16" in ext,
        "max_mem_alloc_size": int(device.max_mem_alloc_size),
        "global_mem_size": int(device.global_mem_size),
        "max_work_group_size": int(device.max_work_group_size),
        "compute_units": int(device.max_compute_units),
    }


#: a kernel the device's compiler must build before the backend calls the device usable
_SMOKE = "__kernel void sparsekit_probe(__global float *a) { a[get_global_id(0)] *= 2.0f; }"


def compile_check(device) -> str | None:
    """None when the device's OpenCL C compiler builds a trivial kernel, else why not.

    A driver can list a device whose compiler cannot target it: PoCL's bundled LLVM
    does not know CPUs newer than itself (on AMD Zen 5 it asks for target CPU
    'generic' and fails), and every kernel of the backend would then fail to build.
    """
    import pyopencl as cl

    ctx = cl.Context([device])
    try:
        cl.Program(ctx, _SMOKE).build()
    except cl.Error as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "error" in ln.lower() and "clBuildProgram" not in ln), lines[0] if lines else "")
        return f"its OpenCL C compiler cannot build a kernel for {device.name.strip()}: {detail[:200]}"
    return None


def probe() -> dict:
    """The selected device's description, or ``{"ok": False, "reason": ...}``."""
    try:
        device, index = open_device()
    except DeviceSelectionError as e:
        return {"ok": False, "reason": str(e)}
    why = compile_check(device)
    if why is not None:
        return {"ok": False, "reason": why}
    return describe(device, index)


def main() -> None:
    print("SPARSEKIT-OPENCL-PROBE " + json.dumps(probe()))


if __name__ == "__main__":
    main()

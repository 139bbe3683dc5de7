"""The device probe: imports CuPy, asks the CUDA runtime for the selected device, prints JSON.

``sparsekit_cupy.info()`` runs ``main()`` in a short subprocess (the listing process
never imports CuPy or starts CUDA) and caches what it prints.
"""
from __future__ import annotations

import json
import os


def selected_index() -> int:
    """``$SPARSEKIT_CUPY_DEVICE`` as a device index (default 0); ``ValueError`` naming a bad value."""
    raw = os.environ.get("SPARSEKIT_CUPY_DEVICE", "").strip()
    if not raw:
        return 0
    try:
        index = int(raw)
    except ValueError:
        raise ValueError(f"SPARSEKIT_CUPY_DEVICE={raw!r} is not a CUDA device index (0, 1, ...)") from None
    if index < 0:
        raise ValueError(f"SPARSEKIT_CUPY_DEVICE={raw!r} is not a CUDA device index (0, 1, ...)")
    return index


def _version_text(v: int) -> str:
    """CUDA's 12080 -> "12.8"."""
    return f"{v // 1000}.{(v % 1000) // 10}"


def probe() -> dict:
    """The selected device's description, or ``{"ok": False, "reason": ...}``."""
    try:
        index = selected_index()
    except ValueError as e:
        return {"ok": False, "reason": str(e)}
    try:
        import cupy
        from cupy.cuda import runtime
    except Exception as e:  # a CuPy wheel for another CUDA, a missing libcuda: name it
        return {"ok": False, "reason": f"cannot import cupy: {type(e).__name__}: {e}"}
    try:
        count = runtime.getDeviceCount()
    except Exception as e:  # cudaErrorNoDevice, cudaErrorInsufficientDriver, no libcuda.so ...
        return {"ok": False, "reason": f"CUDA reports no usable device: {type(e).__name__}: {e}"}
    if count == 0:
        return {"ok": False, "reason": "CUDA reports no device"}
    if index >= count:
        return {"ok": False, "reason": f"SPARSEKIT_CUPY_DEVICE={index} but CUDA sees {count} device(s)"}
    try:
        props = runtime.getDeviceProperties(index)
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        with cupy.cuda.Device(index):
            cupy.zeros(1).sum().item()  # a context and one kernel: the device really runs
        return {
            "ok": True,
            "index": index,
            "name": name.strip(),
            "cc": f"{props['major']}{props['minor']}",
            "memory": int(props["totalGlobalMem"]),
            "sms": int(props["multiProcessorCount"]),
            "runtime": _version_text(runtime.runtimeGetVersion()),
            "driver": _version_text(runtime.driverGetVersion()),
            "cupy": cupy.__version__,
        }
    except Exception as e:
        return {"ok": False, "reason": f"CUDA device {index} does not run: {type(e).__name__}: {e}"}


def main() -> None:
    print("SPARSEKIT-CUPY-PROBE " + json.dumps(probe()))


if __name__ == "__main__":
    main()

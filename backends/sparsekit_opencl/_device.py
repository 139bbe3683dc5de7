"""Which OpenCL device to use: ``SPARSEKIT_OPENCL_DEVICE`` parsed against the devices found.

Import-light (no PyOpenCL here): the selection works on a plain inventory, a list
of platforms, each ``(platform name, [(device name, device type), ...])``, so the
probe subprocess, the backend and the tests share one implementation.

``SPARSEKIT_OPENCL_DEVICE``:

* unset or empty: the first GPU (platforms and devices in the order the ICD
  loader gives them), else the first CPU device, else the first device of any kind;
* ``"P:D"``: device ``D`` of platform ``P`` (indices as ``sparsekit backends``
  and ``clinfo -l`` list them);
* anything else: the first device whose name contains the text, ignoring case,
  else the first device whose platform name contains it (``"portable"`` for
  PoCL, ``"cuda"``).

A selection that matches nothing raises ``DeviceSelectionError`` whose message
names the value and every device found.
"""
from __future__ import annotations

import re

ENV_VAR = "SPARSEKIT_OPENCL_DEVICE"


class DeviceSelectionError(LookupError):
    """No device matches the selection (or there is none at all); the message says why."""

    def __str__(self) -> str:  # a LookupError would repr() its message
        return str(self.args[0]) if self.args else ""


def describe_inventory(inventory) -> str:
    """``0:0 pthread-AMD EPYC [CPU] (Portable Computing Language), ...`` or ``none``."""
    items = [
        f"{p}:{d} {dname} [{dtype}] ({pname})"
        for p, (pname, devices) in enumerate(inventory)
        for d, (dname, dtype) in enumerate(devices)
    ]
    return "; ".join(items) if items else "none"


def select(spec: str | None, inventory) -> tuple[int, int]:
    """(platform index, device index) chosen by ``spec`` (see the module doc)."""
    spec = (spec or "").strip()
    flat = [(p, d, pname, dname, str(dtype).upper())
            for p, (pname, devices) in enumerate(inventory)
            for d, (dname, dtype) in enumerate(devices)]
    if not flat:
        where = f" (with {ENV_VAR}={spec!r})" if spec else ""
        raise DeviceSelectionError(f"no OpenCL device found{where}: no platform offers a device")
    if not spec:
        for kind in ("GPU", "CPU"):
            for p, d, _, _, dtype in flat:
                if kind in dtype.split():  # type strings such as "GPU" or "CPU" (or "ALL | GPU")
                    return p, d
        return flat[0][0], flat[0][1]
    m = re.fullmatch(r"(\d+)\s*:\s*(\d+)", spec)
    if m:
        p, d = int(m.group(1)), int(m.group(2))
        if p < len(inventory) and d < len(inventory[p][1]):
            return p, d
        raise DeviceSelectionError(
            f"{ENV_VAR}={spec!r}: there is no device {d} on platform {p}; found: {describe_inventory(inventory)}")
    needle = spec.lower()
    for p, d, _, dname, _ in flat:
        if needle in dname.lower():
            return p, d
    for p, d, pname, _, _ in flat:
        if needle in pname.lower():
            return p, d
    raise DeviceSelectionError(
        f"{ENV_VAR}={spec!r} matches no OpenCL device (neither an index P:D nor part of a device or "
        f"platform name); found: {describe_inventory(inventory)}")


def opencl_version(version_string: str) -> str:
    """``"OpenCL 3.0 PoCL HSTR: ..."`` -> ``"OpenCL 3.0"`` (the numeric part the standard fixes)."""
    m = re.match(r"\s*(OpenCL\s+\d+\.\d+)", version_string or "")
    return m.group(1) if m else (version_string or "").strip()

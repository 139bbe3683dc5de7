"""The ``torch`` backend: the peer users pick today -- torch dense and ``torch.sparse``.

Import-light on purpose: ``info()`` is read by ``sparsekit backends`` and must not
import torch (a second or more, and gigabytes of CUDA libraries on a GPU host).
The kernels live in ``sparsekit_torch.backend``.

Device (``SPARSEKIT_TORCH_DEVICE``): ``cpu``, ``cuda`` or ``cuda:N``; unset, the
first CUDA device when ``torch.cuda.is_available()`` and the CPU otherwise. The
listing only guesses (it looks for the NVIDIA driver, without importing torch);
the loaded backend's ``info().device`` names the device torch actually uses, and
asking for CUDA where torch finds none makes the backend unavailable with that
reason (never a silent CPU run).

Threads (CPU): torch's intra-op pool (OpenMP, and MKL under it) is set with
``torch.set_num_threads`` to ``SPARSEKIT_NUM_THREADS`` if set, else
``OMP_NUM_THREADS``, else every core the process may use -- the same count the
benchmark environment gives OpenBLAS and Numba, so the three pools never hold
more threads than cores; only one of them computes at a time (one kernel call).
"""
from __future__ import annotations

import os

#: what the backend implements (``prepare`` honours every entry for every dtype listed)
KERNELS = {
    "dense_mm": ("dense",),
    "spmm": ("csr", "bsr"),
    "sddmm": ("dense",),
    "gather_mm": ("dense",),
    "kwta": ("dense",),
    "sparse_sparse": ("dense",),
}
#: torch.sparse's CPU kernels (MKL) have no float16/bfloat16 products: only these two
DTYPES = ("float32", "float64")
ENV_VAR = "SPARSEKIT_TORCH_DEVICE"


def requested_device() -> str:
    """The device string asked for in ``SPARSEKIT_TORCH_DEVICE`` ('' when unset), validated."""
    spec = os.environ.get(ENV_VAR, "").strip().lower()
    if not spec:
        return ""
    kind, _, index = spec.partition(":")
    if kind not in ("cpu", "cuda") or (index and (kind == "cpu" or not index.isdigit())):
        raise ValueError(f"{ENV_VAR}={spec!r}: expected 'cpu', 'cuda' or 'cuda:N'")
    return spec


def _nvidia_driver_present() -> bool:
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0")


def _device_guess() -> str:
    from sparsekit.host import cpu_description

    try:
        spec = requested_device()
    except ValueError as e:
        return f"invalid device ({e})"
    if spec.startswith("cuda") or (not spec and _nvidia_driver_present()):
        return f"CUDA GPU ({spec or 'cuda if torch finds one'}; torch)"
    return f"{cpu_description()} (torch)"


def _probe() -> str | None:
    try:
        requested_device()
    except ValueError as e:
        return str(e)
    return None


def info() -> dict:
    return {
        "name": "torch",
        "device": _device_guess(),
        "kernels": KERNELS,
        "dtypes": DTYPES,
        "requires": ("torch",),
        "load": "sparsekit_torch.backend:TorchBackend",
        "probe": _probe,
    }

"""A stand-in for CuPy, for tests on machines without a GPU. It is NOT CuPy.

Put ``tests/standin_cupy`` on ``sys.path`` (or ``PYTHONPATH``) and ``import cupy``
finds this. Arrays are NumPy arrays (``ndarray`` below adds CuPy's ``.data.ptr`` and
``.get()``); any other ``cupy.<name>`` is NumPy's. ``empty`` fills floats with NaN:
fresh device memory may hold anything, and a plan that reads it must show it.

The CUDA runtime behaves as ``$SPARSEKIT_STANDIN_CUPY`` says (read at each call):

* ``nodevice`` (default): ``getDeviceCount`` raises cudaErrorNoDevice -- CuPy
  installed on a host without a GPU, what ``tools/gpu_check``'s dry run meets;
* ``zero``: no device; ``crash``: the process dies (a broken driver);
* ``device``: one pretend device ("Stand-in GPU", 132 SMs) on which the library
  paths run in NumPy: ``matmul`` (cuBLAS) and the low-level cuSPARSE SpMM bindings
  (``cupy_backends.cuda.libs.cusparse``, which count their calls). Our own CUDA
  kernels cannot run: ``RawModule.compile`` raises.
"""
from __future__ import annotations

import os
import weakref

import numpy as _np

from . import _core, cuda  # noqa: F401  (cupy.cuda and cupy._core, as in CuPy)

__version__ = "0.0-standin"
MODE_VAR = "SPARSEKIT_STANDIN_CUPY"


def mode() -> str:
    return os.environ.get(MODE_VAR, "nodevice")


class _Memory:
    def __init__(self, arr):
        self.ptr = arr.__array_interface__["data"][0]


#: device pointer -> the array it belongs to (what a library binding given a pointer reads)
_live: dict = {}


class ndarray(_np.ndarray):
    """A NumPy array that answers CuPy's ``.data.ptr`` and ``.get()``."""

    @property
    def data(self):
        return _Memory(self)

    def get(self):
        return _np.array(self)


def _wrap(a) -> ndarray:
    out = _np.asarray(a).view(ndarray)
    _live[out.data.ptr] = weakref.ref(out)
    return out


def array_at(ptr: int):
    """The live array whose data starts at ``ptr`` (the stand-in's view of a device pointer)."""
    ref = _live.get(int(ptr))
    arr = ref() if ref is not None else None
    if arr is None:
        raise ValueError(f"stand-in CuPy: no live array at {ptr:#x}")
    return arr


def asarray(a, dtype=None, order=None):
    return _wrap(_np.array(a, dtype=dtype, order=order or "K", copy=True))


def asnumpy(a):
    return _np.array(a)


def asfortranarray(a, dtype=None):
    return _wrap(_np.asfortranarray(a, dtype=dtype))


def empty(shape, dtype=float, order="C"):
    a = _np.empty(shape, dtype=dtype, order=order)
    if a.dtype.kind in "fc":
        a.fill(_np.nan)
    return _wrap(a)


def empty_like(a, dtype=None):
    return empty(_np.shape(a), dtype or a.dtype)


def zeros(shape, dtype=float, order="C"):
    return _wrap(_np.zeros(shape, dtype=dtype, order=order))


def matmul(a, b, out=None):
    y = _np.matmul(_np.asarray(a), _np.asarray(b))
    if out is None:
        return _wrap(y)
    out[...] = y
    return out


class RawModule:
    def __init__(self, code=None, options=(), **kwargs):
        self.code, self.options = code, tuple(options)

    def compile(self, log_stream=None):
        raise RuntimeError("stand-in CuPy: no GPU and no NVRTC here, our CUDA kernels cannot be built or launched")


def get_default_memory_pool():
    class _Pool:
        def total_bytes(self):
            return 0

    return _Pool()


def __getattr__(name):  # everything else: NumPy's
    return getattr(_np, name)

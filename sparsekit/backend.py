"""The backend interface every hardware family implements.

::

    backend.info()              -> BackendInfo: name, device, versions, kernels/formats/dtypes
    plan = backend.prepare(p)   # conversion, upload, compilation, warm-up: never timed
    plan()                      # runs on resident data; returns only when the device is done
    plan.result()               # host numpy.ndarray

``prepare`` raises ``Unsupported(reason)`` for a kernel, format or dtype the
backend does not do. A backend subclasses ``Backend``, lists what it supports,
and implements ``_prepare_<kernel>`` methods returning a ``Plan``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import host
from ._errors import Unsupported
from .kernels import get_kernel
from .problem import Problem


@dataclass(frozen=True)
class BackendInfo:
    """Cheap, static description of a backend (no heavy import needed to build it)."""

    name: str
    device: str
    #: kernel -> formats it handles (("dense",) for kernels without a format choice)
    kernels: dict
    dtypes: tuple
    versions: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Strategy:
    """What an inspecting ``prepare`` chose for a problem, and why (MKL's inspector-executor,
    OSKI): ``name`` of the kernel/strategy, ``reason`` in a sentence, ``facts`` it looked at
    (matrix and machine properties, tuning times), and ``code``, the backend's stable number
    for ``name`` (so that asv can store the choice as a number), or None."""

    name: str
    reason: str = ""
    facts: dict = field(default_factory=dict)
    code: int | None = None

    def __str__(self) -> str:
        facts = ", ".join(f"{k}={_fmt_fact(v)}" for k, v in self.facts.items())
        return f"{self.name}: {self.reason}" + (f" [{facts}]" if facts else "")


def _fmt_fact(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


class Plan:
    """A prepared kernel call on resident data.

    ``run`` executes the kernel and must not return before the device has finished
    (synchronise inside it); its return value is kept device-side. ``fetch`` turns
    that into a host ndarray and is only used by ``result()``, never timed.
    ``strategy``: what the backend chose and why (a ``Strategy``), or None when it
    does not say.
    """

    def __init__(self, run: Callable[[], object], fetch: Callable[[object], np.ndarray] | None = None, close=None,
                 strategy: Strategy | None = None):
        self._run = run
        self._fetch = fetch
        self._close = close
        self._out = None
        self._ran = False
        self.strategy = strategy

    def __call__(self) -> None:
        self._out = self._run()
        self._ran = True

    def result(self) -> np.ndarray:
        if not self._ran:
            raise RuntimeError("call the plan before asking for its result")
        out = self._fetch(self._out) if self._fetch else self._out
        return np.asarray(out)

    def close(self) -> None:
        """Release device resources (a no-op for host backends)."""
        if self._close is not None:
            self._close()
            self._close = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Backend:
    """Base class: dispatches ``prepare`` to ``_prepare_<kernel>`` after checking support."""

    name: str = ""
    #: kernel -> formats, as in BackendInfo.kernels
    supports: dict = {}
    dtypes: tuple = ("float32", "float64")
    #: how many prepared plans may be live at once in one process (None: no limit).
    #: Lava's simulator allows one network per process, so preparing a second plan
    #: retires the first; callers that hold several plans (workloads) check this.
    max_live_plans: int | None = None
    #: at most this many Hypothesis-drawn problems per property test of the conformance suite
    #: (None: the profile's ``max_examples``), for a backend whose every plan costs a large
    #: fixed price (Lava compiles and starts a network of processes per plan).
    conformance_examples: int | None = None

    def __init_subclass__(cls, **kwargs):
        """A kernel in ``supports`` without its ``_prepare_<kernel>`` is a packaging mistake:
        say so when the class is defined, not when a user first asks for that kernel. (A
        base class without a ``name`` of its own, shared by several backends, is not checked.)"""
        super().__init_subclass__(**kwargs)
        if not cls.name:
            return
        missing = [k for k in cls.supports if not callable(getattr(cls, f"_prepare_{k}", None))]
        if missing:
            raise TypeError(f"backend class {cls.__qualname__} lists {', '.join(missing)} in `supports` but defines no "
                            + ", ".join(f"_prepare_{k}" for k in missing))

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, self.device(), dict(self.supports), tuple(self.dtypes), self.versions())

    def device(self) -> str:
        return "unknown"

    def versions(self) -> dict:
        return {}

    def error_allowance(self, problem: Problem):
        """Extra elementwise |Y - Yref| this backend's arithmetic is allowed, beyond the dtype's
        rounding bound (``sparsekit.check(p, y, backend=...)`` adds it), or None (the default).

        Only for a backend that computes in its own number format on purpose and documents
        the rule the allowance is derived from (lava-fixed: Loihi fixed point).
        """
        return None

    def prepare(self, problem: Problem) -> Plan:
        if not isinstance(problem, Problem):
            raise TypeError(f"prepare() takes a sparsekit Problem, got {type(problem).__name__}")
        get_kernel(problem.kernel)
        if problem.kernel not in self.supports:
            raise Unsupported(f"backend {self.name!r} has no {problem.kernel} kernel")
        fmt = problem.params.get("format")
        formats = self.supports[problem.kernel]
        if fmt is not None and fmt not in formats:
            raise Unsupported(f"backend {self.name!r} does not do {problem.kernel} in format {fmt!r} (it does {', '.join(formats)})")
        if problem.dtype not in self.dtypes:
            raise Unsupported(f"backend {self.name!r} does not do dtype {problem.dtype} (it does {', '.join(self.dtypes)})")
        return getattr(self, f"_prepare_{problem.kernel}")(problem)

    def peak_probe(self, dtype: str = "float32"):
        """(Plan, FLOPs per call) of this backend's arithmetic peak in ``dtype`` (independent FMA chains
        held in registers, the Empirical Roofline Toolkit's compute kernel), or None: ``sparsekit
        calibrate`` keeps the machine's compute ceiling at no less than this, since a kernel with its
        own vector code can run faster than the BLAS GEMM that sets the other estimate."""
        return None

    def tune_strategies(self, progress=None) -> list[dict] | None:
        """Time the strategies this backend's inspector cannot decide between on its own problem set and
        remember the winners for this machine (``sparsekit calibrate --tune``); None: nothing to tune.
        Returns one dict per problem (``problem``, ``strategy``, ``reason``)."""
        return None

    def stream(self, kind: str, n_bytes: int, passes: int = 1) -> Plan | None:
        """A Plan running ``passes`` STREAM ``kind`` ("read", "copy" or "triad") passes over arrays of
        ``n_bytes`` each per call, for ``sparsekit calibrate``; None for a kind the backend cannot
        measure. Several passes per call let a cache-sized working set be measured without the
        call's own overhead.

        The default streams host memory with a thread per core (``sparsekit.host.stream_pass``);
        a backend whose data lives on a device (or streams with its own threads) overrides it.
        """
        run, out, close = host.stream_pass(kind, n_bytes, passes=passes)
        return Plan(run, fetch=lambda _: out, close=close)

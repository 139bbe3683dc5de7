"""The result document of ``sparsekit run``: what ``--json`` prints and ``--output`` saves.

One JSON object (schema: ``sparsekit/schemas/run.schema.json``)::

    {"meta": {...}, "rows": [...], "break_even": {backend: "0.873"}, "notes": [...]}

``meta`` records everything needed to reproduce and interpret the rows: the
schema version, the command line, kernel, dtype and seed, sparsekit/NumPy/
SciPy/Python versions, the machine (``sparsekit.host``), each backend's
device and library versions (``Backend.device()``/``versions()``, reported by
the worker that ran it), whether backends ran isolated and with what timeout,
start and end times, and ``status``: ``running`` while a sweep is under way
(the file is rewritten atomically after every row, so a crash of the whole
process loses at most the row in flight), then ``complete`` or ``interrupted``.
Each row's ``params`` holds its full parameter set, seed included.
"""
from __future__ import annotations

import json
import math
import os
import platform
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

SCHEMA_VERSION = 1


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def library_versions() -> dict:
    import numpy
    import scipy

    from . import __version__

    return {"sparsekit": __version__, "numpy": numpy.__version__, "scipy": scipy.__version__,
            "python": platform.python_version()}


def clean(obj):
    """Strict JSON: NaN/Inf become null, tuples lists, unknown objects their str()."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if hasattr(obj, "item"):  # NumPy scalars
        return clean(obj.item())
    return str(obj)


def write_atomic(path, doc) -> None:
    """Write ``doc`` as JSON to ``path`` through a temporary file and a rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(clean(doc), f, indent=1, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class RunRecord:
    """Collects a sweep's rows and metadata; rewrites ``path`` (if any) after every row."""

    def __init__(self, kernel: str, backends: list[str], *, dtype: str, seed: int, argv=None,
                 isolated: bool = True, timeout: float | None = None, path=None):
        from .host import cpu_description, machine_name

        self.path = path
        self.meta = {
            "schema_version": SCHEMA_VERSION,
            "command": [str(a) for a in (argv or [])],
            "kernel": kernel,
            "backends_requested": list(backends),
            "dtype": dtype,
            "seed": int(seed),
            "isolated": bool(isolated),
            "timeout_s": timeout,
            "machine": machine_name(),
            "host": cpu_description(),
            "platform": platform.platform(),
            "versions": library_versions(),
            "backends": {},
            "started": _now(),
            "finished": None,
            "status": "running",
        }
        self.rows: list = []
        self.break_even: dict = {}
        self.notes: list[str] = []

    def backend(self, name: str, description: dict) -> None:
        """Record a backend's device and library versions (``sweep``'s ``on_backend``)."""
        self.meta["backends"][name] = {"device": str(description.get("device", "unknown")),
                                       "versions": clean(description.get("versions") or {})}
        self._save()

    def add(self, row) -> None:
        self.rows.append(row)
        self._save()

    def finish(self, rows, break_even: dict, notes: list[str], *, interrupted: bool = False) -> None:
        self.rows = list(rows)
        self.break_even = {k: str(v) for k, v in break_even.items()}
        self.notes = list(notes)
        self.meta["finished"] = _now()
        self.meta["status"] = "interrupted" if interrupted else "complete"
        self._save()

    def document(self) -> dict:
        return clean({"meta": self.meta, "rows": [asdict(r) for r in self.rows],
                      "break_even": self.break_even, "notes": self.notes})

    def _save(self) -> None:
        if self.path:
            write_atomic(self.path, self.document())

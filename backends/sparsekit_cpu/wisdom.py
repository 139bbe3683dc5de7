"""Remembered strategy choices ("wisdom", as FFTW calls it), per machine and code version.

Where the inspector's model cannot decide between strategies, tuning times the
shortlist once and stores the winner here, keyed by the problem's class
(``problem_class``: kernel, dtype and bucketed shape, density and skew), so that
later runs on this machine start from the measurement instead of the guess.

File: ``$SPARSEKIT_CACHE_DIR/cpu-wisdom.json``, else ``$XDG_CACHE_HOME/sparsekit/``,
else ``~/.cache/sparsekit/``; safe to delete at any time::

    {"format": "sparsekit-cpu-wisdom", "version": 1,
     "machine": "<Machine.key()>", "machine_facts": {...},
     "code": "<hash of the kernel and inspector sources>",
     "entries": {"<problem class>": {"strategy": "spmm.panels",
                                      "times": {"spmm.panels": 0.0012, "spmm.rows": 0.0015},
                                      "measured": "<ISO-8601 UTC>"}}}

A file made by another version of the code (stale), on another machine, or that
is not wisdom at all (corrupt) is ignored with a one-line notice on stderr, and
replaced when tuning next saves; reading or writing it never fails a run.
"""
from __future__ import annotations

import datetime
import functools
import hashlib
import json
import math
import os
import pathlib
import sys

FORMAT = "sparsekit-cpu-wisdom"
VERSION = 1
FILENAME = "cpu-wisdom.json"
#: the sources whose change makes remembered timings stale
_SOURCES = ("_simd.py", "_tiles.py", "_kernels.py", "_layout.py", "strategies.py", "inspector.py")

#: every notice given in this process (tests read it; each is printed once)
NOTICES: list[str] = []


def default_path() -> pathlib.Path:
    from .machine import cache_dir

    return cache_dir() / FILENAME


@functools.lru_cache(maxsize=None)
def code_version() -> str:
    """Hash of the sources that decide and run the strategies."""
    here = pathlib.Path(__file__).parent
    h = hashlib.sha256()
    for name in _SOURCES:
        try:
            h.update((here / name).read_bytes())
        except OSError:
            h.update(name.encode())
    return h.hexdigest()[:16]


def notice(text: str) -> None:
    """Say it once per process, on stderr: wisdom problems are never errors."""
    if text not in NOTICES:
        NOTICES.append(text)
        print(f"sparsekit cpu: {text}", file=sys.stderr)


def _bucket(v: float) -> int:
    """log2 of a positive size, rounded: 3000 and 4096 share a bucket, 1024 does not."""
    return int(round(math.log2(v))) if v > 0 else -1


def problem_class(kernel: str, dtype: str, facts: dict) -> str:
    """The class of problems one remembered choice stands for."""
    n = facts["n"]
    nb = n if n <= 8 else 2 ** _bucket(n)
    if kernel == "gather_mm":
        return (f"gather_mm/{dtype}/n{nb}/rows{2 ** _bucket(facts['rows'])}/k{2 ** _bucket(facts['k'])}"
                f"/strided{int(bool(facts['stride']))}")
    imb = facts.get("imbalance", 1.0)
    skew = 0 if imb < 1.1 else 1 if imb < 1.5 else 2
    return (f"{kernel}/{dtype}/n{nb}/m{2 ** _bucket(facts['m'])}/k{2 ** _bucket(facts['k'])}"
            f"/density2^{_bucket(facts['density'])}/skew{skew}")


class Wisdom:
    """The wisdom file as this machine and this code may use it."""

    def __init__(self, machine, path: str | os.PathLike | None = None):
        self.machine = machine
        self.path = pathlib.Path(path) if path is not None else default_path()
        self.entries: dict = {}
        self._load()

    def _load(self) -> None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return
        except OSError as e:
            notice(f"wisdom {self.path} unreadable ({e}); ignored")
            return
        try:
            data = json.loads(text)
            ok = isinstance(data, dict) and data.get("format") == FORMAT and isinstance(data.get("entries"), dict)
        except ValueError:
            ok = False
        if not ok:
            notice(f"wisdom {self.path} is corrupt (not a {FORMAT} file); ignored, and replaced when tuning saves")
            return
        if data.get("machine") != self.machine.key():
            made = (data.get("machine_facts") or {}).get("cpu", "unknown")
            notice(f"wisdom {self.path} was made on another machine ({made}, key {data.get('machine')}); "
                   "ignored, and replaced when tuning saves")
            return
        if data.get("version") != VERSION or data.get("code") != code_version():
            notice(f"wisdom {self.path} is stale (made by another version of the cpu backend's kernels); "
                   "ignored, and replaced when tuning saves")
            return
        self.entries = {k: v for k, v in data["entries"].items()
                        if isinstance(v, dict) and isinstance(v.get("strategy"), str)}

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def put(self, key: str, strategy: str, times: dict) -> None:
        """Remember a measured choice and save the file (atomically); a failure to write is a notice."""
        self.entries[key] = {"strategy": strategy, "times": {k: float(v) for k, v in times.items()},
                             "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        data = {"format": FORMAT, "version": VERSION, "machine": self.machine.key(),
                "machine_facts": self.machine.facts(), "code": code_version(), "entries": self.entries}
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, self.path)
        except OSError as e:
            notice(f"wisdom not saved to {self.path} ({e})")
            try:
                tmp.unlink()
            except OSError:
                pass

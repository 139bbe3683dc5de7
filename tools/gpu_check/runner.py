"""Phases under deadlines: the budget, the child processes, the log.

A phase gets ``min(its cap, what the budget leaves after the later phases' floors)``.
Each phase's work runs as a child process in its own process group, its output
appended to the log as it runs; at the phase's deadline, or when the kit is told to
stop, the child gets SIGINT (pytest prints its summary, a worker stops after its
current point), then, after a grace period, SIGKILL.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from gpu_check import environment as envmod
from gpu_check import results

LOG_FILE = "gpu_check.log"
SUMMARY_FILE = "summary.json"
ENV_NAME = "gpu_check-py{python}"
#: seconds a stopped child gets between SIGINT and SIGKILL
GRACE_S = 10.0
#: exit statuses: all ran and passed / something failed / no usable GPU (cupy unavailable) / what ran
#: passed, but a phase was cut by its deadline
EXIT_OK, EXIT_FAILED, EXIT_NO_GPU, EXIT_INCOMPLETE = 0, 1, 3, 4


@dataclass
class Phase:
    """A step of the run: its name, the most it may take and the least it must be left (seconds)."""

    name: str
    cap: float
    floor: float
    status: str = "pending"  # ok, failed, deadline, skipped, interrupted
    seconds: float = 0.0
    detail: str = ""
    facts: dict = field(default_factory=dict)


#: the default budget (seconds) and each phase's share of it, on an H200: 450 s in all, so the run
#: ends inside 8 minutes with the CUDA start-up, compilation and the oracle checks included.
BUDGET_S = 450.0
CAPS = {"setup": (45, 15), "conformance:cupy": (150, 20), "conformance:*": (60, 10), "grid:cupy": (80, 20),
        "grid:*": (40, 10), "bandwidth": (35, 10), "calibrate": (25, 8), "report": (15, 5)}


def plan_phases(conformance: list[str], grids: list[str], budget: float, overrides: dict) -> list[Phase]:
    names = ["setup", *(f"conformance:{b}" for b in conformance), *(f"grid:{b}" for b in grids),
             "bandwidth", "calibrate", "report"]
    scale = budget / BUDGET_S
    phases = []
    for name in names:
        cap, floor = CAPS.get(name) or CAPS[name.split(":")[0] + ":*"]
        cap = float(overrides.get(name, overrides.get(name.split(":")[0], cap * scale)))
        phases.append(Phase(name, cap, min(floor * scale, cap)))
    unknown = set(overrides) - set(names) - {n.split(":")[0] for n in names}
    if unknown:
        raise ValueError(f"--phase-seconds: no phase {', '.join(sorted(unknown))} (phases: {', '.join(names)})")
    return phases


class Run:
    """State of one kit run: the output folder, the log, the child in flight, the stop request."""

    def __init__(self, out: Path, scratch: Path, budget: float):
        self.out, self.scratch = out, scratch
        self.log_path = out / LOG_FILE
        self.start = time.time()
        self.end = self.start + budget
        self.child: subprocess.Popen | None = None
        self.stop_signal: int | None = None
        self.grace = GRACE_S
        self.summary: dict = {}

    # -- output -------------------------------------------------------------------------------
    def say(self, text: str = "") -> None:
        """A line on the console and in the log."""
        print(text, flush=True)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(text + "\n")

    def write_summary(self) -> None:
        results.write_json_atomic(self.out / SUMMARY_FILE, self.summary, indent=1, allow_nan=False, default=str)

    # -- children -------------------------------------------------------------------------------
    def on_signal(self, signum, frame) -> None:
        self.stop_signal = signum
        self._stop_child(signal.SIGINT)

    def _stop_child(self, sig) -> None:
        if self.child is not None and self.child.poll() is None:
            try:
                os.killpg(self.child.pid, sig)
            except ProcessLookupError:
                pass

    def run_child(self, cmd: list[str], env: dict, deadline: float) -> tuple[int | None, str, str]:
        """(exit status, how it ended: ok/failed/deadline/interrupted, its output) of ``cmd``, its
        output appended to the log as it runs."""
        with open(self.log_path, "ab") as log:
            log.write(("$ " + " ".join(cmd) + "\n").encode())
            log.flush()
            offset = log.tell()
            kw = {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
            self.child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          cwd=envmod.ROOT, env=env, **kw)
        ended = None
        stop_at = None
        while self.child.poll() is None:
            now = time.time()
            if ended is None and (self.stop_signal is not None or now >= deadline):
                ended = "interrupted" if self.stop_signal is not None else "deadline"
                self._stop_child(signal.SIGINT)
                stop_at = now + min(self.grace, max(1.0, self.end + self.grace - now))
            elif stop_at is not None and now >= stop_at:
                self._stop_child(signal.SIGKILL)
                stop_at = float("inf")
            time.sleep(0.2)
        rc = self.child.returncode
        self.child = None
        if ended is None and self.stop_signal is not None:  # the signal's SIGINT ended it before the loop looked
            ended = "interrupted"
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", "replace")
        return rc, ended or ("ok" if rc == 0 else "failed"), text


# -- pytest output -----------------------------------------------------------------------------------

_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected|warnings?)")


def pytest_counts(text: str) -> dict:
    """Counts from pytest's last summary line, and the FAILED/ERROR lines of its short summary."""
    lines = [ln for ln in text.splitlines() if re.search(r"\b(passed|failed|skipped|error|errors|no tests ran)\b", ln)
             and " in " in ln]
    counts = {}
    if lines:
        for n, what in _COUNT.findall(lines[-1]):
            counts[what.rstrip("s") if what.startswith(("error", "warning")) else what] = int(n)
    counts["failures"] = [ln.strip() for ln in text.splitlines() if ln.startswith(("FAILED ", "ERROR "))][:50]
    return counts

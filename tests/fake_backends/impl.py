"""The misbehaving Backend classes (imported only inside a sweep's worker)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np

from sparsekit import Backend, Plan


class _Base(Backend):
    supports = {"spmm": ("csr",), "dense_mm": ("dense",)}
    dtypes = ("float32", "float64")

    def device(self):
        return f"test double ({self.name})"

    def versions(self):
        return {"fake": "0.0"}

    def _prepare_dense_mm(self, p):
        w, x = (np.asarray(v) for v in p.inputs.values())
        return Plan(lambda: w @ x)

    def _correct_spmm(self, p):
        w, x = p.inputs["w"], p.inputs["x"]
        return Plan(lambda: w @ x)


class Crashy(_Base):
    name = "crashy"

    def _prepare_spmm(self, p):
        def run():
            os.kill(os.getpid(), signal.SIGSEGV)  # what a native library's bad pointer does

        return Plan(run)


class Hangy(_Base):
    name = "hangy"

    def _prepare_spmm(self, p):
        while True:  # a simulator that never answers
            time.sleep(3600)


class Raisy(_Base):
    name = "raisy"

    def _prepare_spmm(self, p):
        def run():
            raise RuntimeError("simulated driver error")

        return Plan(run)


class Oomy(_Base):
    name = "oomy"

    def _prepare_spmm(self, p):
        raise MemoryError("Unable to allocate 64.0 GiB for an array")


class Slowpoke(_Base):
    name = "slowpoke"

    def _prepare_spmm(self, p):
        # a helper process, as Lava's runtime starts: it must not outlive an interrupted sweep
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        marker = os.environ.get("SPARSEKIT_TEST_PIDFILE")
        if marker:
            with open(marker, "a") as f:
                f.write(f"{os.getpid()} {child.pid}\n")
        time.sleep(float(os.environ.get("SPARSEKIT_SLOWPOKE_S", "1.0")))
        return self._correct_spmm(p)

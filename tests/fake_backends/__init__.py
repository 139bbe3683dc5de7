"""Test-only backends that misbehave on purpose, registered through a real entry point.

``tests/test_isolation.py`` writes a ``*.dist-info/entry_points.txt`` naming
these ``info`` functions into a temporary folder and puts it (and ``tests/``)
on ``PYTHONPATH``, so the ``sparsekit`` CLI and its spawned workers discover
them exactly as they discover an installed third-party backend.

- ``crashy``: its spmm run kills the process with SIGSEGV (a native crash);
- ``hangy``: its spmm prepare never returns (a hung simulator);
- ``raisy``: its spmm run raises (a library error);
- ``oomy``: its spmm prepare raises MemoryError (host out of memory);
- ``slowpoke``: correct, but each prepare starts a child process (like Lava's
  runtime) and sleeps, so a test can press Ctrl-C mid-sweep.
"""
from __future__ import annotations

NAMES = ("crashy", "hangy", "raisy", "oomy", "slowpoke")


def _info(name: str):
    def info():
        return {"name": name, "device": f"test double ({name})", "kernels": {"spmm": ("csr",), "dense_mm": ("dense",)},
                "dtypes": ("float32", "float64"), "requires": (), "load": f"fake_backends.impl:{name.title()}"}

    return info


crashy, hangy, raisy, oomy, slowpoke = (_info(n) for n in NAMES)


def entry_points_txt() -> str:
    return "[sparsekit.backends]\n" + "".join(f"{n} = fake_backends:{n}\n" for n in NAMES)

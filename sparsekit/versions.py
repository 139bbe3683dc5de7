"""Print the library versions of the interpreter running it, for ``results/<machine>/versions.txt``.

``make bench`` runs this file with the Python of the environment asv measured
in (``.asv/env/*/bin/python``), as a plain script, so it needs nothing but the
standard library and works with whatever sparsekit that environment holds::

    python sparsekit/versions.py > results/<machine>/versions.txt

Output: ``# python 3.11.9`` then ``name==version`` per installed distribution of
``PACKAGES`` (absent ones are left out). The HTML report shows the table.
"""
from __future__ import annotations

import platform
import sys
from importlib import metadata

#: CuPy's wheels, one per CUDA major version (each installs the same ``cupy`` import; a host has
#: one), and the source distribution
CUPY_DISTRIBUTIONS = ("cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x", "cupy")
#: what a sparsekit measurement depends on: the core, the backends' libraries, the harness
PACKAGES = ("sparsekit", "numpy", "scipy", "numba", "llvmlite", "pyopencl", "pocl-binary-distribution",
            *CUPY_DISTRIBUTIONS, "torch", "lava-nc", "scikit-learn", "asv", "threadpoolctl")


def lines() -> list[str]:
    out = [f"# python {platform.python_version()} ({platform.python_implementation()})"]
    for name in PACKAGES:
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return out


if __name__ == "__main__":
    sys.stdout.write("\n".join(lines()) + "\n")

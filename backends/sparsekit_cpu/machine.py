"""What the ``cpu`` backend's inspector knows about the host.

Everything is read from the machine, never assumed from a CPU name: cache sizes
from Linux sysfs (``/sys/devices/system/cpu/cpu0/cache``), the vector width and
register count from the instruction-set features LLVM compiles the kernels for
(llvmlite's host features: what Numba really targets), the thread count the
backend uses, and the limits ``sparsekit calibrate`` measured on this machine
(``results/<machine>/calibration.json`` under the working directory) when there
are any. A figure that cannot be read falls back to a conservative value and
says so in ``notes``.

The host facts the core also needs (cache sizes, the CPUID identity, the cache folder,
the CPU model) come from ``sparsekit.host``, sparsekit's public host module; what only
this backend needs (LLVM's vector width and register count, the calibrated limits it
reads) is here.
"""
from __future__ import annotations

import functools
import hashlib
import json
import pathlib
from dataclasses import asdict, dataclass, field

from sparsekit import host
from sparsekit.host import cache_dir, cpu_description, cpu_model

__all__ = ["Machine", "cache_dir", "cache_sizes", "calibrated_limits", "cpu_description", "detect", "vector_isa"]



@dataclass(frozen=True)
class Machine:
    cpu: str
    #: vendor, family and model as /proc/cpuinfo gives them (the microarchitecture's identity)
    arch: str
    threads: int
    #: bytes of one vector register of the widest ISA LLVM targets here (64: AVX-512, 32: AVX2)
    vector_bytes: int
    vector_registers: int
    l1d: int
    l2: int
    l3: int
    #: limits ``sparsekit calibrate`` measured for the cpu backend (GB/s, GFLOP/s), or empty
    calibrated: dict = field(default_factory=dict)
    notes: tuple = ()

    def lanes(self, itemsize: int) -> int:
        """Values of ``itemsize`` bytes in one vector register."""
        return max(1, self.vector_bytes // itemsize)

    def key(self) -> str:
        """Identity of this host for remembered choices: the CPU, its caches, its vectors
        and the thread count (calibrated figures vary from run to run and are left out)."""
        ident = [self.cpu, self.arch, self.threads, self.vector_bytes, self.vector_registers,
                 self.l1d, self.l2, self.l3]
        return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:16]

    def facts(self) -> dict:
        d = asdict(self)
        d.pop("notes")
        return d


def cache_sizes(root: str | pathlib.Path = "/sys/devices/system/cpu/cpu0/cache") -> tuple[dict, list]:
    """{"l1d", "l2", "l3"} in bytes as cpu0 sees them (L2 per core; L3 shared: the largest level), and
    notes naming any size that had to be assumed (``sparsekit.host.read_cache_sizes``)."""
    got = host.read_cache_sizes(root)
    sizes = {"l1d": got.l1d, "l2": got.l2, "l3": got.llc}
    names = {"l1d": "l1d", "l2": "l2", "llc": "l3"}
    notes = [f"{names[k]} size not in sysfs: assumed {sizes[names[k]] // 1024} KiB" for k in got.assumed]
    return sizes, notes


def vector_isa(features: str | None = None) -> tuple[int, int]:
    """(vector register bytes, vector register count) of the ISA LLVM compiles for here.

    ``features``: LLVM's host feature string (``+avx512f,-amx-tile,...``); read from
    llvmlite when None."""
    if features is None:
        try:
            import llvmlite.binding as llvm

            features = llvm.get_host_cpu_features().flatten()
        except Exception:  # noqa: BLE001 - no LLVM: assume the x86-64 baseline
            features = ""
    on = {f[1:] for f in features.split(",") if f.startswith("+")}
    if "avx512f" in on:
        return 64, 32
    if "avx2" in on or "avx" in on:
        return 32, 16
    return 16, 16


def _arch() -> str:
    ident = host.cpuid()
    if ident["vendor"] is None:
        import platform

        return platform.machine() or "unknown"
    return f"{ident['vendor']} family {ident['family']} model {ident['model']}"


def calibrated_limits(results_dir: str | pathlib.Path = "results") -> tuple[dict, list]:
    """The cpu backend's entry of ``sparsekit calibrate``'s file for this machine, if any:
    {"read_gbps", "triad_gbps", "copy_gbps", "gemm_gflops"} (those present). A missing
    file is normal; an unreadable one is a note, never an error."""
    try:
        from sparsekit import calibrate

        calib = calibrate.load(results_dir)
    except (ValueError, OSError) as e:
        return {}, [f"calibration ignored: {e}"]
    entry = ((calib or {}).get("backends") or {}).get("cpu") or {}
    keys = ("read_gbps", "triad_gbps", "copy_gbps", "gemm_gflops")
    return {k: float(entry[k]) for k in keys if isinstance(entry.get(k), (int, float)) and entry[k] > 0}, []


@functools.lru_cache(maxsize=None)
def detect(threads: int) -> Machine:
    """This host, as the backend with ``threads`` Numba threads sees it (cached per count)."""
    caches, notes = cache_sizes()
    vbytes, vregs = vector_isa()
    calib, more = calibrated_limits()
    return Machine(cpu=cpu_model(), arch=_arch(), threads=threads, vector_bytes=vbytes, vector_registers=vregs,
                   calibrated=calib, notes=tuple(notes + more), **caches)

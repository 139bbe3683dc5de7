"""What the ``cpu`` backend's inspector knows about the host (kept in one small module so
that it can move to the core's ``sparsekit.host`` once that exists).

Everything is read from the machine, never assumed from a CPU name: cache sizes
from Linux sysfs (``/sys/devices/system/cpu/cpu0/cache``), the vector width and
register count from the instruction-set features LLVM compiles the kernels for
(llvmlite's host features: what Numba really targets), the thread count the
backend uses, and the limits ``sparsekit calibrate`` measured on this machine
(``results/<machine>/calibration.json`` under the working directory) when there
are any. A figure that cannot be read falls back to a conservative value and
says so in ``notes``.

Where the core's ``sparsekit.host`` has the same fact (``cache_sizes``, ``cpuid``,
``cache_dir``, ``cpu_model``), these helpers read it the same way, so that they can
be replaced by it one for one.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib
from dataclasses import asdict, dataclass, field

try:  # the core's public host module, where this checkout has it
    from sparsekit.host import cpu_description, cpu_model
except ImportError:
    from sparsekit._sysinfo import cpu_description, cpu_model

__all__ = ["Machine", "cache_dir", "cache_sizes", "calibrated_limits", "cpu_description", "detect", "vector_isa"]

#: used when sysfs does not say (and named in Machine.notes)
FALLBACK_CACHES = {"l1d": 32 * 1024, "l2": 1024 * 1024, "l3": 32 * 1024 * 1024}


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


def _read(path: pathlib.Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _size(text: str | None) -> int | None:
    """sysfs cache size ("48K", "1024K", "32M") in bytes."""
    if not text:
        return None
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    try:
        return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
    except ValueError:
        return None


def cache_sizes(root: str | pathlib.Path = "/sys/devices/system/cpu/cpu0/cache") -> tuple[dict, list]:
    """{"l1d", "l2", "l3"} in bytes as cpu0 sees them (L2 per core; L3 shared), and notes
    naming any size that had to be assumed."""
    found: dict[str, int] = {}
    for d in sorted(pathlib.Path(root).glob("index*")):
        level, kind, size = _read(d / "level"), _read(d / "type"), _size(_read(d / "size"))
        if size is None or kind == "Instruction":
            continue
        name = {"1": "l1d", "2": "l2", "3": "l3"}.get(level or "")
        if name:
            found[name] = max(found.get(name, 0), size)
    notes = [f"{k} size not in sysfs: assumed {v // 1024} KiB" for k, v in FALLBACK_CACHES.items() if k not in found]
    return {k: found.get(k, v) for k, v in FALLBACK_CACHES.items()}, notes


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
    fields = {}
    text = _read(pathlib.Path("/proc/cpuinfo")) or ""
    for line in text.splitlines():
        if ":" in line:
            k, v = (s.strip() for s in line.split(":", 1))
            if k in ("vendor_id", "cpu family", "model", "stepping") and k not in fields:
                fields[k] = v
        if not line.strip() and fields:
            break
    if not fields:
        import platform

        return platform.machine() or "unknown"
    return f"{fields.get('vendor_id', '?')} family {fields.get('cpu family', '?')} model {fields.get('model', '?')}"


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


def cache_dir() -> pathlib.Path:
    """sparsekit's cache folder: ``$SPARSEKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/sparsekit``
    (``~/.cache/sparsekit``). Everything in it can be deleted at any time."""
    env = os.environ.get("SPARSEKIT_CACHE_DIR")
    if env:
        return pathlib.Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(base) / "sparsekit"


@functools.lru_cache(maxsize=None)
def detect(threads: int) -> Machine:
    """This host, as the backend with ``threads`` Numba threads sees it (cached per count)."""
    caches, notes = cache_sizes()
    vbytes, vregs = vector_isa()
    calib, more = calibrated_limits()
    return Machine(cpu=cpu_model(), arch=_arch(), threads=threads, vector_bytes=vbytes, vector_registers=vregs,
                   calibrated=calib, notes=tuple(notes + more), **caches)

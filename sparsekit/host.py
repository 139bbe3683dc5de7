"""What a backend (in this repository or a third party's) needs to know about the host.

A public, stable module: backends import it instead of anything private.

* CPU: ``cpu_model()``, ``cpu_count()`` (usable cores), ``cpu_description()``,
  ``cpuid()`` (vendor, family, model, stepping, flags), ``microarchitecture()``,
  ``cache_sizes()`` (per-core L1d/L2 and the shared last level, from sysfs).
* Thread policy: ``thread_policy()``, the threads every host library uses.
* Names and folders: ``machine_name()`` (the asv machine and ``results/<machine>``
  folder), ``cache_dir()`` (sparsekit's cache: probes, workload weights, wisdom).
* Device probes: a backend whose runtime must not be imported just to list it
  (``sparsekit backends``) runs a short probe in a fresh interpreter and caches its
  one-line JSON answer on disk (``probe_cache_path``, ``probe_key``,
  ``run_probe_subprocess``, ``parse_probe_output``, ``cached_probe``), keyed by
  whatever decides the answer (library versions, driver files, env vars). A probe
  that timed out or crashed is not cached, so a fixed driver is seen at the next listing.
* Host memory streaming for ``sparsekit calibrate`` (``stream_pass``).

Standard library and NumPy only; ``archspec`` is used when installed.

Run as ``python -m sparsekit.host`` it prints the machine name (the Makefile uses it);
``python -m sparsekit.host --asv-machine`` registers this host with asv under that
name, keeping the CPU model string and the microarchitecture in its machine.json.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

__all__ = [
    "CacheSizes", "asv_machine_entry", "cache_dir", "cache_sizes", "cached_probe", "read_cache_sizes", "cpu_count", "cpu_description",
    "cpu_model", "cpuid", "dist_version", "machine_name", "microarchitecture", "parse_probe_output",
    "probe_cache_path", "probe_key", "run_probe_subprocess", "stream_pass", "thread_policy",
]

# -- the CPU ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _cpuinfo() -> dict:
    """The first processor's block of /proc/cpuinfo (empty off Linux)."""
    out: dict = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    if out:
                        break
                    continue
                key, _, value = line.partition(":")
                out[key.strip()] = value.strip()
    except OSError:
        pass
    return out


def cpu_model() -> str:
    """The CPU's model string (``model name`` in /proc/cpuinfo), e.g. ``AMD EPYC``."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine() or "CPU"


def cpu_count() -> int:
    """Cores this process may run on (its affinity mask), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def cpuid() -> dict:
    """``{"vendor", "family", "model", "stepping", "flags"}`` as /proc/cpuinfo gives them (None where absent)."""
    info = _cpuinfo()

    def num(key):
        try:
            return int(info[key], 0)
        except (KeyError, ValueError):
            return None

    return {"vendor": info.get("vendor_id"), "family": num("cpu family"), "model": num("model"),
            "stepping": num("stepping"), "flags": frozenset(info.get("flags", "").split())}


#: (vendor, family, model range) -> microarchitecture, for hosts where archspec can only
#: name a generic level: a VM that hides feature flags (this project's 2-core EPYC hides
#: rdseed and movdiri) makes archspec answer "x86_64_v4", which Zen 5 and Sapphire Rapids
#: share. Family/model numbers from the vendors' programming references.
_CPUID_TABLE = (
    ("AuthenticAMD", 0x17, range(0x00, 0x30), "zen"),
    ("AuthenticAMD", 0x17, range(0x30, 0x100), "zen2"),
    ("AuthenticAMD", 0x19, range(0x00, 0x10), "zen3"),
    ("AuthenticAMD", 0x19, range(0x10, 0x20), "zen4"),
    ("AuthenticAMD", 0x19, range(0x20, 0x60), "zen3"),
    ("AuthenticAMD", 0x19, range(0x60, 0xB0), "zen4"),
    ("AuthenticAMD", 0x1A, range(0x00, 0x100), "zen5"),
    ("GenuineIntel", 6, (0x55,), "skylake_avx512"),
    ("GenuineIntel", 6, (0x6A, 0x6C), "icelake"),
    ("GenuineIntel", 6, (0x8F,), "sapphirerapids"),
    ("GenuineIntel", 6, (0xCF,), "emeraldrapids"),
    ("GenuineIntel", 6, (0xAD, 0xAE), "graniterapids"),
)


@functools.lru_cache(maxsize=None)
def microarchitecture() -> tuple[str, str]:
    """(name, how it was found) of this CPU's microarchitecture.

    archspec (Spack's library) names it from the feature flags when it can tell a
    specific one (``zen4``, ``sapphirerapids``); where it can only name a generic level
    (``x86_64_v4``) or is not installed, the CPUID family/model table above decides;
    failing both, archspec's generic level (or the architecture) prefixed with the vendor.
    """
    generic = None
    try:
        import archspec.cpu

        target = archspec.cpu.host()
        if target.vendor != "generic":
            return target.name, "archspec"
        generic = target.name
    except Exception:  # noqa: BLE001 - archspec missing or unable to read this host
        pass
    ident = cpuid()
    for vendor, family, models, name in _CPUID_TABLE:
        if ident["vendor"] == vendor and ident["family"] == family and ident["model"] in models:
            return name, f"cpuid family {family} model {ident['model']}"
    vendor = {"AuthenticAMD": "amd", "GenuineIntel": "intel"}.get(ident["vendor"] or "", "")
    base = generic or platform.machine() or "cpu"
    return (f"{vendor}-{base}" if vendor else base), ("archspec generic level" if generic else "platform")


def cpu_description() -> str:
    return f"{cpu_model()}, {cpu_count()} cores"


def machine_name() -> str:
    """The asv machine name and ``results/<machine>`` folder of this kind of host:
    microarchitecture and core count, e.g. ``zen5-2c``.

    Hostnames of sandboxes and CI runners change from run to run, and a CPU model
    string such as "AMD EPYC" covers several generations; results of the same
    hardware kind should land in one folder, and only those. (Folders written before
    this naming, such as ``amd-epyc-2c``, keep working: their machine.json says what they are.)
    """
    name = re.sub(r"[^a-z0-9_]+", "-", microarchitecture()[0].lower()).strip("-")
    return f"{name or 'cpu'}-{cpu_count()}c"


def thread_policy() -> int:
    """Threads a host library should use: SPARSEKIT_NUM_THREADS, else OMP_NUM_THREADS,
    else every usable core (the Makefile and benchmarks pin all pools the same way)."""
    for var in ("SPARSEKIT_NUM_THREADS", "OMP_NUM_THREADS"):
        env = os.environ.get(var, "").strip()
        if env:
            try:
                return max(1, int(env.split(",")[0]))  # OMP_NUM_THREADS may list nested levels
            except ValueError:
                raise ValueError(f"{var} must be an integer, got {env!r}") from None
    return cpu_count()


class CacheSizes(dict):
    """Bytes per cache level: ``l1d`` and ``l2`` of one core, ``llc`` the largest (shared) level;
    ``assumed`` names the levels sysfs did not give (a default stands in for them)."""

    assumed: tuple = ()

    @property
    def l1d(self) -> int:
        return self["l1d"]

    @property
    def l2(self) -> int:
        return self["l2"]

    @property
    def llc(self) -> int:
        return self["llc"]


#: assumed when sysfs cannot say (a common server core)
_DEFAULT_CACHES = {"l1d": 32 << 10, "l2": 1 << 20, "llc": 32 << 20}
_CACHE_ROOT = "/sys/devices/system/cpu/cpu0/cache"


def read_cache_sizes(root=_CACHE_ROOT) -> CacheSizes:
    """Cache sizes from a Linux sysfs cache folder (default: cpu0's); ``cache_sizes()`` caches this host's."""
    found: dict = {}
    for d in Path(root).glob("index*"):
        try:
            level = int((d / "level").read_text())
            kind = (d / "type").read_text().strip()
            text = (d / "size").read_text().strip().upper()
        except (OSError, ValueError):
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        try:
            size = int(text.rstrip("KMG")) * scale
        except ValueError:
            continue
        if kind == "Instruction":
            continue
        found[level] = max(found.get(level, 0), size)
    out = CacheSizes(_DEFAULT_CACHES)
    if 1 in found:
        out["l1d"] = found[1]
    if 2 in found:
        out["l2"] = found[2]
    if found and max(found) >= 3:
        out["llc"] = max(found.values())
    out.assumed = tuple(k for k, lv in (("l1d", 1), ("l2", 2), ("llc", 3)) if lv not in found)
    return out


@functools.lru_cache(maxsize=None)
def cache_sizes() -> CacheSizes:
    """Cache sizes of cpu0 from Linux sysfs (``/sys/devices/system/cpu/cpu0/cache``)."""
    return read_cache_sizes()


def cache_dir() -> Path:
    """sparsekit's cache folder: ``$SPARSEKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/sparsekit``
    (``~/.cache/sparsekit``). Everything in it can be deleted at any time."""
    env = os.environ.get("SPARSEKIT_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sparsekit"


# -- asv's machine record ------------------------------------------------------------------


def asv_machine_entry(name: str | None = None) -> dict:
    """This host as asv's machine.json records it, plus what identifies the hardware kind:
    ``cpu`` keeps the model string, ``microarchitecture`` and ``cpuid`` say which generation."""
    uarch, how = microarchitecture()
    ident = cpuid()
    mem = None
    try:
        mem = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        pass
    return {
        "machine": name or machine_name(),
        "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        "cpu": cpu_model(),
        "num_cpu": str(cpu_count()),
        "ram": str(mem or ""),
        "microarchitecture": uarch,
        "microarchitecture_source": how,
        "cpuid": f"{ident['vendor']} family {ident['family']} model {ident['model']} stepping {ident['stepping']}",
    }


def register_asv_machine(name: str | None = None, path: Path | None = None) -> dict:
    """Write this host's entry into ``~/.asv-machine.json`` (what ``asv machine --yes`` does,
    with the microarchitecture kept: asv copies every key into results/<machine>/machine.json)."""
    path = path or Path(os.path.expanduser("~")) / ".asv-machine.json"
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    entry = asv_machine_entry(name)
    data[entry["machine"]] = entry
    data["version"] = 1
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=4, sort_keys=True))
    os.replace(tmp, path)
    return entry


# -- cached device probes --------------------------------------------------------------------

PROBE_CACHE_VERSION = 1


def dist_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def probe_cache_path(name: str) -> Path:
    """``<cache_dir>/<name>-probe.json``: one backend's cached probe answers."""
    return cache_dir() / f"{name}-probe.json"


def probe_key(parts: list) -> str:
    """A short hash of what decides a probe's answer (versions, env vars, driver state)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _read_probe_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != PROBE_CACHE_VERSION or not isinstance(data.get("entries"), dict):
        return {}
    return data["entries"]


def _write_probe_cache(path: Path, key: str, result: dict) -> None:
    entries = _read_probe_cache(path)
    entries.pop(key, None)
    entries[key] = result
    entries = dict(list(entries.items())[-16:])  # the most recent few configurations
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": PROBE_CACHE_VERSION, "entries": entries}, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs the next listing a probe


def cached_probe(memo: dict, key: str, path: Path, run, refresh: bool = False) -> dict:
    """``run()``'s answer for ``key``: from ``memo``, else the disk cache, else a fresh probe.
    An answer carrying ``"cache": False`` (a timeout, a crash) is not written to disk."""
    if not refresh and key in memo:
        return memo[key]
    result = None if refresh else _read_probe_cache(path).get(key)
    if result is None:
        result = run()
        if result.pop("cache", True):
            _write_probe_cache(path, key, result)
    memo[key] = result
    return result


def parse_probe_output(stdout: str, stderr: str, returncode: int, marker: str, what: str) -> dict:
    """The probe's JSON line after ``marker``, or a failure naming the last line of its stderr (not cached)."""
    for line in (stdout or "").splitlines():
        if line.startswith(marker):
            try:
                return json.loads(line[len(marker):])
            except ValueError:
                break
    tail = [ln for ln in (stderr or "").strip().splitlines() if ln.strip()]
    why = tail[-1].strip() if tail else f"exit status {returncode}"
    return {"ok": False, "cache": False, "reason": f"the {what} probe failed: {why}"}


def run_probe_subprocess(package_dir: str, module: str, marker: str, what: str, timeout: float) -> dict:
    """Run ``module.main()`` (found under ``package_dir``) in a fresh interpreter and parse its answer."""
    code = f"import sys; sys.path.insert(0, {package_dir!r}); from {module} import main; main()"
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"ok": False, "cache": False, "reason": f"the {what} probe did not finish in {timeout:g} s (a hanging driver?)"}
    except OSError as e:
        return {"ok": False, "cache": False, "reason": f"could not start the {what} probe: {e}"}
    return parse_probe_output(proc.stdout, proc.stderr, proc.returncode, marker, what)


# -- the allocator of a measuring process ----------------------------------------------------

#: glibc's ``M_TRIM_THRESHOLD`` and ``M_MMAP_THRESHOLD`` options of ``mallopt`` (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: glibc's ceiling for its dynamic mmap threshold on 64-bit hosts (DEFAULT_MMAP_THRESHOLD_MAX)
MMAP_THRESHOLD = 32 << 20


def pin_malloc_threshold(nbytes: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold in this (measuring) process; False where there is no glibc.

    Why: glibc serves an allocation above its threshold from fresh ``mmap`` (a page fault per
    4 KiB on every call) and *raises* the threshold when such a block is freed, so the same
    per-call temporary costs more or less depending on what the process freed before. Measured
    here (zen5-2c): numpy's ``W[rows] @ X`` (gather_mm 2048x2048x64 at 0.5, an 8 MB temporary)
    took 3.4-3.8 ms with the threshold below 8 MB and 2.1 ms above it, and two commits with the
    same numpy code came out 1.8x apart, the slowdown "confirmed" side by side. Pinned at
    glibc's own dynamic ceiling, every benchmark process sees the state a long-running program
    settles in, whatever it ran before. The trim threshold goes with it, at twice the mmap
    threshold as glibc's own adjustment sets it: otherwise a freed block at the top of the heap
    is handed back at once and faulted in again on the next call."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, int(nbytes)) == 1 and mallopt(_M_TRIM_THRESHOLD, 2 * int(nbytes)) == 1


# -- host memory streaming (the default Backend.stream) -----------------------------------------

#: float64 words each STREAM kind moves per element, as STREAM counts them (read: 1;
#: copy a = b: 2; triad a = b + q c: 3; the write-allocate read is not counted)
STREAM_WORDS = {"read": 1, "copy": 2, "triad": 3}
#: elements per block of the host triad (1 MiB per array): the second ufunc pass over a block
#: hits cache; smaller blocks measured slower, the per-call Python overhead showing
TRIAD_BLOCK = 1 << 17
TRIAD_SCALAR = 3.0


def stream_pass(kind: str, n_bytes: int, threads: int | None = None, passes: int = 1):
    """(run, result array, close) for ``passes`` STREAM ``kind`` passes over host float64 arrays of
    ``n_bytes`` each, split into one contiguous slice per thread.

    NumPy ufuncs release the GIL, so the threads stream in parallel (one core cannot
    saturate a memory controller). ``read`` sums its slice (the reduction writes nothing
    back; its passes are one NumPy call over a stride-0 view that repeats the slice); the
    triad is two ufunc passes (a = q c; a += b) over cache-sized blocks, so its memory
    traffic is the 3 words STREAM counts, not 5.
    """
    import numpy as np
    from concurrent.futures import ThreadPoolExecutor

    from numpy.lib.stride_tricks import as_strided

    if kind not in STREAM_WORDS:
        raise ValueError(f"unknown STREAM kernel {kind!r}: choose {', '.join(STREAM_WORDS)}")
    n = int(n_bytes) // 8
    if n < 1:
        raise ValueError(f"n_bytes must be at least 8, got {n_bytes}")
    passes = max(1, int(passes))
    t = max(1, min(threads or thread_policy(), n))
    # filled, not np.empty: the pages are faulted in here, not in the timed pass
    a, b = np.zeros(n), np.full(n, 1.0)
    c = np.full(n, 2.0) if kind == "triad" else None
    bounds = np.linspace(0, n, t + 1).astype(np.int64)
    slices = [(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]
    sums = np.zeros(t)
    pool = ThreadPoolExecutor(max_workers=t, thread_name_prefix="sparsekit-stream")

    def read(i):
        lo, hi = slices[i]
        view = as_strided(b[lo:hi], (passes, hi - lo), (0, 8))
        sums[i] = np.add.reduce(view, axis=1).sum()

    def copy(i):
        lo, hi = slices[i]
        for _ in range(passes):
            np.copyto(a[lo:hi], b[lo:hi])

    def triad(i):
        lo, hi = slices[i]
        for _ in range(passes):
            for s in range(lo, hi, TRIAD_BLOCK):
                e = min(s + TRIAD_BLOCK, hi)
                np.multiply(c[s:e], TRIAD_SCALAR, out=a[s:e])
                np.add(a[s:e], b[s:e], out=a[s:e])

    work = {"read": read, "copy": copy, "triad": triad}[kind]

    def run():
        for _ in pool.map(work, range(t)):
            pass

    return run, (sums if kind == "read" else a), (lambda: pool.shutdown(wait=True))


def _main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m sparsekit.host", description="This host as sparsekit names it.")
    ap.add_argument("--asv-machine", action="store_true", help="register this host in ~/.asv-machine.json")
    ap.add_argument("--machine", default=None, help="with --asv-machine: the name to register (default: machine_name())")
    ap.add_argument("--json", action="store_true", help="print asv's machine record of this host")
    args = ap.parse_args(argv)
    if args.asv_machine:
        entry = register_asv_machine(args.machine)
        print(entry["machine"])
    elif args.json:
        print(json.dumps(asv_machine_entry(args.machine), indent=2))
    else:
        print(machine_name())
    return 0


if __name__ == "__main__":  # the Makefile: MACHINE, and asv's machine record
    sys.exit(_main())

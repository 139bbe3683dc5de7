"""Device probes for backends whose runtime must not be imported to list them.

A backend's ``info()`` is read by ``sparsekit backends`` and must stay cheap, yet
only the device runtime (PyOpenCL, CuPy) can say which device is there. So the
backend runs a short probe in a fresh interpreter and caches its one-line JSON
answer on disk, in ``${XDG_CACHE_HOME:-~/.cache}/sparsekit/<name>-probe.json``,
keyed by whatever decides the answer (library versions, driver files, env vars).
A probe that timed out or crashed is not cached, so a fixed driver is seen at
the next listing. This module holds that mechanism once for every backend; it
imports nothing but the standard library.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

CACHE_VERSION = 1


def dist_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def cache_path(name: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sparsekit" / f"{name}-probe.json"


def key_of(parts: list) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(data.get("entries"), dict):
        return {}
    return data["entries"]


def write_cache(path: Path, key: str, result: dict) -> None:
    entries = read_cache(path)
    entries.pop(key, None)
    entries[key] = result
    entries = dict(list(entries.items())[-16:])  # the most recent few configurations
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "entries": entries}, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs the next listing a probe


def cached(memo: dict, key: str, path: Path, run, refresh: bool = False) -> dict:
    """``run()``'s answer for ``key``: from ``memo``, else the disk cache, else a fresh probe."""
    if not refresh and key in memo:
        return memo[key]
    result = None if refresh else read_cache(path).get(key)
    if result is None:
        result = run()
        if result.pop("cache", True):
            write_cache(path, key, result)
    memo[key] = result
    return result


def parse_output(stdout: str, stderr: str, returncode: int, marker: str, what: str) -> dict:
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


def run_subprocess(package_dir: str, module: str, marker: str, what: str, timeout: float) -> dict:
    """Run ``module.main()`` (found under ``package_dir``) in a fresh interpreter and parse its answer."""
    code = f"import sys; sys.path.insert(0, {package_dir!r}); from {module} import main; main()"
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"ok": False, "cache": False, "reason": f"the {what} probe did not finish in {timeout:g} s (a hanging driver?)"}
    except OSError as e:
        return {"ok": False, "cache": False, "reason": f"could not start the {what} probe: {e}"}
    return parse_output(proc.stdout, proc.stderr, proc.returncode, marker, what)

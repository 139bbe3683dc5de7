"""The roofline: how close a measured call came to the machine's limits.

One definition for the whole suite (``sparsekit run``'s column, the report)::

    fraction = max(FLOPs / peak FLOP/s, bytes / bandwidth) / time

i.e. the time the machine's limits would allow, divided by the time taken (1.0: the
call ran at the roofline). FLOPs are 2 x effective MACs; bytes are the compulsory
bytes. The bandwidth is that of the memory level the problem's footprint fits in
(Empirical Roofline Toolkit style): a problem that fits in the last-level cache is
held against that cache's measured bandwidth, not DRAM's. A fraction above 1 means
a limit is wrong, never that a kernel beat physics.

``Ceilings`` holds a machine's measured limits (``sparsekit calibrate``: read
bandwidth per level, the best GEMM rate of any backend) and picks the level.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def roofline_fraction(flops: float, nbytes: float, seconds: float, peak_gflops=None, bw_gbps=None) -> float | None:
    """max(FLOPs / peak, bytes / bandwidth) / time; None without a valid time, work or limit.

    A missing limit (None) drops its term: with the peak alone the fraction is the
    compute roof's, with the bandwidth alone the memory roof's.
    """
    if not _positive(seconds):
        return None
    terms = []
    if _positive(peak_gflops) and _positive(flops):
        terms.append(flops / (peak_gflops * 1e9))
    if _positive(bw_gbps) and _positive(nbytes):
        terms.append(nbytes / (bw_gbps * 1e9))
    if not terms:
        return None
    return max(terms) / seconds


@dataclass(frozen=True)
class Level:
    """One level of the memory hierarchy: what fits in it (bytes, all cores together; inf for
    DRAM) and the read bandwidth measured on a working set inside it."""

    name: str
    capacity: float
    read_gbps: float | None


@dataclass(frozen=True)
class Ceilings:
    """A machine's measured limits: memory levels smallest first (DRAM last) and the compute peak."""

    levels: tuple
    peak_gflops: float | None
    #: False for calibrations that measured DRAM only: cache-resident problems then have no ceiling
    cache_levels: bool = True

    def level_for(self, footprint: float | None) -> Level | None:
        """The smallest level the footprint fits in; None when that level was not measured."""
        if footprint is None or not math.isfinite(footprint) or footprint <= 0:
            return None
        for level in self.levels:
            if footprint <= level.capacity:
                return level if _positive(level.read_gbps) else None
        return None

    def fraction(self, flops: float, nbytes: float, seconds: float, footprint: float | None = None):
        """(fraction, level name) of one call; (None, reason) when no ceiling applies.

        ``footprint``: bytes the call keeps live (default: ``nbytes``), which picks the level.
        """
        level = self.level_for(nbytes if footprint is None else footprint)
        if level is None:
            why = ("no cache-level ceilings in this calibration (rerun sparsekit calibrate)"
                   if not self.cache_levels else "its memory level was not measured")
            return None, why
        return roofline_fraction(flops, nbytes, seconds, self.peak_gflops, level.read_gbps), level.name

    @classmethod
    def from_calibration(cls, calib: dict | None) -> "Ceilings | None":
        """The machine's ceilings from a calibration dict (``sparsekit.calibrate``), or None.

        Files written before per-level measurement hold DRAM triad per backend only: their
        best triad becomes the DRAM level, and nothing smaller is known.
        """
        if not isinstance(calib, dict):
            return None
        limits = calib.get("limits")
        if isinstance(limits, dict) and isinstance(limits.get("levels"), list):
            levels = []
            for lv in limits["levels"]:
                try:
                    cap = float("inf") if lv.get("capacity") is None else float(lv["capacity"])
                    levels.append(Level(str(lv["name"]), cap, lv.get("read_gbps")))
                except (TypeError, ValueError, KeyError):
                    continue
            levels.sort(key=lambda lv: lv.capacity)
            return cls(tuple(levels), limits.get("gemm_gflops"), True)
        backends = calib.get("backends") if isinstance(calib.get("backends"), dict) else {}
        triads = [e.get("triad_gbps") for e in backends.values() if isinstance(e, dict) and _positive(e.get("triad_gbps"))]
        peaks = [e.get("gemm_gflops") for e in backends.values() if isinstance(e, dict) and _positive(e.get("gemm_gflops"))]
        if not triads and not peaks:
            return None
        llc = calib.get("llc_bytes")
        # without the cache size, only problems of more than 64 MiB are surely DRAM-bound
        dram_from = float(llc) if _positive(llc) else float(64 << 20)
        return cls((Level("cache (not measured)", dram_from, None), Level("DRAM", float("inf"), max(triads) if triads else None)),
                   max(peaks) if peaks else None, False)

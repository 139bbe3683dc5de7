"""The roofline: how close a measured call came to the machine's limits.

One definition for the whole suite (``sparsekit run``'s column, the report)::

    fraction = max(FLOPs / peak FLOP/s, bytes / bandwidth) / time

i.e. the time the machine's limits would allow, divided by the time taken (1.0: the
call ran at the roofline). FLOPs are 2 x effective MACs; bytes are the compulsory
bytes. The bandwidth is that of the memory level the problem's footprint fits in
(Empirical Roofline Toolkit style): a problem that fits in the last-level cache is
held against that cache's measured bandwidth, not DRAM's. A fraction above 1 means
a limit is wrong, never that a kernel beat physics.

``Ceilings`` holds a machine's measured limits (``sparsekit calibrate``: read bandwidth
against working-set size, the best GEMM rate of any backend) and picks the bandwidth: the
one measured at the largest working set no bigger than the problem's footprint. Bandwidth
only falls as a working set grows (it spills from L1 to L2 to the last-level cache to
DRAM), so that figure is at least what the problem itself can reach.
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
    """A machine's measured limits: memory levels smallest first (DRAM last), the compute peak,
    and the read-bandwidth curve (working-set bytes, GB/s) smallest first, when measured."""

    levels: tuple
    peak_gflops: float | None
    #: False for calibrations that measured DRAM only: cache-resident problems then have no ceiling
    cache_levels: bool = True
    curve: tuple = ()

    def level_for(self, footprint: float | None) -> Level | None:
        """The bandwidth a problem of ``footprint`` bytes is held against, as a Level named after
        the memory level it fits in: from the curve, the point at the largest working set no
        bigger than the footprint (None below the smallest set measured); without a curve, the
        level's own figure (None when that level was not measured)."""
        if footprint is None or not math.isfinite(footprint) or footprint <= 0:
            return None
        home = next((lv for lv in self.levels if footprint <= lv.capacity), None)
        if self.curve:
            below = [(b, g) for b, g in self.curve if b <= footprint and _positive(g)]
            if not below or home is None:
                return None
            return Level(home.name, home.capacity, max(below)[1])
        if home is not None:
            return home if _positive(home.read_gbps) else None
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
            curve = []
            for p in limits.get("curve") or []:
                try:
                    curve.append((float(p["bytes"]), p.get("read_gbps")))
                except (TypeError, ValueError, KeyError):
                    continue
            return cls(tuple(levels), limits.get("peak_gflops") or limits.get("gemm_gflops"), True, tuple(sorted(curve)))
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

"""The roofline: how close a measured call came to the machine's limits.

One definition for the whole suite (``sparsekit run``'s column, the report)::

    fraction = max(FLOPs / peak FLOP/s, bytes / bandwidth) / time

i.e. the time the machine's limits would allow, divided by the time taken (1.0: the
call ran at the roofline). FLOPs are 2 x effective MACs; bytes are the compulsory
bytes. A fraction above 1 means a limit is wrong, never that a kernel beat physics.
"""
from __future__ import annotations

import math


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

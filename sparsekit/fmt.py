"""How the suite writes numbers for people: one time formatter, one ratio formatter."""
from __future__ import annotations

import math


def fmt_time(t, missing: str = "n/a") -> str:
    """Seconds with a unit and three significant digits: ``'2.5 s'``, ``'10 ms'``, ``'3 us'``."""
    if t is None or not isinstance(t, (int, float)) or not math.isfinite(t):
        return missing
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"


def fmt_ratio(r, missing: str = "-") -> str:
    """A speedup or slowdown factor: ``'1.25x'``."""
    if r is None or not isinstance(r, (int, float)) or not math.isfinite(r):
        return missing
    return f"{r:.2f}x"


def fmt_percent(f, missing: str = "n/a") -> str:
    """A fraction as a percentage: ``'87%'``."""
    if f is None or not isinstance(f, (int, float)) or not math.isfinite(f):
        return missing
    return f"{f:.0%}"

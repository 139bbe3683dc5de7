"""lava-fixed's number format: Loihi-style 8-bit mantissas with a shared power-of-two exponent.

The rule (pure NumPy, so it is testable without Lava):

* **Weights.** ``e_w = ceil(log2(max|W| / 127))`` (0 when W is all zero); each weight
  becomes the mantissa ``m = rint(w / 2**e_w)``, an 8-bit signed integer in
  [-127, 127], so |w - m 2**e_w| <= 2**e_w / 2. Lava's bit-accurate synapse
  models hold mixed-sign weights as the even integers ``2 m`` in [-256, 254]
  (``clip_weights`` then ``truncate_weights`` with ``num_weight_bits=8`` drop the
  LSB: the mixed-sign scaling ``w_scale = 8 - num_weight_bits + weight_exp + 1``
  of ``lava.proc.sparse.process.Sparse``); that is what the backend hands them,
  and both functions leave such values unchanged.
* **Activations** (the columns of X, sent as graded spikes): the same rule with
  ``SPIKE_BITS`` = 8-bit payloads: ``e_x = ceil(log2(max|X| / 127))``,
  ``x -> rint(x / 2**e_x)``. A zero stays zero, so zeros send no spike.
* **Accumulation** is exact integer arithmetic in the synapse process
  (``weight_exp = 0``: no shift truncates the sum); the host dequantises once:
  ``Y = (A / 2) * 2**(e_w + e_x)``, exact in float64, then rounded to the problem's
  dtype.

The error bound that follows (elementwise, ``allowance``), with dw = 2**e_w / 2 and
dx = 2**e_x / 2 the largest rounding errors and [.] the indicator of a nonzero::

    |W^ X^ - W X| <= dw [W] @ (|X| + dx [X]) + dx |W| @ [X]

since w^ x^ - w x = (w^ - w) x^ + w (x^ - x) and |x^| <= |x| + dx; plus the final
rounding of the result to the dtype, u (|W| @ |X| + that bound).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from sparsekit import dtypes

#: bits of a weight mantissa and of a graded-spike payload (sign included)
WEIGHT_BITS = 8
SPIKE_BITS = 8


def exponent(a, bits: int) -> int:
    """The shared exponent e: the smallest with max|a| / 2**e <= 2**(bits-1) - 1 (0 for all-zero a)."""
    data = a.data if sp.issparse(a) else np.asarray(a)
    peak = float(np.max(np.abs(data), initial=0.0))
    if peak == 0.0 or not math.isfinite(peak):
        return 0
    e = math.ceil(math.log2(peak / (2 ** (bits - 1) - 1)))
    # guard log2's last-bit rounding: the mantissa of the largest value must fit
    while peak / 2.0 ** e > 2 ** (bits - 1) - 1:
        e += 1
    return e


def mantissas(a, e: int):
    """rint(a / 2**e) as int32 (sparse input stays sparse, with the same pattern)."""
    if sp.issparse(a):
        q = a.tocsr().astype(np.float64, copy=True)
        q.data = np.rint(q.data / 2.0 ** e)
        return q.astype(np.int32)
    return np.rint(np.asarray(a, dtype=np.float64) / 2.0 ** e).astype(np.int32)


def quantise_weights(w):
    """(Lava weights ``2 m`` as int32, e_w): see the module doc."""
    e = exponent(w, WEIGHT_BITS)
    m = mantissas(w, e)
    return (m * 2), e


def quantise_spikes(x):
    """(graded-spike payloads as int32, e_x)."""
    e = exponent(x, SPIKE_BITS)
    return mantissas(x, e), e


def dequantise(acc, e_w: int, e_x: int) -> np.ndarray:
    """Host value of an integer accumulator fed ``2 m_w`` weights and ``m_x`` spikes."""
    return np.asarray(acc, dtype=np.float64) * (2.0 ** (e_w + e_x - 1))


def emulate(w, x) -> np.ndarray:
    """The fixed-point product computed on the host with the same rule (float64 result)."""
    wq, e_w = quantise_weights(w)
    xq, e_x = quantise_spikes(x)
    acc = wq.astype(np.int64) @ xq.astype(np.int64)
    return dequantise(np.asarray(acc), e_w, e_x)


def allowance(w, x, dtype: str) -> np.ndarray:
    """Elementwise bound on |fixed-point Y - exact Y| that the rule guarantees (module doc)."""
    e_w = exponent(w, WEIGHT_BITS)
    e_x = exponent(x, SPIKE_BITS)
    dw, dx = 2.0 ** e_w / 2, 2.0 ** e_x / 2
    x = np.asarray(x, dtype=np.float64)
    absx, nzx = np.abs(x), (x != 0).astype(np.float64)
    if sp.issparse(w):
        w = w.tocsr().astype(np.float64)
        absw = abs(w)
        nzw = absw.copy()
        nzw.data = (nzw.data != 0).astype(np.float64)
    else:
        w = np.asarray(w, dtype=np.float64)
        absw, nzw = np.abs(w), (w != 0).astype(np.float64)
    bound = dw * np.asarray(nzw @ (absx + dx * nzx)) + dx * np.asarray(absw @ nzx)
    absref = np.asarray(absw @ absx)
    return bound + dtypes.unit_roundoff(dtype) * (absref + bound)

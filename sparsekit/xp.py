"""Array code shared by the NumPy and CuPy backends, written once against a namespace ``xp``.

Every function takes the array module as its first argument (``numpy`` or
``cupy``) and uses only what both provide, so the same lines run on the host
and on a GPU; the tests run them with ``xp=numpy`` against the oracles. This
module never imports CuPy: a caller that has CuPy arrays passes ``cupy`` itself
(or asks ``namespace(array)``, which finds it in ``sys.modules`` because whoever
made a CuPy array has imported it already).

* ``kwta_select``: keep the k largest entries of every column (partial selection).
* ``route``: the MoE gate's top-k experts per token and their renormalised softmax
  weights, exactly as ``sparsekit.kernels.moe.route`` (ties to the lower expert).
* ``expert_groups`` / ``moe_forward``: group the (slot, token) pairs by expert with
  one stable sort, then run only the chosen experts' products on their tokens.
"""
from __future__ import annotations

import sys

import numpy as np


def namespace(*arrays):
    """``cupy`` if any argument is a CuPy array, else ``numpy`` (CuPy is never imported here)."""
    for a in arrays:
        if type(a).__module__.split(".")[0] == "cupy":
            return sys.modules["cupy"]
    return np


def kwta_select(xp, x, k: int):
    """x with all but the k largest entries of each column set to 0 (values copied, not rounded).

    Ties at the k-th value are broken either way (the catalogue allows it).
    ``x``: m x n array of ``xp``; ``0 <= k <= m``, else ``ValueError``.
    """
    if x.ndim != 2:
        raise ValueError(f"kwta_select needs a 2-D array (m x n), got {x.ndim}-D")
    m, n = x.shape
    if not 0 <= k <= m:
        raise ValueError(f"kwta_select needs 0 <= k <= m, got k={k} with m={m}")
    y = xp.zeros_like(x)
    if k == m:
        y[...] = x
    elif k > 0:
        keep = xp.argpartition(x, m - k, axis=0)[m - k:]
        cols = xp.arange(n)[None, :]
        y[keep, cols] = x[keep, cols]
    return y


def route(xp, logits, top_k: int):
    """(experts, weights), each top_k x n, for ``logits`` (E x n): see ``sparsekit.kernels.moe.route``.

    A stable sort of the negated logits puts the largest first and, among equal
    logits, the lower expert first (CuPy's argsort is always stable; NumPy is
    asked for ``kind="stable"``). The weights are the softmax over the chosen
    logits only, computed in the logits' dtype.
    """
    if logits.ndim != 2:
        raise ValueError(f"route needs E x n logits, got a {logits.ndim}-D array")
    if not 1 <= top_k <= logits.shape[0]:
        raise ValueError(f"route needs 1 <= top_k <= experts ({logits.shape[0]}), got top_k={top_k}")
    kind = {"kind": "stable"} if xp is np else {}
    order = xp.argsort(-logits, axis=0, **kind)[:top_k]
    chosen = xp.take_along_axis(logits, order, axis=0)
    z = xp.exp(chosen - chosen[:1])
    return order, z / z.sum(axis=0, keepdims=True)


def expert_groups(xp, order, n_experts: int):
    """[(expert, slots, tokens), ...] for the experts some token chose, in expert order.

    ``order``: top_k x n chosen experts (``route``). One stable sort of the flattened
    choices groups the pairs by expert; only the per-expert counts (E integers) are
    brought to the host, to slice the groups. Within a group the tokens are
    distinct (a token picks an expert at most once), so ``y[:, tokens] += ...`` is safe.
    """
    top_k, n = order.shape
    flat = order.reshape(-1)
    perm = xp.argsort(flat, **({"kind": "stable"} if xp is np else {}))
    counts = xp.bincount(flat, minlength=n_experts)
    counts = counts.get() if hasattr(counts, "get") else counts  # the one device -> host copy
    if len(counts) != n_experts:  # (bincount raises on negative indices itself)
        raise ValueError(f"expert indices must lie in [0, {n_experts}), found {len(counts) - 1}")
    groups, start = [], 0
    for e, c in enumerate(int(c) for c in counts):
        if c:
            pairs = perm[start:start + c]
            groups.append((e, pairs // n, pairs % n))
        start += c
    return groups


def moe_forward(xp, x, gate, experts, top_k: int, acc_dtype=None, route_dtype=None):
    """y = sum over each token's top_k experts of weight * experts[e] @ x[:, token] (m x n).

    ``x``: k x n tokens as columns, ``gate``: E x k, ``experts``: E x m x k, all of ``xp``.
    The gate's logits are routed in ``route_dtype`` (default: the inputs' dtype).
    The expert products and the weighted sum run in ``acc_dtype`` (default: the
    inputs' dtype), and the result is cast back to the inputs' dtype once, at the
    end: with half inputs and a float32 ``acc_dtype`` that is the catalogue's half
    contract (sum in float32, round once). ``xp.matmul`` returns its operands' type,
    so a half product would be rounded to half before the sum; the operands of
    each chosen expert are therefore widened to ``acc_dtype`` first (exact, one cast
    of that expert's weights and tokens per call). Only the chosen experts run, each
    on the tokens that chose it.
    """
    if experts.ndim != 3 or gate.ndim != 2 or x.ndim != 2:
        raise ValueError("moe_forward needs x (k x n), gate (E x k) and experts (E x m x k)")
    e_count, m, k = experts.shape
    if gate.shape != (e_count, k) or x.shape[0] != k:
        raise ValueError(f"moe_forward: shapes do not agree: x {x.shape}, gate {gate.shape}, experts {experts.shape}")
    dt = x.dtype
    acc = np.dtype(acc_dtype or dt)
    logits = xp.matmul(gate, x)
    order, weight = route(xp, logits.astype(route_dtype or dt, copy=False), top_k)
    weight = weight.astype(acc, copy=False)
    y = xp.zeros((m, x.shape[1]), dtype=acc)
    for e, slots, tokens in expert_groups(xp, order, e_count):
        part = xp.matmul(experts[e].astype(acc, copy=False), x[:, tokens].astype(acc, copy=False))
        y[:, tokens] += part * weight[slots, tokens]
    return y if acc == dt else y.astype(dt)

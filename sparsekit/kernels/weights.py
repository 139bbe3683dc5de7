"""Generation helpers for kernels that take sparse weights: public, for kernels defined in other
packages too (``WEIGHT_DEFAULTS``, ``sparse_weights``, ``dense_operand``, ``csr_bytes``)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import dtypes, io, patterns
from .base import dim

#: parameters understood by ``sparse_weights``
WEIGHT_DEFAULTS = {
    "sparsity": None,
    "pattern": "uniform",
    "blocksize": None,
    "nm": None,
    "alpha": 1.0,
    "weights": None,
    "matrix": None,
}


def sparse_weights(rng: np.random.Generator, params: dict, m_key="m", k_key="k") -> sp.csr_matrix:
    """Weights as canonical CSR in the problem's host dtype; completes ``params`` in place.

    Either user ``weights`` (matrix, array or path; m and k taken from them), a DLMC
    ``matrix`` (short name, with ``sparsity`` picking the pruning level), or a
    generated ``pattern`` at ``sparsity`` with standard-normal values.
    """
    dtype = params["dtype"]
    if params.get("weights") is not None:
        w = io.as_csr(params["weights"], rng)
        for key, size in ((m_key, w.shape[0]), (k_key, w.shape[1])):
            if params.get(key) is not None and params[key] != size:
                raise ValueError(f"{key}={params[key]} does not match the weights' shape {w.shape}")
            params[key] = size
        params["pattern"] = "user"
        params["weights"] = _describe_weights(params["weights"])
    elif params.get("pattern") == "dlmc" or params.get("matrix") is not None:
        name = params.get("matrix")
        if name is None:
            raise ValueError("pattern='dlmc' needs matrix=<name>: one of " + ", ".join(io.DLMC_MATRICES))
        level = params.get("sparsity")
        w = io.fill_values(io.load_smtx(io.dlmc_path(name, level)), rng)
        params["matrix"] = name
        for key, size in ((m_key, w.shape[0]), (k_key, w.shape[1])):
            if params.get(key) is not None and params[key] != size:
                raise ValueError(f"{key}={params[key]} does not match DLMC matrix {name!r} of shape {w.shape}")
            params[key] = size
        params["pattern"] = "dlmc"
    else:
        m = dim(m_key, params.get(m_key))
        k = dim(k_key, params.get(k_key))
        pattern = params.get("pattern") or "uniform"
        if pattern not in patterns.PATTERNS:
            raise ValueError(f"unknown pattern {pattern!r}: choose one of {', '.join(patterns.PATTERNS)}")
        s = params.get("sparsity")
        if pattern == "nm":
            n_, m_ = patterns.nm_ratio(None if s is None else patterns.check_sparsity(s), params.get("nm"))
            params["nm"] = f"{n_}:{m_}"
            s = 1.0 - n_ / m_
        elif s is None:
            raise ValueError(f"sparsity is required for pattern {pattern!r}")
        s = patterns.check_sparsity(s)
        if pattern == "block" and params.get("blocksize") is None:
            params["blocksize"] = (4, 4)
        w = patterns.make_mask(pattern, m, k, s, rng, blocksize=params.get("blocksize"), nm=params.get("nm"), alpha=params.get("alpha", 1.0))
        w.data = rng.standard_normal(w.nnz)
        params["pattern"] = pattern
    w = w.astype(dtypes.host_dtype(dtype))
    w.data = dtypes.to_host(w.data, dtype)
    # rounding to a narrow type may create zeros; keep them stored so the structure is the one asked for
    params["sparsity"] = patterns.sparsity_of(w)
    params["nnz"] = int(w.nnz)
    return w


def _describe_weights(w) -> str:
    if isinstance(w, (str, bytes)) or hasattr(w, "__fspath__"):
        return str(w)
    return f"<{type(w).__name__} {getattr(w, 'shape', '')}>"


def dense_operand(rng: np.random.Generator, shape, dtype: str) -> np.ndarray:
    """A dense standard-normal operand in the host dtype."""
    return dtypes.to_host(rng.standard_normal(shape), dtype)


def csr_bytes(nnz: int, rows: int, itemsize: int) -> int:
    """Bytes of a CSR matrix with 32-bit column indices and row offsets."""
    return nnz * (itemsize + 4) + (rows + 1) * 4

"""Loading weights: DLMC ``.smtx`` masks, user ``.npz``/``.npy`` files, in-memory matrices.

Everything returns a canonical ``scipy.sparse.csr_matrix`` in float64 (sorted
indices, duplicates summed as SciPy does), after checking that it is well formed
and finite; a problem with the input raises ``ValueError``/``TypeError``/
``FileNotFoundError`` naming the file and what is wrong.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

_VENDORED = Path(__file__).parent / "data" / "dlmc"

#: DLMC sparsity levels shipped for every vendored matrix
DLMC_LEVELS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)

#: short name -> (path template below the collection root, N of the original benchmark)
DLMC_MATRICES = {
    "transformer_attn_q": (
        "transformer/magnitude_pruning/{sparsity}/body_encoder_layer_0_self_attention_multihead_attention_q_fully_connected",
        256,
    ),
    "rn50_conv3x3": ("rn50/magnitude_pruning/{sparsity}/bottleneck_2_block_group3_1_1", 196),
}


def dlmc_dirs() -> list[Path]:
    """Folders searched for DLMC matrices: the vendored subset, then ``$SPARSEKIT_DLMC_DIR``."""
    dirs = [_VENDORED]
    extra = os.environ.get("SPARSEKIT_DLMC_DIR")
    if extra:
        dirs.extend(Path(p) for p in extra.split(os.pathsep) if p)
    return dirs


def dlmc_path(name: str, sparsity: float | None = None) -> Path:
    """Resolve a DLMC matrix: a short name of ``DLMC_MATRICES`` plus a sparsity level,
    or a path below the collection root such as ``rn50/magnitude_pruning/0.9/final_dense``."""
    if name in DLMC_MATRICES:
        if sparsity is None:
            raise ValueError(f"DLMC matrix {name!r} needs a sparsity level: one of {DLMC_LEVELS}")
        rel = DLMC_MATRICES[name][0].format(sparsity=f"{float(sparsity):g}")
    else:
        rel = name
    rel = rel.removeprefix("dlmc/").removesuffix(".gz").removesuffix(".smtx")
    for d in dlmc_dirs():
        for suffix in (".smtx", ".smtx.gz"):
            p = d / (rel + suffix)
            if p.is_file():
                return p
    raise FileNotFoundError(
        f"DLMC matrix {rel!r} not found in {', '.join(map(str, dlmc_dirs()))} "
        f"(short names: {', '.join(DLMC_MATRICES)}; set SPARSEKIT_DLMC_DIR for the full collection)"
    )


def _smtx_lines(path: Path, count: int) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"no such .smtx file: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt") as f:
            return [f.readline() for _ in range(count)]
    except (OSError, EOFError, UnicodeDecodeError) as e:  # corrupt gzip, binary junk
        raise ValueError(f"{path}: not a readable .smtx file ({type(e).__name__}: {e})") from None


def _smtx_header(path: Path, line: str) -> tuple[int, int, int]:
    try:
        m, k, nnz = (int(t) for t in line.replace(",", " ").split())
    except ValueError:
        raise ValueError(f"{path}: first line must be 'nrows, ncols, nnz', got {line.strip()[:80]!r}") from None
    return m, k, nnz


def smtx_shape(path) -> tuple[int, int]:
    """(rows, cols) of a ``.smtx`` file, from its header alone."""
    path = Path(path)
    m, k, _ = _smtx_header(path, _smtx_lines(path, 1)[0])
    return m, k


def dlmc_benchmark_shape(name: str) -> tuple[int, int, int]:
    """(m, k, n) of a vendored DLMC matrix's product at the N of the original benchmark."""
    m, k = smtx_shape(dlmc_path(name, DLMC_LEVELS[-1]))
    return m, k, DLMC_MATRICES[name][1]


def load_smtx(path) -> sp.csr_matrix:
    """Read a DLMC ``.smtx`` (optionally gzip-compressed) as a CSR mask of ones."""
    path = Path(path)
    header, indptr_line, indices_line = _smtx_lines(path, 3)
    m, k, nnz = _smtx_header(path, header)
    try:
        indptr = np.array(indptr_line.split(), dtype=np.int64)
        indices = np.array(indices_line.split(), dtype=np.int64)
    except ValueError:
        raise ValueError(f"{path}: row offsets and column indices must be integers") from None
    if len(indices) != nnz:
        raise ValueError(f"{path}: header says nnz={nnz} but line 3 has {len(indices)} column indices")
    return csr_from_parts(np.ones(nnz), indices, indptr, (m, k), what=str(path))


def csr_from_parts(data, indices, indptr, shape, what: str = "CSR matrix") -> sp.csr_matrix:
    """Build a canonical float64 CSR after validating its structure; errors name ``what``."""
    m, k = (int(s) for s in shape)
    if m < 1 or k < 1:
        raise ValueError(f"{what}: both dimensions must be >= 1, got shape {tuple(shape)}")
    indptr = np.asarray(indptr)
    indices = np.asarray(indices)
    data = np.asarray(data)
    if indptr.ndim != 1 or len(indptr) != m + 1:
        raise ValueError(f"{what}: indptr must have nrows+1 = {m + 1} entries, got {indptr.shape}")
    if not np.issubdtype(indptr.dtype, np.integer) or not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"{what}: indptr and indices must be integer arrays")
    if len(indptr) and indptr[0] != 0:
        raise ValueError(f"{what}: indptr must start at 0, got {indptr[0]}")
    if np.any(np.diff(indptr) < 0):
        raise ValueError(f"{what}: indptr must be non-decreasing")
    if indptr[-1] != len(indices) or len(indices) != len(data):
        raise ValueError(
            f"{what}: indptr[-1]={indptr[-1]}, len(indices)={len(indices)} and len(data)={len(data)} must agree"
        )
    if len(indices) and (indices.min() < 0 or indices.max() >= k):
        raise ValueError(f"{what}: column indices must lie in [0, {k}), found {indices.min()}..{indices.max()}")
    check_finite(data, what)
    w = sp.csr_matrix((data.astype(np.float64), indices.astype(np.int32), indptr.astype(np.int64)), shape=(m, k))
    # Duplicates are summed (SciPy's convention) and indices sorted: backends see canonical CSR.
    w.sum_duplicates()
    return w


def check_finite(a, what: str) -> None:
    a = np.asarray(a)
    if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise ValueError(f"{what}: contains {bad} NaN or Inf value(s)")


def as_csr(weights, rng: np.random.Generator | None = None, what: str = "weights") -> sp.csr_matrix:
    """Turn user weights into a validated float64 CSR.

    ``weights``: a scipy.sparse matrix/array, a 2-D ndarray (zeros are dropped), or a
    path to ``.npz`` (``scipy.sparse.save_npz``), ``.npy`` (dense) or ``.smtx[.gz]``
    (DLMC topology; values drawn from ``rng`` as standard normal, as in the SC20
    benchmarks), or ``"dlmc:<path below the collection root>"``.
    """
    if isinstance(weights, str) and weights.startswith("dlmc:"):
        return fill_values(load_smtx(dlmc_path(weights[5:])), rng)
    if isinstance(weights, (str, os.PathLike)):
        path = Path(weights)
        if not path.exists():
            raise FileNotFoundError(f"weights file does not exist: {path}")
        name = path.name.lower()
        if name.endswith(".npz"):
            try:
                w = sp.load_npz(path)
            except Exception as e:  # a corrupt or non-sparse npz
                raise ValueError(f"{path}: not a scipy.sparse .npz file ({e})") from None
            return as_csr(w, rng, what=str(path))
        if name.endswith(".npy"):
            try:
                a = np.load(path, allow_pickle=False)
            except Exception as e:
                raise ValueError(f"{path}: not a NumPy .npy array ({e})") from None
            return as_csr(a, rng, what=str(path))
        if name.endswith(".smtx") or name.endswith(".smtx.gz"):
            return fill_values(load_smtx(path), rng)
        raise ValueError(f"{path}: unknown weights format (expected .npz, .npy, .smtx or .smtx.gz)")
    if sp.issparse(weights):
        if weights.ndim != 2:
            raise ValueError(f"{what}: must be 2-D, got shape {weights.shape}")
        c = weights.tocsr()
        if c.dtype.kind not in "biuf":
            raise TypeError(f"{what}: must hold real numbers, got dtype {c.dtype}")
        return csr_from_parts(c.data, c.indices, c.indptr, c.shape, what=what)
    if isinstance(weights, np.ndarray):
        if weights.ndim != 2:
            raise ValueError(f"{what}: a dense weight array must be 2-D, got shape {weights.shape}")
        if weights.dtype.kind not in "biuf":
            raise TypeError(f"{what}: must hold real numbers, got dtype {weights.dtype}")
        check_finite(weights, what)
        if min(weights.shape) < 1:
            raise ValueError(f"{what}: both dimensions must be >= 1, got shape {weights.shape}")
        return sp.csr_matrix(weights.astype(np.float64))
    raise TypeError(f"{what}: expected a scipy.sparse matrix, a 2-D ndarray or a file path, got {type(weights).__name__}")


def fill_values(mask: sp.csr_matrix, rng: np.random.Generator | None) -> sp.csr_matrix:
    """The mask with seeded standard-normal values (DLMC ships topology only)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    w = mask.copy()
    w.data = rng.standard_normal(w.nnz)
    return w

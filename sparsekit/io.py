"""Loading weights: DLMC ``.smtx`` masks, user ``.npz``/``.npy`` files, in-memory matrices.

Everything returns a canonical ``scipy.sparse.csr_matrix`` in float64 (sorted
indices, duplicates summed as SciPy does), after checking that it is well formed
and finite; a problem with the input raises ``ValueError``/``TypeError``/
``FileNotFoundError`` naming the file and what is wrong.
"""
from __future__ import annotations

import gzip
import os
import zipfile
import zlib
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


#: the longest first line a .smtx may have ("nrows, ncols, nnz"), and slack for line endings
_SMTX_HEADER_MAX = 256
#: the largest .npy header accepted (NumPy writes at most a few hundred bytes for a 2-D array)
_NPY_HEADER_MAX = 10000


def _open_smtx(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"no such .smtx file: {path}")
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _read_line(f, limit: int, path: Path, what: str) -> str:
    """One line of at most ``limit`` bytes: a header cannot make us read (or allocate) more."""
    try:
        raw = f.readline(limit + 1)
    except (OSError, EOFError, zlib.error) as e:  # corrupt gzip stream, truncated archive
        raise ValueError(f"{path}: not a readable .smtx file ({type(e).__name__}: {e})") from None
    if len(raw) > limit:
        raise ValueError(f"{path}: {what} is longer than the header allows ({limit} bytes)")
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text .smtx file (non-ASCII bytes in the {what})") from None


def _smtx_header(path: Path, line: str) -> tuple[int, int, int]:
    try:
        m, k, nnz = (int(t) for t in line.replace(",", " ").split())
    except ValueError:
        raise ValueError(f"{path}: first line must be 'nrows, ncols, nnz', got {line.strip()[:80]!r}") from None
    if m < 1 or k < 1 or nnz < 0:
        raise ValueError(f"{path}: first line declares nrows={m}, ncols={k}, nnz={nnz}: need nrows, ncols >= 1, nnz >= 0")
    if nnz > m * k:
        raise ValueError(f"{path}: first line declares nnz={nnz}, more than nrows*ncols={m * k}")
    return m, k, nnz


def _ints(line: str, path: Path, what: str) -> np.ndarray:
    try:
        return np.array(line.split(), dtype=np.int64)
    except (ValueError, OverflowError):
        raise ValueError(f"{path}: {what} must be integers (64-bit), got {line.strip()[:60]!r}") from None


def smtx_shape(path) -> tuple[int, int]:
    """(rows, cols) of a ``.smtx`` file, from its header alone."""
    path = Path(path)
    with _open_smtx(path) as f:
        m, k, _ = _smtx_header(path, _read_line(f, _SMTX_HEADER_MAX, path, "first line"))
    return m, k


def dlmc_benchmark_shape(name: str) -> tuple[int, int, int]:
    """(m, k, n) of a vendored DLMC matrix's product at the N of the original benchmark."""
    m, k = smtx_shape(dlmc_path(name, DLMC_LEVELS[-1]))
    return m, k, DLMC_MATRICES[name][1]


def load_smtx(path) -> sp.csr_matrix:
    """Read a DLMC ``.smtx`` (optionally gzip-compressed) as a CSR mask of ones.

    Line 1: ``nrows, ncols, nnz``; line 2: the nrows+1 row offsets; line 3: the nnz
    column indices. Hostile files are refused with ``ValueError`` naming the file
    and the defect before anything the header declares is allocated: every line is
    read with a length bound derived from the header, and a plain file's size must
    be able to hold what the header declares.
    """
    path = Path(path)
    with _open_smtx(path) as f:
        m, k, nnz = _smtx_header(path, _read_line(f, _SMTX_HEADER_MAX, path, "first line"))
        if path.suffix != ".gz":
            # every offset and index takes at least one digit and one separator
            need = 2 * (m + 1) + 2 * nnz - 1
            size = path.stat().st_size
            if size < need:
                raise ValueError(f"{path}: truncated: the header declares {m} rows and nnz={nnz}, which need at "
                                 f"least {need} bytes, but the file has {size}")
        from .resources import available_memory, format_bytes

        # parsing holds each token as a Python string (~60 B) before the int64 arrays exist:
        # a compressed file can expand to whatever its header declares, so check that first
        need, avail = (m + 1 + nnz) * 72, available_memory()
        if avail is not None and need > avail:
            raise ValueError(f"{path}: the header declares {m} rows and nnz={nnz}; reading that needs about "
                             f"{format_bytes(need)} but only {format_bytes(avail)} of memory is available")
        digits_nnz, digits_k = len(str(nnz)) + 2, len(str(k)) + 2  # digits, separator, maybe \r
        indptr = _ints(_read_line(f, (m + 1) * digits_nnz + 64, path, "line 2 (row offsets)"), path,
                       "row offsets (line 2)")
        if len(indptr) != m + 1:
            raise ValueError(f"{path}: line 2 must hold nrows+1 = {m + 1} row offsets (indptr), got {len(indptr)}"
                             + (" (truncated file?)" if len(indptr) < m + 1 else ""))
        indices = _ints(_read_line(f, max(nnz, 1) * digits_k + 64, path, "line 3 (column indices)"), path,
                        "column indices (line 3)")
    if len(indices) != nnz:
        raise ValueError(f"{path}: header says nnz={nnz} but line 3 has {len(indices)} column indices"
                         + (" (truncated file?)" if len(indices) < nnz else ""))
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
    for name, arr in (("indptr", indptr), ("indices", indices)):
        if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise ValueError(f"{what}: {name} holds values beyond 2**63")
    # signed: np.diff of unsigned offsets wraps around and would hide a decreasing indptr
    indptr, indices = indptr.astype(np.int64, copy=False), indices.astype(np.int64, copy=False)
    if data.dtype.kind not in "biuf":
        raise TypeError(f"{what}: values must be real numbers, got dtype {data.dtype}")
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
            return as_csr(load_npz(path), rng, what=str(path))
        if name.endswith(".npy"):
            return as_csr(load_npy(path), rng, what=str(path))
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


# -- .npy / .npz: headers first, sizes checked, never pickle -------------------------------------------


def _npy_header(f, path, what: str, data_bytes: int) -> tuple[tuple, bool, np.dtype]:
    """Read and vet a .npy header; ``data_bytes``: bytes of the stream, header included."""
    fmt = np.lib.format
    try:
        start = f.tell()
        version = fmt.read_magic(f)
        # NumPy reads the declared header length before checking it against
        # max_header_size: a 4 GiB declaration would be allocated. Check it first.
        pos = f.tell()
        size_field = f.read(2 if version == (1, 0) else 4)
        if len(size_field) not in (2, 4):
            raise ValueError("EOF in the header length")
        hlen = int.from_bytes(size_field, "little")
        if hlen > _NPY_HEADER_MAX:
            raise ValueError(f"header declares {hlen} bytes, more than the {_NPY_HEADER_MAX} accepted")
        f.seek(pos)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f, max_header_size=_NPY_HEADER_MAX)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(f, max_header_size=_NPY_HEADER_MAX)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
        header_len = f.tell() - start
    except Exception as e:  # noqa: BLE001 - NumPy's header parser raises ValueError, SyntaxError, TokenError...
        raise ValueError(f"{path}: {what} is not a NumPy .npy array ({type(e).__name__}: {e})") from None
    if dtype.hasobject or dtype.names is not None or dtype.subdtype is not None:
        raise ValueError(f"{path}: {what} holds dtype {dtype}, not plain numbers (object arrays would need pickle)")
    if any((not isinstance(d, int)) or d < 0 for d in shape):
        raise ValueError(f"{path}: {what} declares an invalid shape {shape}")
    need = dtype.itemsize
    for d in shape:
        need *= d  # Python ints: a hostile shape cannot overflow
    have = data_bytes - header_len
    if need != have:
        kind = "truncated" if need > have else "wrong length"
        raise ValueError(f"{path}: {kind}: {what} declares shape {shape} of {dtype} = {need} bytes of data, "
                         f"but {have} bytes follow its header")
    from .resources import available_memory, format_bytes

    avail = available_memory()
    if avail is not None and need > avail:
        raise ValueError(f"{path}: {what} declares {format_bytes(need)} of data, more than the "
                         f"{format_bytes(avail)} of memory available")
    return shape, fortran, dtype


def _read_npy_body(f, path, what, shape, fortran, dtype) -> np.ndarray:
    count = 1
    for d in shape:
        count *= d
    try:
        buf = f.read(count * dtype.itemsize)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: {what} cannot be read ({type(e).__name__}: {e})") from None
    if len(buf) != count * dtype.itemsize:
        raise ValueError(f"{path}: truncated: {what} ended after {len(buf)} of {count * dtype.itemsize} bytes")
    a = np.frombuffer(buf, dtype=dtype, count=count)
    return a.reshape(shape[::-1]).T if fortran else a.reshape(shape)


def load_npy(path) -> np.ndarray:
    """A dense 2-D array of real numbers from ``path`` (a ``.npy``), vetted before its data is read."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file does not exist: {path}")
    with open(path, "rb") as f:
        shape, fortran, dtype = _npy_header(f, path, "the file", path.stat().st_size)
        if dtype.kind not in "biuf":
            raise ValueError(f"{path}: a weight array must hold real numbers, got dtype {dtype}")
        if len(shape) != 2:
            raise ValueError(f"{path}: a dense weight array must be 2-D, got shape {shape}")
        return _read_npy_body(f, path, "the array", shape, fortran, dtype)


#: the members scipy.sparse.save_npz writes, per format (plus "format" and "shape")
_NPZ_MEMBERS = {"csr": ("data", "indices", "indptr"), "csc": ("data", "indices", "indptr"),
                "bsr": ("data", "indices", "indptr"), "coo": ("data", "row", "col")}


def load_npz(path) -> sp.csr_matrix:
    """A ``scipy.sparse.save_npz`` file (csr, csc, bsr or coo) as validated float64 CSR.

    Each member's .npy header is vetted against the archive's declared member size
    and the memory available before its data is read, and the structure (offsets,
    index ranges, lengths) is checked before SciPy sees it -- SciPy's own loader
    trusts the indices, and a conversion of out-of-range ones writes out of bounds.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file does not exist: {path}")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise ValueError(f"{path}: not a scipy.sparse .npz file (not a zip archive: {e})") from None
    with zf:
        members = {info.filename.removesuffix(".npy"): info for info in zf.infolist()}

        def read(name: str, numeric: bool = True) -> np.ndarray:
            info = members.get(name)
            if info is None:
                raise ValueError(f"{path}: not a scipy.sparse .npz file (no {name!r} array; it holds "
                                 f"{', '.join(sorted(members)) or 'nothing'})")
            try:
                with zf.open(info) as f:
                    shape, fortran, dtype = _npy_header(f, path, f"member {name!r}", info.file_size)
                    if numeric and dtype.kind not in "biuf":
                        raise ValueError(f"{path}: member {name!r} must hold real numbers, got dtype {dtype}")
                    return _read_npy_body(f, path, f"member {name!r}", shape, fortran, dtype)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as e:
                raise ValueError(f"{path}: member {name!r} cannot be read ({type(e).__name__}: {e})") from None

        fmt_arr = read("format", numeric=False)
        if fmt_arr.dtype.kind not in "SU" or fmt_arr.size != 1:
            raise ValueError(f"{path}: not a scipy.sparse .npz file ('format' is not a format name)")
        fmt = fmt_arr.item()
        fmt = fmt.decode("ascii", "replace") if isinstance(fmt, bytes) else str(fmt)
        if fmt not in _NPZ_MEMBERS:
            raise ValueError(f"{path}: sparse format {fmt!r} is not supported (save it as csr, csc, bsr or coo)")
        shape = read("shape")
        if shape.shape != (2,) or shape.dtype.kind not in "iu":
            raise ValueError(f"{path}: 'shape' must be two integers, got {shape.tolist()!r}")
        m, k = (int(v) for v in shape)
        if m < 1 or k < 1 or max(m, k) >= 2**31:
            raise ValueError(f"{path}: shape {(m, k)} is invalid (dimensions must lie in [1, 2**31))")
        parts = {name: read(name) for name in _NPZ_MEMBERS[fmt]}
    what = str(path)
    data = parts["data"]
    for name, arr in parts.items():
        if name != "data" and arr.dtype.kind not in "iu":
            raise ValueError(f"{path}: {name!r} must be an integer array, got dtype {arr.dtype}")
        if arr.ndim != (3 if (fmt == "bsr" and name == "data") else 1):
            raise ValueError(f"{path}: {name!r} has shape {arr.shape}, wrong for format {fmt}")
    check_finite(data, what)
    if fmt == "csr":
        return csr_from_parts(data, parts["indices"], parts["indptr"], (m, k), what=what)
    if fmt == "csc":  # a CSC matrix is the CSR of its transpose
        return csr_from_parts(data, parts["indices"], parts["indptr"], (k, m),
                              what=f"{what} (csc, checked as the CSR of its transpose)").T.tocsr()
    if fmt == "coo":
        row, col = parts["row"], parts["col"]
        if not (len(row) == len(col) == len(data)):
            raise ValueError(f"{path}: row, col and data must have equal lengths, got {len(row)}, {len(col)}, {len(data)}")
        for name, idx, bound in (("row", row, m), ("col", col, k)):
            if len(idx) and (idx.min() < 0 or idx.max() >= bound):
                raise ValueError(f"{path}: {name} indices must lie in [0, {bound}), found {idx.min()}..{idx.max()}")
        return sp.coo_matrix((data.astype(np.float64), (row, col)), shape=(m, k)).tocsr()
    # bsr: validate the block structure as a CSR of blocks, then let SciPy expand it
    nb, r, c = data.shape
    if r < 1 or c < 1 or m % r or k % c:
        raise ValueError(f"{path}: bsr blocks of {r}x{c} do not tile shape {(m, k)}")
    csr_from_parts(np.zeros(nb), parts["indices"], parts["indptr"], (m // r, k // c), what=what)
    return sp.bsr_matrix((data.astype(np.float64), parts["indices"].astype(np.int64),
                          parts["indptr"].astype(np.int64)), shape=(m, k)).tocsr()

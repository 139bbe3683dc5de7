"""The CUDA C sources of the ``cupy`` backend's own kernels, and the launch-argument binding.

Each source is ``PRELUDE`` (storage type ``T``, accumulator ``A``, ``ld``/``st``
conversions, the accumulator arithmetic ``acc_fma``/``acc_add``, a warp sum)
followed by one file's kernels, built per dtype with ``-DUSE_FP64`` (double),
``-DSTORE_HALF`` (half stored, float accumulated; the conversions are PTX
``cvt``, so no CUDA header is needed: NVRTC and ``nvcc`` both compile the text as
is) or nothing (float). Every kernel is ``extern "C"``.

Subnormals: CuPy appends ``-ftz=true`` to every NVRTC build, which would let the
compiler flush subnormal float operands, products and sums to zero (an error of up
to FLT_MIN per operation, far outside the float32 bound for tiny data). Every
float operation on values here is therefore written as PTX without ``.ftz``
(``fma.rn.f32``, ``add.rn.f32``), which no compiler option rewrites; the tests
compile every source with ``nvcc -ftz=true`` and find no ``.ftz`` instruction.
(Half inputs cannot produce float subnormals anyway: their products are multiples
of 2**-48.) Keys, comparisons and copies are bit operations.

Launch geometry lives in ``_layout`` and is read by the kernels from
``gridDim``/``blockDim`` (k-WTA's columns per block, sparse x sparse's row
slices) or from compile-time defines (``gather_gemm``'s tile, BSR's block size).

Launches never list arguments by position: ``bind(signature, values)`` orders the
values by the parameter names parsed from the kernel's own source and checks
each (``int`` -> a Python int that fits 32 bits, ``long long`` -> 64 bits, a
pointer -> an array of the element type the pointer names), so launch code and
kernel signature cannot drift apart silently. A size beyond the kernel's 32-bit
index arithmetic is ``Unsupported`` (n/a in a sweep, naming the argument), as
``_layout.int32`` makes an index array that does not fit. Nothing here imports CuPy; the
tests compile every kernel with ``nvcc`` and check ``bind`` with NumPy arrays.
"""
from __future__ import annotations

import re

import numpy as np

from sparsekit import Unsupported

PRELUDE = r"""
// storage type T, accumulator A: float; double (USE_FP64); half stored as its bits, float sums (STORE_HALF)
#if defined(STORE_HALF)
typedef unsigned short T;
typedef float A;
__device__ __forceinline__ float ld(T h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ T st(float f) { unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
#elif defined(USE_FP64)
typedef double T;
typedef double A;
__device__ __forceinline__ double ld(double v) { return v; }
__device__ __forceinline__ double st(double v) { return v; }
#else
typedef float T;
typedef float A;
__device__ __forceinline__ float ld(float v) { return v; }
__device__ __forceinline__ float st(float v) { return v; }
#endif

// a * b + c rounded once, and a + b, in the accumulator type. float: explicit PTX without .ftz,
// so CuPy's -ftz=true cannot flush subnormals (double has no flush-to-zero mode).
#if defined(USE_FP64)
__device__ __forceinline__ double acc_fma(double a, double b, double c) { return fma(a, b, c); }
__device__ __forceinline__ double acc_add(double a, double b) { return a + b; }
#else
__device__ __forceinline__ float acc_fma(float a, float b, float c) {
    float d; asm("fma.rn.f32 %0, %1, %2, %3;" : "=f"(d) : "f"(a), "f"(b), "f"(c)); return d;
}
__device__ __forceinline__ float acc_add(float a, float b) {
    float d; asm("add.rn.f32 %0, %1, %2;" : "=f"(d) : "f"(a), "f"(b)); return d;
}
#endif

// sum over the 32 lanes of a warp, the result in lane 0 (a fixed order: runs repeat bit for bit)
__device__ __forceinline__ A warp_sum(A v) {
    for (int off = 16; off > 0; off >>= 1) v = acc_add(v, __shfl_down_sync(0xffffffffu, v, off));
    return v;
}
"""

# -- dense.cu: the row-selecting products (gather_mm) -----------------------------------------
DENSE = r"""
// Output tile GBM x GBN (rows x columns; compiled in, chosen per launch by _layout.gather_tile),
// 256 threads as 16 x 16, each TM x TN outputs strided by 16 (conflict-free shared reads,
// coalesced stores). Rows of the output on gridDim.x (up to 2**31 - 1 blocks), columns on y.
#ifndef GBM
#define GBM 64
#endif
#ifndef GBN
#define GBN 64
#endif
#define GBK 16
#define TM (GBM / 16)
#define TN (GBN / 16)

// Y (r x n) = W[rows] @ X. Only the selected rows of W are read, straight from W: W[rows] is
// never built.
extern "C" __global__ void __launch_bounds__(256)
gather_gemm(const int r, const int n, const int k, const long long* __restrict__ rows,
            const T* __restrict__ w, const T* __restrict__ x, T* __restrict__ y)
{
    __shared__ A ws[GBK][GBM + 1];  // +1: the transposing stores do not collide on a bank
    __shared__ A xs[GBK][GBN];
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    const long long row0 = (long long)blockIdx.x * GBM;
    const int col0 = blockIdx.y * GBN;
    A acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = 0;
    for (int k0 = 0; k0 < k; k0 += GBK) {
        for (int e = tid; e < GBM * GBK; e += 256) {
            const int i = e / GBK, kk = e % GBK;  // neighbouring threads: neighbouring columns of a row
            const long long gi = row0 + i;
            const int gk = k0 + kk;
            ws[kk][i] = (gi < r && gk < k) ? ld(w[rows[gi] * (long long)k + gk]) : (A)0;
        }
        for (int e = tid; e < GBK * GBN; e += 256) {
            const int kk = e / GBN, j = e % GBN;
            const int gk = k0 + kk, gj = col0 + j;
            xs[kk][j] = (gk < k && gj < n) ? ld(x[(long long)gk * n + gj]) : (A)0;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < GBK; ++kk) {
            A a[TM], b[TN];
#pragma unroll
            for (int i = 0; i < TM; ++i) a[i] = ws[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < TN; ++j) b[j] = xs[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] = acc_fma(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const long long gi = row0 + ty + 16 * i;
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            const int gj = col0 + tx + 16 * j;
            if (gi < r && gj < n) y[gi * n + gj] = st(acc[i][j]);
        }
    }
}

// n == 1: one warp per selected row, lanes along the row (coalesced), a warp sum.
extern "C" __global__ void
gather_gemv(const int r, const int k, const long long* __restrict__ rows,
            const T* __restrict__ w, const T* __restrict__ x, T* __restrict__ y)
{
    const int lane = threadIdx.x & 31;
    const long long i = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (i >= r) return;  // a whole warp leaves together: the shuffles below stay full
    const T* wr = w + rows[i] * (long long)k;
    A s = 0;
    for (int c = lane; c < k; c += 32) s = acc_fma(ld(wr[c]), ld(x[c]), s);
    s = warp_sum(s);
    if (lane == 0) y[i] = st(s);
}
"""

# -- spmm.cu: sparse weights (CSR where cuSPARSE is not used, BSR, N:M as ELL) -----------------
SPMM = r"""
// The thread-per-(row, column of X) kernels: rows of Y on gridDim.x (x: up to 2**31 - 1 blocks, so
// no row limit below the int range), columns on gridDim.y; threadIdx.x runs along X's columns.

// CSR, n > 1: the lanes of a warp share a row and read neighbouring columns of X (coalesced); the
// row's indices and values are broadcast.
extern "C" __global__ void
csr_spmm(const int m, const int n, const int* __restrict__ indptr, const int* __restrict__ indices,
         const T* __restrict__ data, const T* __restrict__ x, T* __restrict__ y)
{
    const long long row = (long long)blockIdx.x * blockDim.y + threadIdx.y;
    const int col = blockIdx.y * blockDim.x + threadIdx.x;
    if (row >= m || col >= n) return;
    A s = 0;
    for (int p = indptr[row]; p < indptr[row + 1]; ++p)
        s = acc_fma(ld(data[p]), ld(x[(long long)indices[p] * n + col]), s);
    y[row * n + col] = st(s);
}

// CSR, n == 1 ("CSR vector"): a warp per row, lanes over its nonzeros, a warp sum.
extern "C" __global__ void
csr_spmv(const int m, const int* __restrict__ indptr, const int* __restrict__ indices,
         const T* __restrict__ data, const T* __restrict__ x, T* __restrict__ y)
{
    const int lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= m) return;
    A s = 0;
    for (int p = indptr[row] + lane; p < indptr[row + 1]; p += 32) s = acc_fma(ld(data[p]), ld(x[indices[p]]), s);
    s = warp_sum(s);
    if (lane == 0) y[row] = st(s);
}

// BSR with BH x BW blocks (compiled in): a thread per (block row, column of X), BH sums.
extern "C" __global__ void
bsr_spmm(const int mb, const int n, const int* __restrict__ indptr, const int* __restrict__ indices,
         const T* __restrict__ blocks, const T* __restrict__ x, T* __restrict__ y)
{
    const long long br = (long long)blockIdx.x * blockDim.y + threadIdx.y;
    const int col = blockIdx.y * blockDim.x + threadIdx.x;
    if (br >= mb || col >= n) return;
    A acc[BH];
#pragma unroll
    for (int i = 0; i < BH; ++i) acc[i] = 0;
    for (int p = indptr[br]; p < indptr[br + 1]; ++p) {
        const T* b = blocks + (long long)p * (BH * BW);
        const long long c0 = (long long)indices[p] * BW;
#pragma unroll
        for (int j = 0; j < BW; ++j) {
            const A xv = ld(x[(c0 + j) * n + col]);
#pragma unroll
            for (int i = 0; i < BH; ++i) acc[i] = acc_fma(ld(b[i * BW + j]), xv, acc[i]);
        }
    }
#pragma unroll
    for (int i = 0; i < BH; ++i) y[(br * BH + i) * n + col] = st(acc[i]);
}

// N:M as ELL, column-major (R x M: entry q of row i at q * m + i): a thread per (row, column of
// X). With n == 1 the launch puts threads along rows, and column-major makes those reads coalesced.
extern "C" __global__ void
ell_spmm(const int m, const int n, const int r, const int* __restrict__ cols,
         const T* __restrict__ vals, const T* __restrict__ x, T* __restrict__ y)
{
    const long long row = (long long)blockIdx.x * blockDim.y + threadIdx.y;
    const int col = blockIdx.y * blockDim.x + threadIdx.x;
    if (row >= m || col >= n) return;
    A s = 0;
    for (int q = 0; q < r; ++q) {
        const long long e = (long long)q * m + row;
        s = acc_fma(ld(vals[e]), ld(x[(long long)cols[e] * n + col]), s);
    }
    y[row * n + col] = st(s);
}
"""

# -- sddmm.cu -------------------------------------------------------------------------------------
SDDMM = r"""
// A dot product per mask nonzero only: a warp per nonzero, lanes along K over a row of A and a
// row of B^T (both contiguous), a warp sum.
extern "C" __global__ void
sddmm(const int nnz, const int k, const int* __restrict__ rows, const int* __restrict__ cols,
      const T* __restrict__ a, const T* __restrict__ bt, T* __restrict__ out)
{
    const int lane = threadIdx.x & 31;
    const long long e = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (e >= nnz) return;
    const T* ar = a + (long long)rows[e] * k;
    const T* br = bt + (long long)cols[e] * k;
    A s = 0;
    for (int c = lane; c < k; c += 32) s = acc_fma(ld(ar[c]), ld(br[c]), s);
    s = warp_sum(s);
    if (lane == 0) out[e] = st(s);
}
"""

# -- kwta.cu --------------------------------------------------------------------------------------
KWTA = r"""
// Order-preserving unsigned keys of the values (larger value <=> larger key); half values
// are widened to float first (exact), so one 32-bit key type serves float and half.
#if defined(USE_FP64)
typedef unsigned long long K;
#define KEY_BITS 64
__device__ __forceinline__ K key_of(T v) {
    const K u = (K)__double_as_longlong(v);
    return (u >> 63) ? ~u : (u | 0x8000000000000000ull);
}
#else
typedef unsigned int K;
#define KEY_BITS 32
__device__ __forceinline__ K key_of(T v) {
    const unsigned int u = __float_as_uint(ld(v));
    return (u >> 31) ? ~u : (u | 0x80000000u);
}
#endif

// Exact k-WTA per column: blockDim.x = CX neighbouring columns per block (its reads of a row are
// one run of CX values), blockDim.y = KL threads per column splitting its rows into KL contiguous
// chunks, CX * KL = 256 (_layout.kwta_launch picks CX so that the grid fills the GPU: one column
// per block when there are fewer columns than SMs). The k-th largest key is found bit by bit from
// the top (the largest t with count(key >= t) >= k), with the counts summed over the KL threads
// in shared memory; entries above it are kept, and ties at it in row order up to exactly k.
extern "C" __global__ void __launch_bounds__(256)
kwta(const int m, const int n, const int k, const T* __restrict__ x, T* __restrict__ y)
{
    __shared__ unsigned int cnt[256];  // [ty][tx] at ty * CX + tx
    const int tx = threadIdx.x, ty = threadIdx.y, CX = blockDim.x, KL = blockDim.y;
    const long long col = (long long)blockIdx.x * CX + tx;
    const bool live = col < n;  // no early return: every thread takes part in the barriers
    const int chunk = (m + KL - 1) / KL;
    const int lo = min(m, ty * chunk), hi = min(m, lo + chunk);
    K t = 0;
    for (int bit = KEY_BITS - 1; bit >= 0; --bit) {
        const K cand = t | ((K)1 << bit);
        unsigned int c = 0;
        if (live)
            for (int i = lo; i < hi; ++i) c += key_of(x[(long long)i * n + col]) >= cand;
        cnt[ty * CX + tx] = c;
        __syncthreads();
        unsigned int total = 0;
        for (int j = 0; j < KL; ++j) total += cnt[j * CX + tx];
        __syncthreads();
        if (total >= (unsigned int)k) t = cand;
    }
    unsigned int gt = 0, eq = 0;
    if (live)
        for (int i = lo; i < hi; ++i) {
            const K kk = key_of(x[(long long)i * n + col]);
            gt += kk > t;
            eq += kk == t;
        }
    cnt[ty * CX + tx] = gt;
    __syncthreads();
    unsigned int above = 0;
    for (int j = 0; j < KL; ++j) above += cnt[j * CX + tx];
    __syncthreads();
    cnt[ty * CX + tx] = eq;
    __syncthreads();
    unsigned int seen = 0;  // ties held by the threads before this one (lower rows)
    for (int j = 0; j < ty; ++j) seen += cnt[j * CX + tx];
    const unsigned int need = (unsigned int)k - above;  // count(key > t) <= k by the choice of t
    if (live)
        for (int i = lo; i < hi; ++i) {
            const long long at = (long long)i * n + col;
            const T v = x[at];
            const K kk = key_of(v);
            bool keep = kk > t;
            if (kk == t) keep = seen++ < need;
            y[at] = keep ? v : (T)0;
        }
}
"""

# -- sparse_sparse.cu -----------------------------------------------------------------------------
SPARSE_SPARSE = r"""
// The first index in [lo, hi) of the sorted a[] whose value is >= v (hi if none).
__device__ __forceinline__ int lower_bound(const int* __restrict__ a, int lo, int hi, const int v) {
    while (lo < hi) {
        const int mid = lo + ((hi - lo) >> 1);
        if (a[mid] < v) lo = mid + 1; else hi = mid;
    }
    return lo;
}

// Y[:, j] = sum over the nonzeros (r, xv) of X[:, j] of xv * W[:, r]: W and X both by columns
// (CSC, rows sorted), so only effective MACs are done. Block (j, s) computes output column j over
// the row slice s of gridDim.y equal slices, so the grid is n x slices blocks (_layout.ss_launch
// picks enough slices to fill the GPU and to fit a slice's accumulators in shared memory). Its
// threads split each selected column of W within the slice (binary search for the slice's
// bounds; distinct rows: no two threads add to one entry) and a barrier separates the columns,
// so the sums run in a fixed order without atomics. The slice accumulates in shared memory
// (use_shared) or in the global n x m scratch. The result is written transposed, yt (n x m):
// each block writes a contiguous run of row j of yt (coalesced); the host copy is Y = yt.T.
extern "C" __global__ void
ss_scatter(const int m, const int n, const int use_shared,
           const int* __restrict__ wptr, const int* __restrict__ wrow, const T* __restrict__ wval,
           const int* __restrict__ xptr, const int* __restrict__ xrow, const T* __restrict__ xval,
           A* __restrict__ scratch, T* __restrict__ yt)
{
    extern __shared__ double smem[];  // double: aligned for either accumulator type
    const int j = blockIdx.x;
    const long long span = ((long long)m + gridDim.y - 1) / gridDim.y;
    const int r0 = (int)min((long long)m, blockIdx.y * span), r1 = (int)min((long long)m, r0 + span);
    const int len = r1 - r0;
    A* acc = use_shared ? (A*)smem : scratch + (long long)j * m + r0;
    for (int i = threadIdx.x; i < len; i += blockDim.x) acc[i] = 0;
    __syncthreads();
    for (int q = xptr[j]; q < xptr[j + 1]; ++q) {
        const int r = xrow[q];
        const A xv = ld(xval[q]);
        const int lo = lower_bound(wrow, wptr[r], wptr[r + 1], r0);
        const int hi = lower_bound(wrow, lo, wptr[r + 1], r1);
        for (int p = lo + threadIdx.x; p < hi; p += blockDim.x) {
            const int i = wrow[p] - r0;
            acc[i] = acc_fma(ld(wval[p]), xv, acc[i]);
        }
        __syncthreads();
    }
    for (int i = threadIdx.x; i < len; i += blockDim.x) yt[(long long)j * m + r0 + i] = st(acc[i]);
}
"""

#: file name -> kernel source (without the prelude)
FILES = {"dense.cu": DENSE, "spmm.cu": SPMM, "sddmm.cu": SDDMM, "kwta.cu": KWTA, "sparse_sparse.cu": SPARSE_SPARSE}
#: defines a file needs to compile (the backend passes the problem's; these are for checks)
EXAMPLE_DEFINES = {"spmm.cu": {"BH": 4, "BW": 4}, "dense.cu": {"GBM": 64, "GBN": 64}}
#: dtype -> the compile options that select T and A
DTYPE_OPTIONS = {"float32": (), "float64": ("-DUSE_FP64",), "float16": ("-DSTORE_HALF",)}


def source(file: str) -> str:
    """The prelude followed by ``file``'s kernels (``KeyError`` naming the files for another name)."""
    if file not in FILES:
        raise KeyError(f"no CUDA source {file!r}: there are {', '.join(FILES)}")
    return PRELUDE + "\n" + FILES[file]


def options(dtype: str, defines: dict | None = None) -> tuple:
    """Compile options for ``dtype`` and ``defines`` (sorted, so equal builds share a cache key)."""
    if dtype not in DTYPE_OPTIONS:
        raise ValueError(f"the CUDA kernels have no dtype {dtype!r}: they do {', '.join(DTYPE_OPTIONS)}")
    return DTYPE_OPTIONS[dtype] + tuple(f"-D{k}={v}" for k, v in sorted((defines or {}).items()))


_KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(([^)]*)\)', re.S)
_PARAM = re.compile(r"^(?P<type>(?:const\s+)?(?:unsigned\s+)?(?:long\s+long|int|T|A|float|double))\s*"
                    r"(?P<ptr>\*)?\s*(?:__restrict__\s*)?(?P<name>\w+)$")


def signatures(src: str) -> dict[str, list[tuple[str, str, bool]]]:
    """kernel name -> [(parameter name, base type, is pointer), ...] parsed from ``src``."""
    out = {}
    for name, params in _KERNEL.findall(src):
        parsed = []
        for raw in (p.strip() for p in params.split(",")):
            mt = _PARAM.match(" ".join(raw.split()))
            if mt is None:
                raise ValueError(f"kernel {name}: cannot parse parameter {raw!r}")
            base = mt["type"].replace("const ", "").strip()
            parsed.append((mt["name"], base, mt["ptr"] is not None))
        out[name] = parsed
    return out


def element_dtype(base: str, dtype: str) -> np.dtype:
    """The array element type a pointer of ``base`` type points to, in a ``dtype`` build."""
    storage = {"float16": np.float16, "float32": np.float32, "float64": np.float64}[dtype]
    acc = np.float64 if dtype == "float64" else np.float32
    table = {"T": storage, "A": acc, "int": np.int32, "long long": np.int64, "float": np.float32,
             "double": np.float64, "unsigned int": np.uint32}
    return np.dtype(table[base])


_SCALAR = {"int": np.int32, "long long": np.int64, "unsigned int": np.uint32}


def bind(kernel: str, signature, dtype: str, values: dict) -> tuple:
    """The launch arguments of ``kernel`` in its parameter order, checked.

    ``values`` maps every parameter name to a value: integer scalars become the C
    type's NumPy scalar (``Unsupported`` if the value does not fit), arrays must
    have the element type the pointer names. A missing, unknown or mistyped
    argument raises ``TypeError`` naming it.
    """
    names = [p[0] for p in signature]
    missing, unknown = [n for n in names if n not in values], [n for n in values if n not in names]
    if missing or unknown:
        raise TypeError(f"kernel {kernel}({', '.join(names)}): missing {missing or 'none'}, unknown {unknown or 'none'}")
    args = []
    for name, base, ptr in signature:
        v = values[name]
        if ptr:
            want = element_dtype(base, dtype)
            got = getattr(v, "dtype", None)
            if got is None or np.dtype(got) != want:
                raise TypeError(f"kernel {kernel}: argument {name} must be an array of {want}, got {got or type(v).__name__}")
            args.append(v)
        elif base in _SCALAR:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"kernel {kernel}: argument {name} must be an integer, got {type(v).__name__}")
            ctype = _SCALAR[base]
            info = np.iinfo(ctype)
            if not info.min <= int(v) <= info.max:
                raise Unsupported(f"kernel {kernel}: argument {name}={int(v)} does not fit the kernel's {base} "
                                  "(its index arithmetic is 32-bit)")
            args.append(ctype(v))
        else:
            raise TypeError(f"kernel {kernel}: scalar parameter {name} of type {base} is not supported by bind()")
    return tuple(args)

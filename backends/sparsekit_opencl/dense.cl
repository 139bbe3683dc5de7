/* Dense products: Y = W @ X (dense_mm) and Y = W[rows] @ X (gather_mm, with -DGATHER).
 * Row-major W (M x K, or the full m x K matrix when gathering), X (K x N), Y (M x N).
 * With GATHER, output row r reads W row rows[r]: only the selected rows are ever
 * loaded, W[rows] is never built.
 */
#ifdef GATHER
#define WROW(r) ((size_t)rows[r])
#define GATHER_ARG , __global const int* restrict rows
#else
#define WROW(r) ((size_t)(r))
#define GATHER_ARG
#endif

#ifdef TSM
/* Tiled GEMM (after Nugteren's "myGEMM" kernel 6): a work-group computes a
 * TSM x TSN tile of Y, looping over K in TSK-deep slabs staged in local memory;
 * each work-item holds WPTM x WPTN results in registers (2-D register blocking).
 * Local size (TSN/WPTN, TSM/WPTM). Work-item (tn, tm) owns rows tm + i*RTSM and
 * columns tn + j*RTSN of the tile, so neighbouring work-items touch neighbouring
 * columns of X and Y (coalesced on GPUs, vectorised across work-items by PoCL).
 * Slab loads are coalesced along rows of W and X; out-of-range elements load as 0.
 */
#define RTSM (TSM / WPTM)
#define RTSN (TSN / WPTN)
#define NWI (RTSM * RTSN)
#define LPTW ((TSM * TSK) / NWI)
#define LPTX ((TSK * TSN) / NWI)

__kernel __attribute__((reqd_work_group_size(RTSN, RTSM, 1)))
void gemm(const int M, const int N, const int K,
          __global const REAL* restrict W, __global const REAL* restrict X,
          __global REAL* restrict Y GATHER_ARG)
{
    const int tn = get_local_id(0), tm = get_local_id(1);
    const int tid = tm * RTSN + tn;
    const int m0 = get_group_id(1) * TSM, n0 = get_group_id(0) * TSN;
    __local ACC Wt[TSK][TSM];  /* the W slab, transposed: Wt[kk][row] */
    __local ACC Xs[TSK][TSN];
    ACC acc[WPTM][WPTN];
    #pragma unroll
    for (int i = 0; i < WPTM; i++)
        #pragma unroll
        for (int j = 0; j < WPTN; j++)
            acc[i][j] = ZERO;

    for (int k0 = 0; k0 < K; k0 += TSK) {
        for (int l = 0; l < LPTW; l++) {
            const int e = tid + l * NWI;
            const int r = e / TSK, c = e % TSK;
            const int gr = m0 + r, gc = k0 + c;
            Wt[c][r] = (gr < M && gc < K) ? LD(W, WROW(gr) * K + gc) : ZERO;
        }
        for (int l = 0; l < LPTX; l++) {
            const int e = tid + l * NWI;
            const int r = e / TSN, c = e % TSN;
            const int gr = k0 + r, gc = n0 + c;
            Xs[r][c] = (gr < K && gc < N) ? LD(X, (size_t)gr * N + gc) : ZERO;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int kk = 0; kk < TSK; kk++) {
            ACC wr[WPTM], xr[WPTN];
            #pragma unroll
            for (int i = 0; i < WPTM; i++) wr[i] = Wt[kk][tm + i * RTSM];
            #pragma unroll
            for (int j = 0; j < WPTN; j++) xr[j] = Xs[kk][tn + j * RTSN];
            #pragma unroll
            for (int i = 0; i < WPTM; i++)
                #pragma unroll
                for (int j = 0; j < WPTN; j++)
                    acc[i][j] = wr[i] * xr[j] + acc[i][j];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    #pragma unroll
    for (int i = 0; i < WPTM; i++) {
        const int r = m0 + tm + i * RTSM;
        if (r >= M) break;
        #pragma unroll
        for (int j = 0; j < WPTN; j++) {
            const int c = n0 + tn + j * RTSN;
            if (c < N) ST(Y, (size_t)r * N + c, acc[i][j]);
        }
    }
}
#endif /* TSM */

#ifdef RM
/* Register-blocked GEMM for CPU devices (PoCL & co.): no local memory and no
 * barriers, so the whole kernel is one loop the compiler keeps in registers;
 * the caches do the tiling that local memory does on a GPU. A work-item computes
 * RM rows x NV vectors of VW columns of Y with explicit OpenCL vectors (one
 * SIMD register each): per step of K it loads NV vectors of a row of X and
 * broadcasts RM elements of W, for RM x NV vector FMAs. X and Y are padded to
 * NP columns (a multiple of VW x NV) in prepare; rows past M re-read row M - 1
 * and are not stored. Any local size. (On PoCL this runs ~20x faster than the
 * local-memory kernel above: 150 against 7 GFLOP/s at 4096 x 4096 x 128.)
 */
__kernel void gemm_vec(const int M, const int NP, const int K,
                       __global const REAL* restrict W, __global const REAL* restrict X,
                       __global REAL* restrict Y GATHER_ARG)
{
    const int j0 = get_global_id(0) * (VW * NV), i0 = get_global_id(1) * RM;
    if (j0 >= NP || i0 >= M) return;
    VACC acc[RM][NV];
    size_t wrow[RM];
    #pragma unroll
    for (int r = 0; r < RM; r++) {
        wrow[r] = WROW(min(i0 + r, M - 1)) * K;
        #pragma unroll
        for (int v = 0; v < NV; v++) acc[r][v] = (VACC)(ZERO);
    }
    for (int l = 0; l < K; l++) {
        VACC xv[NV];
        #pragma unroll
        for (int v = 0; v < NV; v++) xv[v] = VLD(X, (size_t)l * NP + j0 + v * VW);
        #pragma unroll
        for (int r = 0; r < RM; r++) {
            const ACC w = LD(W, wrow[r] + l);
            #pragma unroll
            for (int v = 0; v < NV; v++) acc[r][v] = w * xv[v] + acc[r][v];
        }
    }
    for (int r = 0; r < RM && i0 + r < M; r++)
        #pragma unroll
        for (int v = 0; v < NV; v++) VST(Y, (size_t)(i0 + r) * NP + j0 + v * VW, acc[r][v]);
}
#endif /* RM */

#ifdef GEMV_RM
/* Matrix-vector product (N == 1) for CPU devices: a work-item computes GEMV_RM
 * rows, each as VW-wide vector partial sums along the row (explicit SIMD, and
 * GEMV_RM independent chains), reduced across the vector at the end.
 * K_ALIGNED (K a multiple of VW): rows of W start aligned, plain vector loads. */
#ifdef K_ALIGNED
#define WLD VLD
#else
#define WLD VLDU
#endif
__kernel void gemv_vec(const int M, const int K,
                       __global const REAL* restrict W, __global const REAL* restrict x,
                       __global REAL* restrict y GATHER_ARG)
{
    const int i0 = get_global_id(0) * GEMV_RM;
    if (i0 >= M) return;
    size_t wrow[GEMV_RM];
    VACC acc[GEMV_RM];
    #pragma unroll
    for (int r = 0; r < GEMV_RM; r++) {
        wrow[r] = WROW(min(i0 + r, M - 1)) * K;
        acc[r] = (VACC)(ZERO);
    }
    const int kv = K - K % VW;
    for (int l = 0; l < kv; l += VW) {
        const VACC xv = VLD(x, l);
        #pragma unroll
        for (int r = 0; r < GEMV_RM; r++) acc[r] = WLD(W, wrow[r] + l) * xv + acc[r];
    }
    for (int r = 0; r < GEMV_RM && i0 + r < M; r++) {
        ACC t = HSUM(acc[r]);
        for (int l = kv; l < K; l++) t = LD(W, wrow[r] + l) * LD(x, l) + t;
        ST(y, i0 + r, t);
    }
}
#endif /* GEMV_RM */

#ifdef LANES
/* Matrix-vector product (N == 1): ROWS rows per work-group, LANES work-items per
 * row striding along it (coalesced reads of the row), then a tree reduction in
 * local memory. Local size (LANES, ROWS).
 */
__kernel __attribute__((reqd_work_group_size(LANES, ROWS, 1)))
void gemv(const int M, const int K,
          __global const REAL* restrict W, __global const REAL* restrict x,
          __global REAL* restrict y GATHER_ARG)
{
    const int lane = get_local_id(0), lr = get_local_id(1);
    const int r = get_group_id(1) * ROWS + lr;
    __local ACC part[ROWS][LANES];
    ACC acc = ZERO;
    if (r < M) {
        const size_t base = WROW(r) * K;
        for (int l = lane; l < K; l += LANES)
            acc = LD(W, base + l) * LD(x, l) + acc;
    }
    part[lr][lane] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = LANES / 2; s > 0; s >>= 1) {
        if (lane < s) part[lr][lane] += part[lr][lane + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lane == 0 && r < M) ST(y, r, part[lr][0]);
}
#endif /* LANES */

/* Sparse weights times sparse activations: Y = W @ X with W (M x K) and X (K x N)
 * both compressed by columns (CSC). Column j of Y is the combination of the
 * columns of W selected by the nonzeros of column j of X:
 *     Y[:, j] = sum over q in X[:, j]'s nonzeros of X[l_q, j] * W[:, l_q]
 * so the work is exactly the effective MACs (both operands nonzero).
 *
 * A work-group owns one output column j and accumulates it in ACC: the SL
 * work-items split each selected column of W among themselves; the entries of
 * one column of W have distinct rows, so no two work-items update the same
 * element between two barriers, and no atomics are needed. Every element's sum
 * runs over q in order. Local size (SL).
 *
 * LOCAL_M defined: the column is accumulated in local memory (M <= LOCAL_M) and
 * stored straight into Y. Otherwise it is accumulated in a global N x M scratch
 * Yt and store_transposed writes Y.
 */
#ifdef LOCAL_M
#define YACC __local ACC
#define YFENCE CLK_LOCAL_MEM_FENCE
#else
#define YACC __global ACC
#define YFENCE CLK_GLOBAL_MEM_FENCE
#endif

#ifdef SL
__kernel __attribute__((reqd_work_group_size(SL, 1, 1)))
void ss_scatter(const int M, const int N,
                __global const int* restrict wptr, __global const int* restrict wrow,
                __global const REAL* restrict wval,
                __global const int* restrict xptr, __global const int* restrict xrow,
                __global const REAL* restrict xval,
#ifdef LOCAL_M
                __global REAL* restrict Y
#else
                __global ACC* restrict Yt
#endif
                )
{
    const int j = get_group_id(0), lane = get_local_id(0);
#ifdef LOCAL_M
    __local ACC ycol[LOCAL_M];
    YACC* y = ycol;
#else
    YACC* y = Yt + (size_t)j * M;
#endif
    for (int i = lane; i < M; i += SL) y[i] = ZERO;
    barrier(YFENCE);
    const int qend = xptr[j + 1];
    for (int q = xptr[j]; q < qend; q++) {
        const int l = xrow[q];
        const ACC xv = LD(xval, q);
        const int pend = wptr[l + 1];
        for (int p = wptr[l] + lane; p < pend; p += SL) {
            const int i = wrow[p];
            y[i] = LD(wval, p) * xv + y[i];
        }
        barrier(YFENCE);
    }
#ifdef LOCAL_M
    for (int i = lane; i < M; i += SL) ST(Y, (size_t)i * N + j, y[i]);
#endif
}

#endif /* SL */

#ifndef LOCAL_M
/* Y (M x N, REAL) = transpose of Yt (N x M, ACC), through a TT x TT tile in local
 * memory so that both the reads and the writes are coalesced. Local size (TT, TT). */
#ifndef TT
#define TT 16
#endif
__kernel __attribute__((reqd_work_group_size(TT, TT, 1)))
void store_transposed(const int M, const int N, __global const ACC* restrict Yt, __global REAL* restrict Y)
{
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int i0 = get_group_id(0) * TT, j0 = get_group_id(1) * TT;
    __local ACC tile[TT][TT + 1];
    if (j0 + ty < N && i0 + tx < M) tile[ty][tx] = Yt[(size_t)(j0 + ty) * M + i0 + tx];
    barrier(CLK_LOCAL_MEM_FENCE);
    if (i0 + ty < M && j0 + tx < N) ST(Y, (size_t)(i0 + ty) * N + j0 + tx, tile[tx][ty]);
}
#endif

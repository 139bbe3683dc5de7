/* Y = W @ X with W sparse: CSR (scalar and vector strategies), BSR, and N:M as ELL.
 *
 * X is row-major K x NP and Y row-major M x NP, where NP >= N is the column count
 * padded to a multiple of VW * NV (common.cl): a work-item computes NV vectors of
 * VW adjacent columns of one row of Y. On a GPU VW = NV = 1: one column per
 * work-item, and neighbouring work-items (dimension 0) take neighbouring columns,
 * so reads of a row of X and writes of Y are coalesced. On a CPU VW is the SIMD
 * width and the vector loads of a row of X are explicit.
 * SPLIT independent partial sums per output break the chain of dependent adds
 * (a single accumulator is bound by the add latency, not by memory); the sum of
 * one output then runs in a different order, which the rounding bound allows.
 */
#ifndef NV
#define NV 1
#endif
#ifndef SPLIT
#define SPLIT 1
#endif
#define WCOLS (VW * NV)

/* Row i of Y at columns j0 .. j0+WCOLS: the sum over t < count of val[e] * X[idx[e], :]
 * with e = base + t * step. CSR rows (step 1) and ELL rows (step 1 row-major, M
 * column-major) are the same walk; only where a row's entries lie differs. */
inline void sparse_row_times_x(const size_t base, const size_t step, const int count,
                               const int i, const int j0, const int NP,
                               __global const int* restrict idx, __global const REAL* restrict val,
                               __global const REAL* restrict X, __global REAL* restrict Y)
{
    VACC acc[SPLIT][NV];
    #pragma unroll
    for (int s = 0; s < SPLIT; s++)
        #pragma unroll
        for (int v = 0; v < NV; v++) acc[s][v] = (VACC)(ZERO);
    int t = 0;
    for (; t + SPLIT <= count; t += SPLIT)
        #pragma unroll
        for (int s = 0; s < SPLIT; s++) {
            const size_t e = base + (size_t)(t + s) * step;
            const ACC w = LD(val, e);
            const size_t xo = (size_t)idx[e] * NP + j0;
            #pragma unroll
            for (int v = 0; v < NV; v++) acc[s][v] = w * VLD(X, xo + v * VW) + acc[s][v];
        }
    for (; t < count; t++) {
        const size_t e = base + (size_t)t * step;
        const ACC w = LD(val, e);
        const size_t xo = (size_t)idx[e] * NP + j0;
        #pragma unroll
        for (int v = 0; v < NV; v++) acc[0][v] = w * VLD(X, xo + v * VW) + acc[0][v];
    }
    #pragma unroll
    for (int v = 0; v < NV; v++) {
        #pragma unroll
        for (int s = 1; s < SPLIT; s++) acc[0][v] += acc[s][v];
        VST(Y, (size_t)i * NP + j0 + v * VW, acc[0][v]);
    }
}

/* CSR scalar: one work-item per (row i, WCOLS columns): it walks row i alone.
 * The strategy for short and medium rows. */
__kernel void csr_scalar(const int M, const int NP,
                         __global const int* restrict ptr, __global const int* restrict idx,
                         __global const REAL* restrict val, __global const REAL* restrict X,
                         __global REAL* restrict Y)
{
    const int j0 = get_global_id(0) * WCOLS, i = get_global_id(1);
    if (i >= M || j0 >= NP) return;
    sparse_row_times_x(ptr[i], 1, ptr[i + 1] - ptr[i], i, j0, NP, idx, val, X, Y);
}

#ifdef VLANES
/* CSR vector: one work-group per row (and tile of TN x VW columns): its VLANES
 * work-items split the row's nonzeros (lane l takes l, l + VLANES, ...: on a GPU
 * consecutive lanes read consecutive nonzeros), then reduce in local memory.
 * The strategy for long rows, which would otherwise be one work-item's serial
 * loop while the other work-items idle. Local size (TN, VLANES). */
__kernel __attribute__((reqd_work_group_size(TN, VLANES, 1)))
void csr_vector(const int M, const int NP,
                __global const int* restrict ptr, __global const int* restrict idx,
                __global const REAL* restrict val, __global const REAL* restrict X,
                __global REAL* restrict Y)
{
    const int c = get_local_id(0), lane = get_local_id(1);
    const int j0 = (get_group_id(0) * TN + c) * VW, i = get_group_id(1);
    __local VACC part[VLANES][TN];
    VACC acc = (VACC)(ZERO);
    if (j0 < NP) {
        const int end = ptr[i + 1];
        for (int p = ptr[i] + lane; p < end; p += VLANES)
            acc = LD(val, p) * VLD(X, (size_t)idx[p] * NP + j0) + acc;
    }
    part[lane][c] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = VLANES / 2; s > 0; s >>= 1) {
        if (lane < s) part[lane][c] += part[lane + s][c];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lane == 0 && j0 < NP) VST(Y, (size_t)i * NP + j0, part[0][c]);
}
#endif /* VLANES */

#ifdef BH
/* BSR with BH x BW blocks (compile-time, so the loops over a block unroll):
 * work-item (columns, row) sums, over the blocks of block row row / BH, that
 * block's row row % BH times the BW rows of X the block covers. Each block's BW
 * products are summed on their own, then added: the products of successive
 * blocks do not wait on each other. Explicit zeros in kept blocks are computed,
 * as BSR does. blocks: nnzb x BH x BW, row-major. */
__kernel void bsr(const int M, const int NP,
                  __global const int* restrict ptr, __global const int* restrict idx,
                  __global const REAL* restrict blocks, __global const REAL* restrict X,
                  __global REAL* restrict Y)
{
    const int j0 = get_global_id(0) * WCOLS, row = get_global_id(1);
    if (row >= M || j0 >= NP) return;
    const int I = row / BH, r = row % BH;
    VACC acc[NV];
    #pragma unroll
    for (int v = 0; v < NV; v++) acc[v] = (VACC)(ZERO);
    const int end = ptr[I + 1];
    for (int b = ptr[I]; b < end; b++) {
        const size_t wb = ((size_t)b * BH + r) * BW;
        const size_t xb = (size_t)idx[b] * BW;
        #pragma unroll
        for (int v = 0; v < NV; v++) {
            VACC t = LD(blocks, wb) * VLD(X, xb * NP + j0 + v * VW);
            #pragma unroll
            for (int c = 1; c < BW; c++)
                t = LD(blocks, wb + c) * VLD(X, (xb + c) * NP + j0 + v * VW) + t;
            acc[v] += t;
        }
    }
    #pragma unroll
    for (int v = 0; v < NV; v++) VST(Y, (size_t)row * NP + j0 + v * VW, acc[v]);
}
#endif /* BH */

/* N:M as ELL: every row holds R nonzeros, so values and column indices are dense
 * arrays. GPU: stored column-major (R x M), work-items on neighbouring rows read
 * neighbouring elements (coalesced). CPU (ELL_ROWMAJOR): row-major (M x R), each
 * work-item reads its own row sequentially. */
#ifdef ELL_ROWMAJOR
#define ELL_AT(t, i) ((size_t)(i) * R + (t))
#else
#define ELL_AT(t, i) ((size_t)(t) * M + (i))
#endif
__kernel void ell(const int M, const int NP, const int R,
                  __global const int* restrict cols, __global const REAL* restrict vals,
                  __global const REAL* restrict X, __global REAL* restrict Y)
{
    const int j0 = get_global_id(0) * WCOLS, i = get_global_id(1);
    if (i >= M || j0 >= NP) return;
    sparse_row_times_x(ELL_AT(0, i), ELL_AT(1, i) - ELL_AT(0, i), R, i, j0, NP, cols, vals, X, Y);
}

/* SDDMM: out[p] = A[rows[p], :] . B[:, cols[p]] for the mask's nonzeros p only.
 * B is uploaded transposed (Bt: N x K), so both operands of every dot product are
 * contiguous rows (of KP elements: K padded with zeros to a multiple of VW).
 */
#ifdef LANES
/* GPU: a work-group handles SLOTS nonzeros; LANES work-items split each dot
 * product along K (coalesced), then reduce in local memory. Local size (LANES, SLOTS). */
__kernel __attribute__((reqd_work_group_size(LANES, SLOTS, 1)))
void sddmm(const int NNZ, const int K,
           __global const int* restrict rows, __global const int* restrict cols,
           __global const REAL* restrict A, __global const REAL* restrict Bt,
           __global REAL* restrict out)
{
    const int lane = get_local_id(0), s = get_local_id(1);
    const int p = get_group_id(1) * SLOTS + s;
    __local ACC part[SLOTS][LANES];
    ACC acc = ZERO;
    if (p < NNZ) {
        const size_t a = (size_t)rows[p] * K, b = (size_t)cols[p] * K;
        for (int l = lane; l < K; l += LANES)
            acc = LD(A, a + l) * LD(Bt, b + l) + acc;
    }
    part[s][lane] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = LANES / 2; h > 0; h >>= 1) {
        if (lane < h) part[s][lane] += part[s][lane + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lane == 0 && p < NNZ) ST(out, p, part[s][0]);
}
#endif /* LANES */

#ifndef LANES
/* CPU: one work-item per nonzero, the dot product in VW-wide vectors with DSPLIT
 * independent partial sums. Nonzeros of a mask row are consecutive work-items,
 * which a CPU runs back to back: the row of A stays in cache. */
#ifndef DSPLIT
#define DSPLIT 4
#endif
__kernel void sddmm_vec(const int NNZ, const int KP,
                        __global const int* restrict rows, __global const int* restrict cols,
                        __global const REAL* restrict A, __global const REAL* restrict Bt,
                        __global REAL* restrict out)
{
    const int p = get_global_id(0);
    if (p >= NNZ) return;
    const size_t a = (size_t)rows[p] * KP, b = (size_t)cols[p] * KP;
    VACC s[DSPLIT];
#pragma unroll
    for (int d = 0; d < DSPLIT; d++) s[d] = (VACC)(ZERO);
    int l = 0;
    for (; l + DSPLIT * VW <= KP; l += DSPLIT * VW)
#pragma unroll
        for (int d = 0; d < DSPLIT; d++)
            s[d] = VLD(A, a + l + d * VW) * VLD(Bt, b + l + d * VW) + s[d];
    for (; l < KP; l += VW) s[0] = VLD(A, a + l) * VLD(Bt, b + l) + s[0];
#pragma unroll
    for (int d = 1; d < DSPLIT; d++) s[0] += s[d];
    ST(out, p, HSUM(s[0]));
}
#endif

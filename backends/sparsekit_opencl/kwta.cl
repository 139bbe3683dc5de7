/* k-winners-take-all per column: keep exactly K entries of each column of X
 * (M x N, row-major), the K largest, and zero the rest.
 *
 * Selection works on keys: the float's bits mapped to an unsigned integer whose
 * order is the values' order (negative: all bits flipped; positive: sign bit
 * set). The K-th largest key T = max{t : #(key >= t) >= K} is found bit by bit
 * from the top (a bisection on the key space: one counting pass per bit, 32 for
 * float and half, 64 for double), stopping early once some candidate has exactly
 * K keys at or above it (T is then the least of them). Then every entry with
 * key > T is kept, and of those with key == T the first K - #(key > T) in row
 * order: exactly K per column, whatever the ties.
 *
 * A work-group handles CX columns with KL work-items per column; work-item
 * (c, lane) owns the contiguous rows [lane * CHUNK, (lane + 1) * CHUNK) of column
 * c. Neighbouring work-items along dimension 0 read neighbouring columns (one
 * row of X at a time: coalesced). Counts are reduced across lanes in local
 * memory; the final pass gives each lane its share of the tied entries by a
 * prefix count over the lanes before it. Local size (CX, KL).
 */
#if defined(USE_FP64) && !defined(STORE_HALF)
#define KEY ulong
#define KEYBITS 64
#define SIGNBIT 0x8000000000000000UL
#define BITS(v) as_ulong(v)
#else
#define KEY uint
#define KEYBITS 32
#define SIGNBIT 0x80000000u
#define BITS(v) as_uint(v)
#endif

inline KEY key_of(const ACC v)
{
    const KEY b = BITS(v);
    return (b & SIGNBIT) ? ~b : (b | SIGNBIT);  /* negative: all bits flipped; else: sign bit set */
}

#ifdef KL
__kernel __attribute__((reqd_work_group_size(CX, KL, 1)))
void kwta(const int M, const int N, const int K, const int CHUNK,
          __global const REAL* restrict X, __global REAL* restrict Y)
{
    const int c = get_local_id(0), lane = get_local_id(1);
    const int j = get_group_id(0) * CX + c;
    const bool live = j < N;
    const int r0 = min(lane * CHUNK, M), r1 = min(r0 + CHUNK, M);

    if (K == 0 || K == M) {  /* the same for every work-item: nobody waits at a barrier */
        if (live)
            for (int i = r0; i < r1; i++)
                ST(Y, (size_t)i * N + j, K == 0 ? ZERO : LD(X, (size_t)i * N + j));
        return;
    }

    __local int cnt[KL][CX];
    __local int eqs[KL][CX];
    __local KEY kmin[KL][CX];
    KEY t = 0;          /* invariant: #(key >= t) >= K in column j */
    bool done = false;  /* the same for every lane of a column: they share the reductions */
    for (int b = KEYBITS - 1; b >= 0; b--) {
        const KEY cand = t | ((KEY)1 << b);
        int n = 0;
        KEY mn = ~(KEY)0;
        if (live && !done)
            for (int i = r0; i < r1; i++) {
                const KEY k = key_of(LD(X, (size_t)i * N + j));
                if (k >= cand) { n++; mn = k < mn ? k : mn; }
            }
        cnt[lane][c] = n;
        kmin[lane][c] = mn;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int s = KL / 2; s > 0; s >>= 1) {
            if (lane < s) {
                cnt[lane][c] += cnt[lane + s][c];
                kmin[lane][c] = kmin[lane + s][c] < kmin[lane][c] ? kmin[lane + s][c] : kmin[lane][c];
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        const int total = cnt[0][c];
        const KEY least = kmin[0][c];
        barrier(CLK_LOCAL_MEM_FENCE);  /* all have read before the next pass writes */
        if (!done) {
            if (total >= K) t = cand;
            if (total == K) { t = least; done = true; }
        }
    }

    int gt = 0, eq = 0;
    if (live)
        for (int i = r0; i < r1; i++) {
            const KEY k = key_of(LD(X, (size_t)i * N + j));
            gt += k > t;
            eq += k == t;
        }
    cnt[lane][c] = gt;
    eqs[lane][c] = eq;
    barrier(CLK_LOCAL_MEM_FENCE);
    int above = 0, before = 0;
    for (int l = 0; l < KL; l++) {
        above += cnt[l][c];
        if (l < lane) before += eqs[l][c];
    }
    int budget = K - above - before;  /* tied entries this lane may still keep */
    if (live)
        for (int i = r0; i < r1; i++) {
            const size_t e = (size_t)i * N + j;
            const ACC v = LD(X, e);
            const KEY k = key_of(v);
            bool keep = k > t;
            if (k == t && budget > 0) { keep = true; budget--; }
            ST(Y, e, keep ? v : ZERO);
        }
}
#endif /* KL */

#ifndef KL
/* CPU (and wide problems): one work-item owns VW adjacent columns (NP: the column
 * count padded to a multiple of VW) and walks them down all M rows with vector
 * operations: the same bisection on keys, lane by lane, with no local memory
 * and no barrier. Comparisons give masks (all ones where true), so a count is
 * "minus the sum of masks" and per-lane choices are bitwise blends: plain ALU
 * operations (PoCL calls builtins such as min() and select() out of line). */
#if defined(USE_FP64) && !defined(STORE_HALF)
#define SCNT long
#else
#define SCNT int
#endif
#if VW == 1
#define VKEY KEY
#define VCNT SCNT
#define MASK(c) (-(VCNT)(c))
#define AS_VKEY(v) CAT(as_, KEY)(v)
#define AS_VCNT(v) CAT(as_, SCNT)(v)
#define AS_VACC(v) CAT(as_, ACC)(v)
#define ANY_OPEN(m) ((m) == 0)
#else
#define VKEY CAT(KEY, VW)
#define VCNT CAT(SCNT, VW)
#define MASK(c) (c)
#define AS_VKEY(v) CAT(as_, VKEY)(v)
#define AS_VCNT(v) CAT(as_, VCNT)(v)
#define AS_VACC(v) CAT(as_, VACC)(v)
#define ANY_OPEN(m) (!all(m))
#endif
#define UMASK(c) AS_VKEY(MASK(c))
#define BLEND(a, b, m) (((a) & ~(m)) | ((b) & (m)))

/* order-preserving key: negative values all bits flipped, others the sign bit set */
#define VKEY_OF(v) (AS_VKEY(v) ^ (AS_VKEY(AS_VCNT(v) >> (KEYBITS - 1)) | (VKEY)(SIGNBIT)))

__kernel void kwta_vec(const int M, const int NP, const int K,
                       __global const REAL* restrict X, __global REAL* restrict Y)
{
    const int j0 = get_global_id(0) * VW;
    if (j0 >= NP) return;
    if (K == 0 || K == M) {
        for (int i = 0; i < M; i++) {
            const size_t e = (size_t)i * NP + j0;
            VST(Y, e, K == 0 ? (VACC)(ZERO) : VLD(X, e));
        }
        return;
    }
    VKEY t = (VKEY)(0);     /* per lane: #(key >= t) >= K */
    VKEY done = (VKEY)(0);  /* per lane: all ones once t is exact */
    for (int b = KEYBITS - 1; b >= 0; b--) {
        const VKEY cand = t | (VKEY)((KEY)1 << b);
        VCNT n = (VCNT)(0);
        VKEY least = (VKEY)(~(KEY)0);
        for (int i = 0; i < M; i++) {
            const VKEY k = VKEY_OF(VLD(X, (size_t)i * NP + j0));
            const VCNT ge = MASK(k >= cand);
            n -= ge;
            least = BLEND(least, k, AS_VKEY(ge) & UMASK(k < least));
        }
        t = BLEND(t, cand, UMASK(n >= (VCNT)(K)) & ~done);
        const VKEY exact = UMASK(n == (VCNT)(K)) & ~done;
        t = BLEND(t, least, exact);
        done |= exact;
        if (!ANY_OPEN(AS_VCNT(done))) break;
    }
    VCNT budget = (VCNT)(K);  /* K minus the entries above t: the ties each lane may keep */
    for (int i = 0; i < M; i++)
        budget += MASK(VKEY_OF(VLD(X, (size_t)i * NP + j0)) > t);
    for (int i = 0; i < M; i++) {
        const size_t e = (size_t)i * NP + j0;
        const VACC v = VLD(X, e);
        const VKEY k = VKEY_OF(v);
        const VCNT tie = MASK(k == t) & MASK(budget > (VCNT)(0));
        budget += tie;
        VST(Y, e, AS_VACC(AS_VKEY(v) & (UMASK(k > t) | AS_VKEY(tie))));
    }
}
#endif /* !KL */

/* sparsekit OpenCL backend: definitions shared by every program (prepended to each source).
 *
 * Build options choose the element type:
 *   (none)        float storage, float arithmetic
 *   -DUSE_FP64    double storage, double arithmetic (needs cl_khr_fp64)
 *   -DSTORE_HALF  half storage, float arithmetic, one rounding to half when stored
 *                 (vload_half / vstore_half_rte: the catalogue's half-precision contract)
 * REAL is the storage type of the buffers, ACC the type every sum is carried in.
 * LD(p, i) reads element i of a REAL buffer as ACC; ST(p, i, v) rounds v to REAL and stores it.
 * Products are written a * b + acc and may be contracted to FMA (the default
 * FP_CONTRACT); no fast-math option is ever used.
 */
#if defined(USE_FP64)
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#if defined(STORE_HALF)
#define REAL half
#define ACC float
#define LD(p, i) vload_half((i), (p))
#define ST(p, i, v) vstore_half_rte((v), (i), (p))
#elif defined(USE_FP64)
#define REAL double
#define ACC double
#define LD(p, i) ((p)[i])
#define ST(p, i, v) ((p)[i] = (v))
#else
#define REAL float
#define ACC float
#define LD(p, i) ((p)[i])
#define ST(p, i, v) ((p)[i] = (v))
#endif

#define ZERO ((ACC)0)

/* Explicit vectors (CPU devices): a work-item handles VW adjacent columns with one
 * OpenCL vector (VACC), so the compiler emits SIMD code without having to
 * vectorise across work-items. VW == 1 (the default; GPUs) makes VACC plain ACC.
 * VLD/VST read and write VW adjacent elements at an element offset that is a
 * multiple of VW (rows padded to a multiple of VW: the address is aligned, and a
 * plain vector access is used; PoCL turns vloadN into N scalar loads, 2-3x
 * slower). VLDU reads at any offset (vloadN). Half storage always goes through
 * vload_halfN / vstore_halfN_rte.
 */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#ifndef VW
#define VW 1
#endif
#if VW == 1
#define VACC ACC
#define VLD(p, off) LD(p, off)
#define VLDU(p, off) LD(p, off)
#define VST(p, off, v) ST(p, off, v)
#define HSUM(a) (a)
#else
#define VACC CAT(ACC, VW)
#if defined(STORE_HALF)
#define VLDU(p, off) CAT(vload_half, VW)(0, (p) + (off))
#define VLD(p, off) VLDU(p, off)
#define VST(p, off, v) CAT(CAT(vstore_half, VW), _rte)((v), 0, (p) + (off))
#else
#define VLDU(p, off) CAT(vload, VW)(0, (p) + (off))
#if defined(UNALIGNED)
#define VLD(p, off) VLDU(p, off)
#define VST(p, off, v) CAT(vstore, VW)((v), 0, (p) + (off))
#else
#define VLD(p, off) (*(__global const VACC*)((p) + (off)))
#define VST(p, off, v) (*(__global VACC*)((p) + (off)) = (v))
#endif
#endif
#if VW == 2
#define HSUM(a) ((a).s0 + (a).s1)
#elif VW == 4
#define HSUM(a) (((a).s0 + (a).s1) + ((a).s2 + (a).s3))
#elif VW == 8
#define HSUM(a) ((((a).s0 + (a).s1) + ((a).s2 + (a).s3)) + (((a).s4 + (a).s5) + ((a).s6 + (a).s7)))
#endif
#endif

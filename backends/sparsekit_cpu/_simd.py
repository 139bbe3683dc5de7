"""Explicit SIMD for the ``cpu`` backend's Numba kernels: LLVM vectors as Numba values.

LLVM's auto-vectoriser cannot keep an output tile in registers across a sparse
loop: it cannot prove that ``out`` and ``x`` do not alias, so it reloads and
stores the accumulator around every nonzero, and it picks its own unroll. These
intrinsics let a kernel say what it means: ``acc = vfma(vload(x, off, S), v, acc)``
is one ``<S x float>`` SSA value, which LLVM keeps in S / (lanes per register)
registers for the whole loop and lowers to the host's widest FMA (zmm on
AVX-512, two ymm per 16 lanes on AVX2, four xmm on SSE). The widths are
compile-time constants: a kernel passes them as literals (``_tiles`` dispatches
on them), so each width is its own specialisation, cached on disk by Numba.

Every intrinsic addresses a C-contiguous array by a flat element offset; the
caller keeps offsets in range (no bounds checks, as in any Numba kernel).
``vsum`` reduces with reassociation, which the checker's gamma_K bound allows
(see ``_kernels``); everything else is exact IEEE arithmetic, ``vfma`` rounding
once.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic, models, register_model

__all__ = ["Vec", "vzero", "vsplat", "vload", "vload_n", "vstore", "vstore_n", "vfma", "vadd",
           "vsum", "vindex", "vgather", "vcompress", "popcount", "prefetch"]


class Vec(types.Type):
    """A vector of ``lanes`` values of ``dtype`` held in registers (LLVM ``<lanes x T>``)."""

    def __init__(self, dtype, lanes: int):
        self.dtype, self.lanes = dtype, lanes
        super().__init__(name=f"Vec({dtype} x {lanes})")


@register_model(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        elem = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(elem, fe_type.lanes))


_I32 = ir.IntType(32)


def _literal(t):
    """The value of a compile-time integer, or None (Numba then retries with literals)."""
    return t.literal_value if isinstance(t, types.IntegerLiteral) else None


def _contiguous(t) -> bool:
    return isinstance(t, types.Array) and t.layout == "C"


def _address(context, builder, aryty, ary, off):
    a = context.make_array(aryty)(context, builder, ary)
    return builder.gep(a.data, [off])


def _splat(builder, value, vt):
    v = builder.insert_element(ir.Constant(vt, ir.Undefined), value, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, ir.Constant(vt, ir.Undefined), ir.Constant(ir.VectorType(_I32, vt.count), [0] * vt.count))


def _first(builder, count, lanes: int):
    """<lanes x i1> mask of the first ``count`` lanes."""
    n = builder.trunc(count, _I32) if count.type.width > 32 else count
    iota = ir.Constant(ir.VectorType(_I32, lanes), list(range(lanes)))
    return builder.icmp_signed("<", iota, _splat(builder, n, ir.VectorType(_I32, lanes)))


def _suffix(t) -> str:
    """LLVM's intrinsic name suffix of a vector type (v16f32, v8f64, v16i32)."""
    e = t.element
    kind = {ir.FloatType: "f32", ir.DoubleType: "f64"}.get(type(e)) or f"i{e.width}"
    return f"v{t.count}{kind}"


def _call(builder, name, ret, args, fastmath=()):
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, [a.type for a in args]), name)
    return builder.call(fn, args, fastmath=fastmath)


def _align(dtype) -> int:
    return dtype.bitwidth // 8


@intrinsic
def vzero(typingctx, like, lanes):
    """A vector of ``lanes`` zeros of the dtype of ``like`` (an array or a scalar)."""
    n = _literal(lanes)
    if n is None:
        return None
    dtype = like.dtype if isinstance(like, types.Array) else like
    vt = Vec(dtype, n)

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(vt), None)

    return vt(like, lanes), codegen


@intrinsic
def vsplat(typingctx, value, lanes):
    """``value`` in every one of ``lanes`` lanes."""
    n = _literal(lanes)
    if n is None or not isinstance(value, types.Float):
        return None
    vt = Vec(value, n)

    def codegen(context, builder, sig, args):
        return _splat(builder, args[0], context.get_value_type(vt))

    return vt(value, lanes), codegen


@intrinsic
def vload(typingctx, a, off, lanes):
    """a.flat[off : off + lanes] as a vector (unaligned load)."""
    n = _literal(lanes)
    if n is None or not _contiguous(a):
        return None
    vt = Vec(a.dtype, n)

    def codegen(context, builder, sig, args):
        p = _address(context, builder, a, args[0], args[1])
        p = builder.bitcast(p, context.get_value_type(vt).as_pointer())
        return builder.load(p, align=_align(a.dtype))

    return vt(a, off, lanes), codegen


@intrinsic
def vload_n(typingctx, a, off, lanes, count):
    """The first ``count`` (< lanes) of a.flat[off:], zeros after: nothing past them is read."""
    n = _literal(lanes)
    if n is None or not _contiguous(a):
        return None
    vt = Vec(a.dtype, n)

    def codegen(context, builder, sig, args):
        lt = context.get_value_type(vt)
        p = builder.bitcast(_address(context, builder, a, args[0], args[1]), lt.as_pointer())
        mask = _first(builder, args[3], n)
        return _call(builder, f"llvm.masked.load.{_suffix(lt)}.p0", lt,
                     [p, ir.Constant(_I32, _align(a.dtype)), mask, ir.Constant(lt, None)])

    return vt(a, off, lanes, count), codegen


@intrinsic
def vstore(typingctx, a, off, v):
    """a.flat[off : off + lanes] = v."""
    if not (_contiguous(a) and isinstance(v, Vec) and v.dtype == a.dtype):
        return None

    def codegen(context, builder, sig, args):
        p = _address(context, builder, a, args[0], args[1])
        builder.store(args[2], builder.bitcast(p, args[2].type.as_pointer()), align=_align(a.dtype))
        return context.get_dummy_value()

    return types.none(a, off, v), codegen


@intrinsic
def vstore_n(typingctx, a, off, v, count):
    """a.flat[off : off + count] = v[:count]; nothing past them is written."""
    if not (_contiguous(a) and isinstance(v, Vec) and v.dtype == a.dtype):
        return None

    def codegen(context, builder, sig, args):
        lt = args[2].type
        p = builder.bitcast(_address(context, builder, a, args[0], args[1]), lt.as_pointer())
        mask = _first(builder, args[3], v.lanes)
        _call(builder, f"llvm.masked.store.{_suffix(lt)}.p0", ir.VoidType(),
              [args[2], p, ir.Constant(_I32, _align(a.dtype)), mask])
        return context.get_dummy_value()

    return types.none(a, off, v, count), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    """a * b + c rounded once; ``b`` a vector or a scalar (then broadcast)."""
    if not (isinstance(a, Vec) and isinstance(c, Vec) and a == c):
        return None
    if not (b == a or b == a.dtype):
        return None

    def codegen(context, builder, sig, args):
        lt = args[0].type
        bv = args[1] if isinstance(args[1].type, ir.VectorType) else _splat(builder, args[1], lt)
        return _call(builder, f"llvm.fma.{_suffix(lt)}", lt, [args[0], bv, args[2]])

    return a(a, b, c), codegen


@intrinsic
def vadd(typingctx, a, b):
    if not (isinstance(a, Vec) and a == b):
        return None

    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1])

    return a(a, b), codegen


@intrinsic
def vsum(typingctx, v):
    """The sum of the lanes (reassociated: a tree of vector adds)."""
    if not isinstance(v, Vec):
        return None

    def codegen(context, builder, sig, args):
        lt = args[0].type
        zero = ir.Constant(lt.element, 0.0)
        return _call(builder, f"llvm.vector.reduce.fadd.{_suffix(lt)}", lt.element, [zero, args[0]], ("reassoc",))

    return v.dtype(v), codegen


@intrinsic
def vindex(typingctx, a, off, lanes):
    """a.flat[off : off + lanes] (any unsigned or signed integer dtype) as int32 lanes, for
    ``vgather``: uint16 column indices widen with zeros, int32 pass through."""
    n = _literal(lanes)
    if n is None or not _contiguous(a) or not isinstance(a.dtype, types.Integer) or a.dtype.bitwidth > 32:
        return None
    vt = Vec(types.int32, n)

    def codegen(context, builder, sig, args):
        src = ir.VectorType(ir.IntType(a.dtype.bitwidth), n)
        p = builder.bitcast(_address(context, builder, a, args[0], args[1]), src.as_pointer())
        raw = builder.load(p, align=_align(a.dtype))
        if a.dtype.bitwidth == 32:
            return raw
        dst = ir.VectorType(_I32, n)
        return builder.zext(raw, dst) if not a.dtype.signed else builder.sext(raw, dst)

    return vt(a, off, lanes), codegen


@intrinsic
def vgather(typingctx, a, base, iv):
    """a.flat[base + iv[l]] for every lane l (one hardware gather where the host has one)."""
    if not (_contiguous(a) and isinstance(iv, Vec) and iv.dtype == types.int32):
        return None
    vt = Vec(a.dtype, iv.lanes)

    def codegen(context, builder, sig, args):
        lt = context.get_value_type(vt)
        p = _address(context, builder, a, args[0], args[1])
        # getelementptr with a vector index: a vector of pointers (llvmlite cannot infer
        # that type, so the source type is given and the result type set)
        ptrs = builder.gep(p, [args[2]], inbounds=True, source_etype=lt.element)
        ptrs.type = ir.VectorType(p.type, iv.lanes)
        mask = ir.Constant(ir.VectorType(ir.IntType(1), iv.lanes), [1] * iv.lanes)
        return _call(builder, f"llvm.masked.gather.{_suffix(lt)}.v{iv.lanes}p0", lt,
                     [ptrs, ir.Constant(_I32, _align(a.dtype)), mask, ir.Constant(lt, ir.Undefined)])

    return vt(a, base, iv), codegen


@intrinsic
def vcompress(typingctx, v, mask):
    """The lanes of ``v`` whose bit is set in the integer ``mask`` (lane l: bit l), packed
    to the front in order, zeros after. AVX-512 only (``vcompressps``/``vcompresspd``,
    register form); callers check ``Machine.vector_bytes >= 64``."""
    if not (isinstance(v, Vec) and isinstance(mask, types.Integer) and v.lanes in (8, 16)):
        return None

    def codegen(context, builder, sig, args):
        lt = args[0].type
        m = builder.bitcast(_int_to(builder, args[1], lt.count), ir.VectorType(ir.IntType(1), lt.count))
        return _call(builder, f"llvm.x86.avx512.mask.compress.{_suffix(lt)}", lt, [args[0], ir.Constant(lt, None), m])

    return v(v, mask), codegen


def _int_to(builder, value, bits: int):
    w = value.type.width
    if w > bits:
        return builder.trunc(value, ir.IntType(bits))
    return builder.zext(value, ir.IntType(bits)) if w < bits else value


@intrinsic
def popcount(typingctx, v):
    """Set bits of an integer (one ``popcnt``), as int64."""
    if not isinstance(v, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        t = args[0].type
        return _int_to(builder, _call(builder, f"llvm.ctpop.i{t.width}", t, [args[0]]), 64)

    return types.int64(v), codegen


@intrinsic
def prefetch(typingctx, a, off):
    """Hint that a.flat[off] will be read soon (into every cache level)."""
    if not _contiguous(a):
        return None

    def codegen(context, builder, sig, args):
        p = builder.bitcast(_address(context, builder, a, args[0], args[1]), ir.IntType(8).as_pointer())
        _call(builder, "llvm.prefetch.p0", ir.VoidType(), [p, ir.Constant(_I32, 0), ir.Constant(_I32, 3), ir.Constant(_I32, 1)])
        return context.get_dummy_value()

    return types.none(a, off), codegen

"""Scalar math helpers that LLVM can vectorise inside Numba loops.

Numba lowers ``math.exp`` to a scalar libm call (no SVML here), which keeps every loop that calls
it scalar. ``vexp`` below is written with plain arithmetic, integer bit operations and selects
only, so a loop ``for j in range(C): out[j] = vexp(x[j])`` compiles to AVX-512/AVX2 code.

``vexp(x)`` (float32 in, float32 out; float64 in, float64 out)
--------------------------------------------------------------
* range reduction: ``k = round(x * log2(e))`` with the 1.5 * 2**p "shifter" trick (no float ->
  int conversion, so NaN never becomes a poison integer), ``r = x - k*ln2_hi - k*ln2_lo``
  (Cody-Waite; the FMAs allowed by the ``contract`` flag make it only more exact);
* ``exp(r)`` on ``|r| <= ln2/2``: ``1 + r + r^2 P(r)`` with near-minimax coefficients fitted in
  50-digit arithmetic (relative approximation error 3.1e-9 for float32 with degree 6, evaluated
  in float32; 3.6e-18 for float64 with degree 11);
* ``2**k`` is built from integer bits as ``2**(k >> 1) * 2**(k - (k >> 1))`` (two exact
  power-of-two factors, so the single final rounding also produces correct subnormals);
* ``x`` below the underflow threshold (``-inf`` included) gives exactly ``0``; ``x`` above the
  overflow threshold gives ``+inf``; NaN gives NaN.

Measured accuracy against ``np.exp`` (``python -m fastnn_core._numba._check_exp``):
float64, 3 000 001 points in ``[-750, 0]`` and 1 000 001 in ``[0, 709.7]``: at most 1 ulp
(relative error <= 2.3e-16 on normal results; subnormal results within 1 unit of the smallest
subnormal); float32, every float32 in ``[-104, 88.7]``: at most 1 ulp.
Exactly ``exp(0) = 1``, ``exp(-inf) = 0``, ``exp(+inf) = inf``, ``exp(nan) = nan``.

``fmaxnum(a, b)`` is ``llvm.maxnum`` (IEEE maxNum: NaN operands are ignored). Unlike
``a if a > b else b`` it vectorises as a reduction without any fast-math flag. Kernels that use
it for a row maximum rely on ``vexp`` to carry a NaN (or the NaN of ``inf - inf``) into the row
sum, which then makes the whole row NaN as BACKENDS.md requires.
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

# --- float64 ----------------------------------------------------------------------------------
_LOG2E_64 = np.float64(1.4426950408889634)
_LN2_HI_64 = np.float64(6.93147180369123816490e-01)  # 32 significant bits: k * hi is exact
_LN2_LO_64 = np.float64(1.90821492927058770002e-10)
_SHIFT_64 = np.float64(6755399441055744.0)  # 1.5 * 2**52
_SHIFT_BITS_64 = np.int64(0x4338000000000000)
_LO_64 = np.float64(-745.2)  # exp(x) rounds to 0 below -745.1332
_HI_64 = np.float64(709.8)  # exp(x) overflows above 709.7828
_ZERO_64 = np.float64(0.0)
_INF_64 = np.float64(np.inf)
_ONE_64 = np.float64(1.0)
_BIAS_64 = np.int64(1023)
_MANT_64 = np.int64(52)
_C2_64 = np.float64(0.5000000000000011)
_C3_64 = np.float64(0.16666666666666413)
_C4_64 = np.float64(0.04166666666653024)
_C5_64 = np.float64(0.008333333333494333)
_C6_64 = np.float64(0.0013888888943604078)
_C7_64 = np.float64(0.0001984126950680534)
_C8_64 = np.float64(2.4801493130012402e-05)
_C9_64 = np.float64(2.755758622757984e-06)
_C10_64 = np.float64(2.7630235984839274e-07)
_C11_64 = np.float64(2.500008819528247e-08)

# --- float32 ----------------------------------------------------------------------------------
_LOG2E_32 = np.float32(1.4426950408889634)
_LN2_HI_32 = np.float32(0.693359375)  # 9 significant bits: k * hi is exact for |k| < 2**15
_LN2_LO_32 = np.float32(-2.12194440e-4)
_SHIFT_32 = np.float32(12582912.0)  # 1.5 * 2**23
_SHIFT_BITS_32 = np.int32(0x4B400000)
_LO_32 = np.float32(-104.0)  # exp(x) rounds to 0 below -103.972
_HI_32 = np.float32(88.8)  # exp(x) overflows above 88.7228
_ZERO_32 = np.float32(0.0)
_INF_32 = np.float32(np.inf)
_ONE_32 = np.float32(1.0)
_BIAS_32 = np.int32(127)
_MANT_32 = np.int32(23)
_ONE_I32 = np.int32(1)
_C2_32 = np.float32(0.49999993450796765)
_C3_32 = np.float32(0.16666520680903701)
_C4_32 = np.float32(0.04166838754459954)
_C5_32 = np.float32(0.008368710654735457)
_C6_32 = np.float32(0.0013814604481163213)


def vexp(x):
    """exp(x) for a float32 or float64 scalar inside Numba code (see the module docstring)."""
    raise NotImplementedError("vexp is only callable from Numba-compiled code")


def _exp64(x):
    # One compare per side serves both the clamp and the final select. NaN fails both compares
    # and flows through the arithmetic (a NaN ``r`` makes ``p`` NaN whatever ``k`` is).
    small = x < _LO_64
    big = x > _HI_64
    xc = _LO_64 if small else x
    xc = _HI_64 if big else xc
    kf = xc * _LOG2E_64 + _SHIFT_64
    k = np.float64(kf).view(np.int64) - _SHIFT_BITS_64
    n = kf - _SHIFT_64
    r = (xc - n * _LN2_HI_64) - n * _LN2_LO_64
    p = _C11_64
    p = p * r + _C10_64
    p = p * r + _C9_64
    p = p * r + _C8_64
    p = p * r + _C7_64
    p = p * r + _C6_64
    p = p * r + _C5_64
    p = p * r + _C4_64
    p = p * r + _C3_64
    p = p * r + _C2_64
    p = (p * r) * r + r + _ONE_64
    k1 = k >> 1
    k2 = k - k1
    s1 = np.int64((k1 + _BIAS_64) << _MANT_64).view(np.float64)
    s2 = np.int64((k2 + _BIAS_64) << _MANT_64).view(np.float64)
    y = (p * s1) * s2
    y = _ZERO_64 if small else y
    y = _INF_64 if big else y
    return y


def _exp32(x):
    # One compare per side serves both the clamp and the final select. NaN fails both compares
    # and flows through the arithmetic (a NaN ``r`` makes ``p`` NaN whatever ``k`` is).
    small = x < _LO_32
    big = x > _HI_32
    xc = _LO_32 if small else x
    xc = _HI_32 if big else xc
    kf = xc * _LOG2E_32 + _SHIFT_32
    k = np.float32(kf).view(np.int32) - _SHIFT_BITS_32
    n = kf - _SHIFT_32
    r = (xc - n * _LN2_HI_32) - n * _LN2_LO_32
    p = _C6_32
    p = p * r + _C5_32
    p = p * r + _C4_32
    p = p * r + _C3_32
    p = p * r + _C2_32
    p = (p * r) * r + r + _ONE_32
    k1 = k >> _ONE_I32
    k2 = k - k1
    s1 = np.int32((k1 + _BIAS_32) << _MANT_32).view(np.float32)
    s2 = np.int32((k2 + _BIAS_32) << _MANT_32).view(np.float32)
    y = (p * s1) * s2
    y = _ZERO_32 if small else y
    y = _INF_32 if big else y
    return y


@overload(vexp, jit_options={"fastmath": {"contract"}}, inline="never")
def _ol_vexp(x):
    if x == types.float64:
        return _exp64
    if x == types.float32:
        return _exp32
    return None


def _max_intrinsic_name(lty):
    return "llvm.maxnum.f64" if lty == ir.DoubleType() else "llvm.maxnum.f32"


@intrinsic
def fmaxnum(typingctx, a, b):
    """IEEE maxNum of two floats of one type (NaN operands ignored); vectorises as a reduction."""
    if not (isinstance(a, types.Float) and a == b):
        return None
    sig = a(a, b)

    def codegen(context, builder, signature, args):
        lty = args[0].type
        fnty = ir.FunctionType(lty, [lty, lty])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _max_intrinsic_name(lty))
        return builder.call(fn, args)

    return sig, codegen


def cast_like(x, like):
    """``x`` converted to the type of the float scalar ``like`` (inside Numba code)."""
    raise NotImplementedError("cast_like is only callable from Numba-compiled code")


@overload(cast_like, inline="always")
def _ol_cast_like(x, like):
    if like == types.float32:
        return lambda x, like: np.float32(x)
    if like == types.float64:
        return lambda x, like: np.float64(x)
    return None


def cast_to(x, arr):
    """``x`` converted to the element type of the float array ``arr`` (inside Numba code)."""
    raise NotImplementedError("cast_to is only callable from Numba-compiled code")


@overload(cast_to, inline="always")
def _ol_cast_to(x, arr):
    if isinstance(arr, types.Array) and arr.dtype == types.float32:
        return lambda x, arr: np.float32(x)
    if isinstance(arr, types.Array) and arr.dtype == types.float64:
        return lambda x, arr: np.float64(x)
    return None

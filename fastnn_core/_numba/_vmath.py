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

Measured accuracy (``python -m fastnn_core._numba._check_exp [--exhaustive]``):
float64 against ``np.exp``, 3 000 001 points in ``[-750, 0]`` and 1 000 001 in ``[0, 709.7]``:
at most 1 ulp (relative error <= 2.3e-16 on normal results; subnormal results within one unit of
the smallest subnormal, 5e-324). float32 against the float64 ``np.exp`` rounded to float32, i.e.
nearly the correctly rounded result, EVERY float32 in ``[-104, 88.72]``: at most 1.03 ulp.
Exactly ``exp(0) = 1``, ``exp(-inf) = 0``, ``exp(+inf) = inf``, ``exp(nan) = nan``.
The loop ``for i: out[i] = vexp(x[i])`` compiles to zmm (AVX-512) code with FMAs; 1e6 exps take
about 0.3 ms (float32) / 0.8 ms (float64), as fast as NumPy's own SIMD ``np.exp`` or faster.

``vtanh``, ``vexpm1``, ``vlog1p_unit`` (same dtype rules, same checks)
------------------------------------------------------------------------
* ``vtanh(x)``: ``x (1 + x^2 P(x^2))`` for ``|x| < 1/2`` (near-minimax, fitted like ``vexp``),
  else ``sign(x) (1 - e) / (1 + e)`` with ``e = vexp(-2|x|)``. Max 3.0 ulp (float64) / 2.0 ulp
  (float32) against ``np.tanh`` over ``[-25, 25]`` plus ``1e-300..1`` geometrically; the sign of
  ``-0.0`` is kept; ``tanh(+-inf) = +-1``.
* ``vexpm1(x)``: Taylor ``x (1 + x P(x))`` for ``|x| < 0.35``, else ``vexp(x) - 1``. Max 4.0 ulp
  (float64) / 3.4 ulp (float32) over ``[-50, 20]`` and tiny ``|x|``.
* ``vlog1p_unit(x)`` for ``0 <= x <= 1`` only (its use: ``log1p(exp(-|z|))``):
  ``w = 1 + x = 2^k f``, ``k in {0, 1}``, ``log1p(x) = k ln2 + 2 atanh((f - 1) / (f + 1)) +
  (x - (w - 1)) / w``. Max 2.0 ulp (float64) / 2.4 ulp (float32).

All of these are compiled with ``fastmath={"contract"}`` (FMA formation only: it changes no
inf/NaN semantics) and ``error_model="numpy"`` (a division is a plain division, no zero check
that would keep the loop scalar).

``fmaxnum(a, b)`` is ``llvm.maxnum`` (IEEE maxNum: NaN operands are ignored). Unlike
``a if a > b else b`` it vectorises as a reduction without any fast-math flag. Kernels that use
it for a row maximum rely on ``vexp`` to carry a NaN (or the NaN of ``inf - inf``) into the row
sum, which then makes the whole row NaN as BACKENDS.md requires.
"""

import math

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


@overload(vexp, jit_options={"fastmath": {"contract"}, "error_model": "numpy"}, inline="never")
def _ol_vexp(x):
    if x == types.float64:
        return _exp64
    if x == types.float32:
        return _exp32
    return None


# --- tanh, expm1, log1p ------------------------------------------------------------------------
# tanh(x) = x + x^3 P(x^2) for |x| < 1/2 (near-minimax, relative error 2.6e-18 / 3.4e-10), else
# sign(x) (1 - e) / (1 + e) with e = exp(-2|x|) <= exp(-1) (no cancellation).
_T64 = tuple(np.float64(c) for c in (
    -0.3333333333333317, 0.13333333333301745, -0.053968253946763925, 0.02186948781094731,
    -0.008863221432248155, 0.0035919578926377014, -0.0014545137111028432, 0.000583390587901854,
    -0.00021801114606215648, 5.695320737054475e-05))
_T32 = tuple(np.float32(c) for c in (
    -0.3333332703746121, 0.13332971261700835, -0.05390015398307066, 0.021303138646807024,
    -0.006656859787907422))
_HALF_64 = np.float64(0.5)
_HALF_32 = np.float32(0.5)
_TWO_64 = np.float64(2.0)
_TWO_32 = np.float32(2.0)
# expm1(x) = x + x^2 (1/2! + x/3! + ...) (Taylor) for |x| < 0.35, else exp(x) - 1.
_E64 = tuple(np.float64(1.0 / math.factorial(k)) for k in range(2, 15))  # 1/2! .. 1/14!
_E32 = tuple(np.float32(1.0 / math.factorial(k)) for k in range(2, 9))  # 1/2! .. 1/8!
_EM1_CUT_64 = np.float64(0.35)
_EM1_CUT_32 = np.float32(0.35)
# log1p(u), 0 <= u <= 1: w = 1 + u = 2^k f with f in [sqrt(1/2), sqrt(2)), k in {0, 1};
# log1p(u) = k ln2 + 2 atanh((f - 1) / (f + 1)) + (u - (w - 1)) / w (the rounding of w).
_L64 = tuple(np.float64(1.0 / (2 * k + 1)) for k in range(1, 11))  # 1/3 .. 1/21
_L32 = tuple(np.float32(1.0 / (2 * k + 1)) for k in range(1, 6))  # 1/3 .. 1/11
_SQRT2_64 = np.float64(math.sqrt(2.0))
_SQRT2_32 = np.float32(math.sqrt(2.0))
_LN2_64 = np.float64(math.log(2.0))
_LN2_32 = np.float32(math.log(2.0))


def vtanh(x):
    """tanh(x) for a float scalar inside Numba code; vectorises (see the module docstring)."""
    raise NotImplementedError("vtanh is only callable from Numba-compiled code")


def vexpm1(x):
    """expm1(x) for a float scalar inside Numba code; vectorises."""
    raise NotImplementedError("vexpm1 is only callable from Numba-compiled code")


def vlog1p_unit(x):
    """log1p(x) for ``0 <= x <= 1`` (or NaN) inside Numba code; vectorises."""
    raise NotImplementedError("vlog1p_unit is only callable from Numba-compiled code")


def _tanh64(x):
    ax = abs(x)
    x2 = x * x
    p = _T64[-1]
    for j in range(len(_T64) - 2, -1, -1):
        p = p * x2 + _T64[j]
    small = x * (_ONE_64 + x2 * p)  # (keeps the sign of -0.0)
    e = vexp(-_TWO_64 * ax)
    big = (_ONE_64 - e) / (_ONE_64 + e)
    big = big if x >= _ZERO_64 else -big
    return small if ax < _HALF_64 else big


def _tanh32(x):
    ax = abs(x)
    x2 = x * x
    p = _T32[-1]
    for j in range(len(_T32) - 2, -1, -1):
        p = p * x2 + _T32[j]
    small = x * (_ONE_32 + x2 * p)  # (keeps the sign of -0.0)
    e = vexp(-_TWO_32 * ax)
    big = (_ONE_32 - e) / (_ONE_32 + e)
    big = big if x >= _ZERO_32 else -big
    return small if ax < _HALF_32 else big


def _expm1_64(x):
    p = _E64[12]
    for j in range(11, -1, -1):
        p = p * x + _E64[j]
    small = x * (_ONE_64 + x * p)  # (keeps the sign of -0.0)
    big = vexp(x) - _ONE_64
    return small if abs(x) < _EM1_CUT_64 else big


def _expm1_32(x):
    p = _E32[6]
    for j in range(5, -1, -1):
        p = p * x + _E32[j]
    small = x * (_ONE_32 + x * p)  # (keeps the sign of -0.0)
    big = vexp(x) - _ONE_32
    return small if abs(x) < _EM1_CUT_32 else big


def _log1p_unit64(x):
    w = _ONE_64 + x
    c = (x - (w - _ONE_64)) / w
    up = w > _SQRT2_64
    f = w * _HALF_64 if up else w
    k = _LN2_64 if up else _ZERO_64
    s = (f - _ONE_64) / (f + _ONE_64)
    s2 = s * s
    p = _L64[9]
    for j in range(8, -1, -1):
        p = p * s2 + _L64[j]
    return k + ((s + s) + (s + s) * s2 * p + c)


def _log1p_unit32(x):
    w = _ONE_32 + x
    c = (x - (w - _ONE_32)) / w
    up = w > _SQRT2_32
    f = w * _HALF_32 if up else w
    k = _LN2_32 if up else _ZERO_32
    s = (f - _ONE_32) / (f + _ONE_32)
    s2 = s * s
    p = _L32[4]
    for j in range(3, -1, -1):
        p = p * s2 + _L32[j]
    return k + ((s + s) + (s + s) * s2 * p + c)


def _by_dtype(impl64, impl32):
    def typer(x):
        if x == types.float64:
            return impl64
        if x == types.float32:
            return impl32
        return None
    return typer


overload(vtanh, jit_options={"fastmath": {"contract"}, "error_model": "numpy"}, inline="never")(
    _by_dtype(_tanh64, _tanh32))
overload(vexpm1, jit_options={"fastmath": {"contract"}, "error_model": "numpy"}, inline="never")(
    _by_dtype(_expm1_64, _expm1_32))
overload(vlog1p_unit, jit_options={"fastmath": {"contract"}, "error_model": "numpy"}, inline="never")(
    _by_dtype(_log1p_unit64, _log1p_unit32))


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

"""The exact Newton-Raphson arithmetic of fastnn's AVX-512 Adam (``fastnn_simd.h``): the square
root on the FMA units (``fnn_v4_sqrt_nr_*``) must give IEEE ``sqrt`` bit for bit, and the
general-path Adam kernel (``fnn_adam_v4_*``, which mixes divider and FMA-unit division and
square roots) must give exactly what the compiler-vectorised kernel gives.

The hardest square roots are inputs whose root lies within ~2^-2p of a midpoint between two
floats (where rounding to nearest changes) or of a float (where the kernel's intermediate
rounding toward zero changes): ``a = RN(m^2)`` for such an ``m`` whose square is a small
distance ``c`` from a float, found from the modular square roots of ``+-c`` (Hensel
lifting).  (All 2^32 float bit
patterns were also checked once by hand; the test below covers every mantissa of two binades.)
"""

import numpy as np
import pytest

import fastnn_core

pytestmark = pytest.mark.skipif("cython" not in fastnn_core.available_backends(),
                                reason="cython backend not available")

BITS = {np.float32: np.uint32, np.float64: np.uint64}
PREC = {np.float32: 24, np.float64: 53}


def _kernels():
    from fastnn_core._cython import _kernels

    return _kernels


def _sqrt_nr(x):
    out = np.full_like(x, np.nan)
    if not _kernels()._sqrt_nr(x, out):
        pytest.skip("no AVX-512 here: the Newton-Raphson square root is not used")
    return out


def _assert_bits_equal(got, want, x):
    gb, wb = got.view(BITS[got.dtype.type]), want.view(BITS[want.dtype.type])
    bad = (gb != wb) & ~(np.isnan(got) & np.isnan(want))
    assert not bad.any(), (f"{bad.sum()} wrong square roots, e.g. sqrt({x[bad][:4]!r}) = "
                           f"{got[bad][:4]!r}, want {want[bad][:4]!r}")


def _sqrt_mod_pow2(c, k):
    """x with x * x == c (mod 2^k), for c == 1 (mod 8)."""
    x = 1
    for i in range(3, k):
        if (x * x - c) % (1 << (i + 1)):
            x += 1 << (i - 1)
    return x


def _near_tie_inputs(dt, q, n_residues=300):
    """Inputs in [1, 4) whose square root is within c 2^-(2q+1) of a multiple of 2^-q, c < 8 n:
    q = p the midpoints between floats of [1, 2) (where rounding to nearest changes), q = p - 1
    the floats themselves (where rounding toward zero changes)."""
    p = PREC[dt]
    out = []
    # root X 2^-q, X in [2^q, 2^(q+1)); a = X^2 2^-2q is a multiple of 2^(1-p) in [1, 2) and
    # of 2^(2-p) in [2, 4): X^2 = +-c (mod 2^k), k = 2q + 1 - p or 2q + 2 - p
    for k, lo, hi in ((2 * q + 1 - p, 1.0, 2.0), (2 * q + 2 - p, 2.0, 4.0)):
        mod = 1 << k
        for j in range(n_residues):
            for c in (1 + 8 * j, mod - 7 - 8 * j):  # X^2 = 1 + 8 j or -(7 + 8 j) (mod 2^k)
                x = _sqrt_mod_pow2(c, k)
                for X in {x % mod, (-x) % mod, (x + mod // 2) % mod, (-x + mod // 2) % mod}:
                    X += (1 << q) // mod * mod
                    for XX in (X, X + mod, X + 2 * mod):
                        a = (XX * XX + mod // 2) // mod * 2.0 ** (k - 2 * q)
                        if lo <= a < hi:
                            out.append(a)
    return np.unique(np.array(out, dtype=dt))


def _boundary_inputs(dt):
    info = np.finfo(dt)
    ints = np.arange(1, 5000, dtype=np.float64)
    squares = np.concatenate([ints ** 2, (2.0 ** 26 - ints) ** 2 if dt == np.float64 else
                              (2.0 ** 12 - ints) ** 2]).astype(dt)
    pow2 = (2.0 ** np.arange(info.minexp, info.maxexp)).astype(dt)
    base = np.concatenate([squares, pow2, [info.tiny, info.max, info.eps, 1 - info.epsneg]])
    with np.errstate(over="ignore"):  # max's neighbours overflow to inf: inputs too
        up = np.nextafter(base, dt(np.inf))
        down = np.nextafter(base, dt(0))
        return np.concatenate([base, up, up * 2, down, down * 4, np.nextafter(up, dt(np.inf)),
                               np.nextafter(down, dt(0))]).astype(dt)


def _special_inputs(dt):
    info = np.finfo(dt)
    sub = info.smallest_subnormal
    return np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, -1.0, -info.tiny, -info.max,
                     sub, sub * 3, info.tiny / 2, info.tiny * 0.999,
                     # around the lower end of the FMA-unit range (2^-64 / 2^-900)
                     2.0 ** -64, 2.0 ** -65, 2.0 ** -63, 2.0 ** -900, 2.0 ** -901, 2.0 ** -899,
                     2.0 ** -1000], dtype=dt)


def _scaled(x, dt):
    """x times even powers of two over the whole exponent range (exact, and so is the root)."""
    info = np.finfo(dt)
    parts = [x]
    for e in range(info.minexp + 2, info.maxexp - 2, 26 if dt == np.float64 else 6):
        e -= e % 2
        with np.errstate(over="ignore"):
            parts.append(x * dt(2.0 ** e))
    y = np.concatenate(parts)
    return y[np.isfinite(y)]


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_sqrt_nr_random_is_ieee(dt):
    rng = np.random.default_rng(1)
    n = 1 << 20
    bits = rng.integers(0, np.iinfo(BITS[dt]).max, size=n, dtype=BITS[dt], endpoint=True)
    x = bits.view(dt)  # every exponent, both signs, NaNs and infinities
    y = (rng.random(n) * 3 + 1).astype(dt)  # [1, 4): both binades of the mantissa pattern
    for v in (x, y):
        with np.errstate(invalid="ignore"):
            _assert_bits_equal(_sqrt_nr(v), np.sqrt(v), v)


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_sqrt_nr_boundaries_and_specials_are_ieee(dt):
    x = np.concatenate([_scaled(_boundary_inputs(dt), dt), _special_inputs(dt)])
    with np.errstate(invalid="ignore"):
        _assert_bits_equal(_sqrt_nr(x), np.sqrt(x), x)


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("tie", ["midpoints", "floats"])
def test_sqrt_nr_near_ties_is_ieee(dt, tie):
    x = _near_tie_inputs(dt, PREC[dt] if tie == "midpoints" else PREC[dt] - 1)
    assert x.size > 500
    x = _scaled(x, dt)
    _assert_bits_equal(_sqrt_nr(x), np.sqrt(x), x)


def test_sqrt_nr_every_float_mantissa_of_two_binades():
    x = np.arange(np.float32(1).view(np.uint32), np.float32(4).view(np.uint32),
                  dtype=np.uint32).view(np.float32)
    _assert_bits_equal(_sqrt_nr(x), np.sqrt(x), x)


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("n", [1, 7, 8, 16, 17, 31, 32, 33, 47, 100, 1000, 4099])
def test_adam_v4_matches_vectorised_kernel_bitwise(dt, n):
    """fnn_adam_* on an AVX-512 CPU (explicit 512-bit kernel) against the gcc-vectorised
    kernel that the lower ISA levels run, bit for bit, with special moments among normal
    ones (zeros of both signs, subnormals, tiny, huge, infinite, NaN)."""
    K = _kernels()
    previous = K._set_isa(2)
    if previous < 0:
        pytest.skip("needs an AVX-512 CPU")
    rng = np.random.default_rng(n)
    info = np.finfo(dt)
    p = rng.standard_normal(n).astype(dt)
    g = rng.standard_normal(n).astype(dt) * dt(0.1)
    m = rng.standard_normal(n).astype(dt) * dt(1e-3)
    v = (rng.random(n) * 1e-4).astype(dt)
    specials = np.array([0.0, -0.0, info.smallest_subnormal * 5, info.tiny, 1e-30, info.max,
                         np.inf, np.nan], dtype=dt)
    for arr in (m, v, g):
        pick = rng.random(n) < 0.15
        arr[pick] = rng.choice(specials, size=pick.sum())
    g[rng.random(n) < 0.2] = 0.0
    out = {}
    try:
        for level in (2, 1):
            K._set_isa(level)
            P, M, V = p.copy(), m.copy(), v.copy()
            with np.errstate(all="ignore"):
                K.adam(P, g, M, V, 1e-3, 0.9, 0.999, 1e-8, 1e-4)
            out[level] = (P, M, V)
    finally:
        K._set_isa(previous)
    for a, b in zip(out[2], out[1]):
        np.testing.assert_array_equal(a.view(BITS[dt]), b.view(BITS[dt]))

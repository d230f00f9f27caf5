"""Accuracy and vectorisation check of ``vexp`` (and ``vtanh``, ``vexpm1``, ``vlog1p_unit``):
``python -m fastnn_core._numba._check_exp [--exhaustive]``.

Compares ``vexp`` with NumPy over dense sweeps (float64: against ``np.exp``; float32: against the
float64 ``np.exp`` rounded to float32, i.e. nearly the correctly rounded result), prints the worst
error in ulps, the special values, whether the loop uses vector registers, and a timing.
"""

import sys
import time
import timeit

import numpy as np
from numba import njit

from ._vmath import vexp, vexpm1, vlog1p_unit, vtanh


def _map_loop(f):
    """A compiled loop ``out[i] = f(x[i])`` for one of the ``_vmath`` scalar functions."""

    @njit(nogil=True)
    def loop(x, out):
        for i in range(x.shape[0]):
            out[i] = f(x[i])

    return loop


_exp_loop = _map_loop(vexp)
_tanh_loop = _map_loop(vtanh)
_expm1_loop = _map_loop(vexpm1)
_log1p_loop = _map_loop(vlog1p_unit)


def check_others():
    """Worst ulp error of vtanh, vexpm1, vlog1p_unit against NumPy (float64 reference)."""
    res = {}
    for dt in (np.float64, np.float32):
        tiny = np.geomspace(1e-300 if dt == np.float64 else 1e-38, 1.0, 100_001)
        cases = [
            ("tanh", _tanh_loop, np.tanh, [np.linspace(-25, 25, 2_000_001), tiny, -tiny]),
            ("expm1", _expm1_loop, np.expm1, [np.linspace(-50, 20, 2_000_001), tiny, -tiny]),
            ("log1p on [0, 1]", _log1p_loop, np.log1p, [np.linspace(0, 1, 2_000_001), tiny]),
        ]
        for name, loop, ref, parts in cases:
            x = np.concatenate(parts).astype(dt)
            y = np.empty_like(x)
            loop(x, y)
            res[f"{dt.__name__} {name} max ulp"] = round(float(
                _ulps(y, ref(x.astype(np.float64)), dt).max()), 2)
            asm = loop.inspect_asm(loop.signatures[-1])
            res[f"{dt.__name__} {name} vectorised"] = ("zmm" in asm) or ("ymm" in asm)
    return res


def _ulps(got, want, dtype):
    want_r = want.astype(dtype)
    spacing = np.spacing(np.abs(want_r)).astype(np.float64)
    return np.abs(got.astype(np.float64) - want) / spacing


def check(exhaustive_float32=False):
    worst = {}
    # float64
    x = np.concatenate([np.linspace(-750.0, 0.0, 3_000_001), np.linspace(0.0, 709.7, 1_000_001)])
    y = np.empty_like(x)
    _exp_loop(x, y)
    ref = np.exp(x)
    normal = ref >= np.finfo(np.float64).tiny
    rel = np.abs(y[normal] - ref[normal]) / ref[normal]
    ulp = _ulps(y, ref, np.float64)
    worst["float64 max ulp"] = float(ulp.max())
    worst["float64 max rel (normal)"] = float(rel.max())
    worst["float64 max abs (subnormal)"] = float(np.abs(y[~normal] - ref[~normal]).max())
    # float32
    if exhaustive_float32:
        lo = np.float32(-104.0).view(np.int32)
        pos_hi = np.float32(88.72).view(np.int32)
        chunks = [(-np.arange(0, lo & 0x7FFFFFFF, dtype=np.int64)), np.arange(0, pos_hi, dtype=np.int64)]
        mx = 0.0
        for bits in chunks:
            for start in range(0, bits.size, 1 << 24):
                b = bits[start:start + (1 << 24)]
                xs = np.where(b < 0, (-b) | (1 << 31), b).astype(np.uint32).view(np.float32)
                ys = np.empty_like(xs)
                _exp_loop(xs, ys)
                mx = max(mx, float(_ulps(ys, np.exp(xs.astype(np.float64)), np.float32).max()))
        worst["float32 max ulp (every float32 in [-104, 88.72])"] = mx
    else:
        xs = np.concatenate([np.linspace(-104, 0, 4_000_001), np.linspace(0, 88.72, 1_000_001)])
        xs = xs.astype(np.float32)
        ys = np.empty_like(xs)
        _exp_loop(xs, ys)
        worst["float32 max ulp (5e6 points in [-104, 88.72])"] = float(
            _ulps(ys, np.exp(xs.astype(np.float64)), np.float32).max()
        )
    # special values
    for dt in (np.float64, np.float32):
        sp = np.array([np.nan, -np.inf, np.inf, 0.0, -0.0, -1e30, 1e30, -800.0, 800.0], dtype=dt)
        out = np.empty_like(sp)
        _exp_loop(sp, out)
        worst[f"{dt.__name__} specials nan,-inf,inf,0,-0,-1e30,1e30,-800,800"] = out.tolist()
        asm = _exp_loop.inspect_asm(_exp_loop.signatures[-1])
        worst[f"{dt.__name__} vectorised (zmm/ymm in asm)"] = ("zmm" in asm) or ("ymm" in asm)
    # speed
    for dt in (np.float64, np.float32):
        xx = np.random.default_rng(0).uniform(-50, 0, 1_000_000).astype(dt)
        oo = np.empty_like(xx)
        _exp_loop(xx, oo)
        t_nb = min(timeit.Timer(lambda: _exp_loop(xx, oo), timer=time.thread_time).repeat(5, 20)) / 20
        t_np = min(timeit.Timer(lambda: np.exp(xx, out=oo), timer=time.thread_time).repeat(5, 20)) / 20
        worst[f"{dt.__name__} 1e6 exps: vexp ms / np.exp ms"] = (round(t_nb * 1e3, 3), round(t_np * 1e3, 3))
    return worst


if __name__ == "__main__":
    for key, value in check("--exhaustive" in sys.argv).items():
        print(f"{key}: {value}")
    for key, value in check_others().items():
        print(f"{key}: {value}")

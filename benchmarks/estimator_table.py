"""Seconds per training epoch of fastnn.MLPClassifier next to scikit-learn, PyTorch and the BLAS
floor, printed as one Markdown table.

    PYTHONPATH=. python benchmarks/estimator_table.py [--quick] [--threads 1 2] [...]

Columns (seconds per epoch, median over timed epochs after one warm-up epoch that is excluded,
so Numba's first-call JIT and the estimators' initialisation are not counted):

- ``fastnn native``: ``fastnn.MLPClassifier`` with its native (compiled) training loop, once the
  estimator has one (issue 4); ``n/a`` before that.
- ``fastnn python``: ``fastnn.MLPClassifier`` with the Python-level reference loop (issue 3).
- ``sklearn``: ``sklearn.neural_network.MLPClassifier`` with the same hyperparameters.
- ``torch``: PyTorch CPU, the same network and optimizer with manual batching
  (``benchmarks/_torch_mlp.py``).
- ``floor``: the forward and backward GEMMs of every batch alone, on preallocated arrays
  (``benchmarks/_floor.py``): the least any implementation must do.

One epoch of an estimator is the second epoch of a ``fit(X, y)`` call with ``warm_start=True,
max_iter=2`` (tol 0, no early stopping, so nothing stops it early), timed from the end of the first
epoch to the end of the second: an epoch as inside a long ``fit``, after the first epoch has
touched the buffers that ``fit`` allocates. ``--timing call`` times whole calls instead: one
``partial_fit`` (``--epoch-call partial_fit``, the default) or ``fit`` with ``max_iter=1``.

Batch size 1 (marked ``*``): timed on the first ``--batch1-subset`` rows (default 2000) and
scaled by ``n_samples / subset`` to per-epoch-equivalent seconds, for every column alike.

The contenders of a case are interleaved (round r times each contender once, in a rotated
order), so machine noise hits them alike; every case runs under
``threadpoolctl.threadpool_limits(t)`` (all BLAS pools and all OpenMP runtimes) and
``torch.set_num_threads(t)``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
REPO = os.path.dirname(HERE)

from _floor import floor_epoch_fn  # noqa: E402
from _torch_mlp import torch_epoch_fn  # noqa: E402

CONTENDERS = ("fastnn_native", "fastnn_python", "sklearn", "torch", "floor")
LABELS = {
    "fastnn_native": "fastnn native",
    "fastnn_python": "fastnn python",
    "sklearn": "sklearn",
    "torch": "torch",
    "floor": "floor",
}
DATASETS = ("synth60k", "digits")

# The hyperparameters shared by every contender (scikit-learn's defaults).
COMMON = dict(
    activation="relu",
    alpha=1e-4,
    learning_rate_init=1e-3,
    momentum=0.9,
    nesterovs_momentum=True,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-8,
)


# --------------------------------------------------------------------------------------------
# data


_DATA_CACHE: dict = {}


def load_dataset(name, dtype):
    key = (name, np.dtype(dtype).name)
    if key in _DATA_CACHE:
        return _DATA_CACHE[key]
    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
    elif name == "synth60k":
        from sklearn.datasets import make_classification

        X, y = make_classification(
            n_samples=60000, n_features=100, n_informative=50, n_classes=10, random_state=0
        )
    else:
        raise ValueError(f"unknown dataset {name!r}")
    X = np.asarray(X, dtype=np.float64)
    std = X.std(axis=0)
    std[std == 0] = 1.0
    X = (X - X.mean(axis=0)) / std
    X = np.ascontiguousarray(X, dtype=dtype)
    y = np.ascontiguousarray(y, dtype=np.intp)
    _DATA_CACHE[key] = (X, y)
    return X, y


# --------------------------------------------------------------------------------------------
# fastnn: detect the estimator, its loop switch and its backend switch


def fastnn_estimator():
    """``(MLPClassifier, None)`` or ``(None, reason)``."""
    try:
        from fastnn import MLPClassifier  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return None, f"{type(exc).__name__}: {exc}"
    return MLPClassifier, None


# Known spellings of the native/python loop switch, tried in this order when --loop-param is
# not given. Each entry: parameter name -> (value for native, value for python).
_LOOP_SWITCHES = {
    "loop": ("native", "python"),
    "training_loop": ("native", "python"),
    "engine": ("native", "python"),
    "native_loop": (True, False),
    "native": (True, False),
    "use_native": (True, False),
}


def _parse_value(text):
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    try:
        return int(text)
    except ValueError:
        return text


def loop_switch(est_cls, loop_param=None):
    """``(name, native_value, python_value)`` of the estimator's loop switch, or ``None``."""
    if est_cls is None:
        return None
    params = inspect.signature(est_cls.__init__).parameters
    if loop_param:
        name, _, rest = loop_param.partition("=")
        native, _, python = rest.partition(",")
        if name not in params:
            raise SystemExit(f"--loop-param: MLPClassifier has no parameter {name!r}")
        return name, _parse_value(native), _parse_value(python)
    for name, (native, python) in _LOOP_SWITCHES.items():
        if name in params:
            return name, native, python
    return None


def backend_working(name):
    """Whether fastnn_core's backend ``name`` loads AND runs a kernel (an empty, unbuilt
    ``_cython`` directory imports as a namespace package, so "loads" is not enough)."""
    try:
        import fastnn_core

        with fastnn_core.use_backend(name):
            z = np.array([[0.0, 1.0, 2.0]])
            loss, _ = fastnn_core.cross_entropy_grad(z, np.array([1]))
        return bool(np.isfinite(loss)), None
    except Exception as exc:  # noqa: BLE001
        return False, f"{type(exc).__name__}: {exc}"


def choose_backend(requested):
    """The fastnn_core backend to run fastnn with, and notes about the choice."""
    notes = []
    if requested != "auto":
        ok, err = backend_working(requested)
        if not ok:
            raise SystemExit(f"--backend {requested}: not usable ({err})")
        return requested, notes
    for name in ("cython", "numba", "numpy"):
        ok, err = backend_working(name)
        if ok:
            return name, notes
        notes.append(f"backend {name} not usable ({err})")
    raise SystemExit("no fastnn_core backend works")


# --------------------------------------------------------------------------------------------
# contenders: each factory returns a zero-argument callable that trains one epoch


def _hidden_str(hidden):
    return ",".join(str(h) for h in hidden)


@dataclass
class Case:
    dataset: str
    hidden: tuple
    solver: str
    batch: object  # int or "full"
    dtype: str
    threads: int

    def key(self):
        return (self.dataset, self.hidden, self.solver, self.batch, self.dtype, self.threads)


@dataclass
class Env:
    args: argparse.Namespace
    backend: str
    est_cls: object = None
    est_reason: str = ""
    switch: tuple = None
    notes: list = field(default_factory=list)


def _estimator_params(case, n_rows, sklearn_like):
    if case.batch == "full":
        batch = n_rows if sklearn_like else "full"
    else:
        batch = int(case.batch)
    return dict(
        hidden_layer_sizes=tuple(case.hidden),
        solver=case.solver,
        batch_size=batch,
        shuffle=True,
        random_state=0,
        early_stopping=False,
        tol=0.0,
        n_iter_no_change=10**9,
        max_iter=1,
        **COMMON,
    )


class EpochTimes(list):
    """Durations of the epochs that one call ran, measured inside the estimator (see
    :func:`_estimator_epoch`); the runner uses them instead of the call's wall time."""


class _StampedList(list):
    """``loss_curve_`` that notes the time of every ``append`` (once at the end of each epoch)."""

    def __init__(self, items, stamps):
        super().__init__(items)
        self._stamps = stamps

    def append(self, value):
        self._stamps.append(time.perf_counter())
        super().append(value)


def _estimator_epoch(est, X, y, classes, args):
    """A callable that trains the estimator and returns the seconds of one epoch.

    ``--timing epoch`` (default): one epoch inside a long ``fit``. Each call is
    ``fit(X, y)`` with ``warm_start=True, max_iter=2`` and the time measured is the second
    epoch, from the end of the first to the end of the second (both noted when the epoch loss
    is appended to ``loss_curve_``): the shuffle, every batch and the bookkeeping between epochs,
    after the first epoch of the call has touched the workspaces that ``fit`` allocates. Input
    validation, initialisation and what ``fit`` does after its last epoch are not counted.
    ``--timing call``: the wall time of one ``--epoch-call`` (``partial_fit``, or ``fit`` with
    ``warm_start=True, max_iter=1``), everything included.
    """
    if args.timing == "call":
        if args.epoch_call == "partial_fit":
            return lambda: est.partial_fit(X, y, classes=classes)
        est.set_params(warm_start=True, max_iter=1)
        return lambda: est.fit(X, y)

    stamps = []

    def epoch():
        if not isinstance(getattr(est, "loss_curve_", None), _StampedList):
            # the warm-up: one epoch that initialises the estimator and its loss_curve_
            est.set_params(warm_start=True, max_iter=1)
            est.fit(X, y)
            est.set_params(max_iter=2)
            est.loss_curve_ = _StampedList(est.loss_curve_, stamps)
            return None
        del stamps[:]
        est.fit(X, y)
        if len(stamps) != 2:
            raise RuntimeError(f"fit ran {len(stamps)} epochs instead of 2")
        return EpochTimes([stamps[1] - stamps[0]])

    return epoch


def make_sklearn(case, X, y, classes, env):
    from sklearn.neural_network import MLPClassifier

    est = MLPClassifier(**_estimator_params(case, X.shape[0], sklearn_like=True))
    return _estimator_epoch(est, X, y, classes, env.args)


def _make_fastnn(case, X, y, classes, env, which):
    if env.est_cls is None:
        return None, "no estimator: " + env.est_reason
    params = _estimator_params(case, X.shape[0], sklearn_like=False)
    sig = inspect.signature(env.est_cls.__init__).parameters
    if env.switch is not None:
        name, native, python = env.switch
        params[name] = native if which == "native" else python
    elif which == "native":
        return None, "no native loop switch in MLPClassifier yet"
    if which == "native":
        why = native_unavailable(env.backend, X)
        if why:
            return None, why
    if "backend" in sig:
        params["backend"] = env.backend
    unknown = [k for k in params if k not in sig]
    for k in unknown:
        params.pop(k)
    est = env.est_cls(**params)
    if "backend" not in sig:
        import fastnn_core

        fastnn_core.set_backend(env.backend)
    return _estimator_epoch(est, X, y, classes, env.args), None


def native_unavailable(backend, X):
    """Why the estimator's native loop would silently fall back to the Python loop on this
    backend and data (None when it runs natively)."""
    try:
        from fastnn._native_loop import native_available
    except ImportError:
        return None  # no adapter module to ask: trust the switch
    import fastnn_core

    with fastnn_core.use_backend(backend):
        kernels = fastnn_core.get_kernels()
    if not native_available(kernels, X):
        return f"backend {backend} has no native train_epoch here (the estimator would fall back to the Python loop)"
    return None


def make_fastnn_native(case, X, y, classes, env):
    return _make_fastnn(case, X, y, classes, env, "native")


def make_fastnn_python(case, X, y, classes, env):
    return _make_fastnn(case, X, y, classes, env, "python")


def make_torch(case, X, y, classes, env):
    kw = {k: v for k, v in COMMON.items()}
    return torch_epoch_fn(
        X,
        y,
        case.hidden,
        len(classes),
        case.batch,
        solver=case.solver,
        seed=0,
        optim_impl=env.args.torch_optim,
        **kw,
    )


def make_floor(case, X, y, classes, env):
    """The products of every batch; on one thread with the cython backend chunked as its
    native loop runs them (``BATCH_CHUNK_ROWS``). Not on more threads: the chunked floor adds
    the later chunks' gradients with SciPy's GEMM between NumPy's products, and the two
    OpenBLAS thread pools then fight for the cores (1.2-3 s full-batch epochs measured)."""
    sizes = [X.shape[1], *case.hidden, len(classes)]
    chunk = None
    if case.threads == 1 and env.backend == "cython":
        from fastnn_core._cython._train import BATCH_CHUNK_ROWS as chunk
    return floor_epoch_fn(X, sizes, case.batch, chunk_rows=chunk)


FACTORIES = {
    "fastnn_native": make_fastnn_native,
    "fastnn_python": make_fastnn_python,
    "sklearn": make_sklearn,
    "torch": make_torch,
    "floor": make_floor,
}


# --------------------------------------------------------------------------------------------
# timing


@contextlib.contextmanager
def thread_limits(n):
    from threadpoolctl import threadpool_limits

    torch = None
    try:
        import torch
    except ImportError:
        pass
    old = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=n):
        if torch is not None:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(old)


def _timed(fn):
    """Seconds of one epoch of ``fn``: its own measurement when it returns ``EpochTimes``,
    else the wall time of the call."""
    gc.collect()
    t0 = time.perf_counter()
    r = fn()
    wall = time.perf_counter() - t0
    if isinstance(r, EpochTimes):
        return statistics.median(r)
    return wall


def run_case(case, env, contenders, out=sys.stderr):
    """Median seconds per epoch of each contender: ``{name: (seconds or None, note)}``."""
    args = env.args
    X, y = load_dataset(case.dataset, case.dtype)
    classes = np.unique(y)
    n = X.shape[0]
    scale = 1.0
    if case.batch != "full" and int(case.batch) == 1 and n > args.batch1_subset:
        m = args.batch1_subset
        X, y = X[:m], y[:m]
        scale = n / m
    fns, result = {}, {}
    with thread_limits(case.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in contenders:
            try:
                made = FACTORIES[name](case, X, y, classes, env)
            except Exception as exc:  # noqa: BLE001
                result[name] = (None, f"setup failed: {type(exc).__name__}: {exc}")
                continue
            fn, why = made if isinstance(made, tuple) else (made, None)
            if fn is None:
                result[name] = (None, why)
                continue
            try:
                warm = _timed(fn)  # warm-up: JIT, first-call initialisation
            except Exception as exc:  # noqa: BLE001
                result[name] = (None, f"failed: {type(exc).__name__}: {exc}")
                continue
            fns[name] = (fn, warm)
        if not fns:
            return result
        # Repeats per contender from its warm-up time and the budget (at least min_repeats,
        # interleaved round by round); a contender whose warm-up epoch took longer than
        # --slow-cap seconds gets one timed epoch (marked "~" in the table).
        reps = {}
        for name, (_, warm) in fns.items():
            k = int(args.budget / max(warm, 1e-9))
            # millisecond epochs (digits) need many more repeats for a stable median on a
            # shared machine: one time slice lost is several epochs' worth
            cap = args.max_repeats if warm > 0.05 else max(args.max_repeats, 31)
            reps[name] = max(args.min_repeats, min(cap, k))
            if warm > args.slow_cap:
                reps[name] = 1
            if warm > 3 * args.slow_cap:
                reps[name] = 0  # the warm-up epoch is the measurement (marked "w")
        times = {name: [] if reps[name] else [w] for name, (_, w) in fns.items()}
        warm_only = {name for name in fns if reps[name] == 0}
        names = list(fns)
        for r in range(max(reps.values())):
            k = r % len(names) if names else 0
            for name in names[k:] + names[:k]:
                if r >= reps[name]:
                    continue
                try:
                    times[name].append(_timed(fns[name][0]))
                except Exception as exc:  # noqa: BLE001
                    result[name] = (None, f"failed: {type(exc).__name__}: {exc}")
                    fns.pop(name, None)
            names = [nm for nm in names if nm in fns]
            if not names:
                break
        for name, ts in times.items():
            if name in result:
                continue
            result[name] = (statistics.median(ts) * scale, "w" if name in warm_only else len(ts))
        result["_scale"] = (scale, None)
        result["_load"] = (os.getloadavg()[0], None)
        for name in args.profile or ():
            if name in fns:
                profile_epoch(case, name, fns[name][0], args.profile_top, scale)
    return result


def profile_epoch(case, name, fn, top, scale, out=sys.stderr):
    """cProfile one more epoch of contender ``name`` and print where the time goes (tottime:
    time inside the function itself, not in what it calls), to stderr."""
    import cProfile
    import pstats

    pr = cProfile.Profile()
    gc.collect()
    t0 = time.perf_counter()
    pr.enable()
    fn()
    pr.disable()
    wall = time.perf_counter() - t0
    st = pstats.Stats(pr)
    total = sum(v[2] for v in st.stats.values())
    rows = sorted(st.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    print(
        f"\n## profile: {LABELS[name]} | {case.dataset} | hidden {_hidden_str(case.hidden)} | "
        f"{case.solver} | batch {case.batch} | {case.dtype} | {case.threads} thread(s): "
        f"{wall:.3f} s under cProfile for the epoch"
        + (f" (x{scale:.0f} for the whole set)" if scale != 1 else ""),
        file=out,
    )
    print(f"{'calls':>9} {'tottime s':>10} {'%':>6} {'per call us':>12}  function", file=out)
    for (filename, line, func), (cc, nc, tt, ct, _callers) in rows:
        short = os.path.relpath(filename, REPO) if filename.startswith(REPO) else os.path.basename(filename)
        where = f"{short}:{line}({func})" if line else func
        print(
            f"{nc:>9} {tt:>10.4f} {100 * tt / total:>6.1f} {1e6 * tt / max(nc, 1):>12.2f}  {where}",
            file=out,
        )
    out.flush()


# --------------------------------------------------------------------------------------------
# the table


def fmt_s(v):
    if v is None:
        return "n/a"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 0.1:
        return f"{v:.2f}"
    if v >= 0.001:
        return f"{v:.4f}"
    return f"{v:.2e}"


def fmt_r(a, b):
    if a is None or b is None or b <= 0:
        return "n/a"
    r = a / b
    return f"{r:.1f}" if r >= 10 else f"{r:.2f}"


def ratio(a, b):
    if a is None or b is None or b <= 0:
        return None
    return a / b


TABLE_COLS = [
    "data",
    "hidden",
    "solver",
    "batch",
    "dtype",
    "thr",
    "fastnn native",
    "fastnn python",
    "sklearn",
    "torch",
    "floor",
    "skl/nat",
    "skl/py",
    "torch/nat",
    "torch/py",
    "nat/floor",
    "py/floor",
    "load",
]


def table_header():
    return [
        "| " + " | ".join(TABLE_COLS) + " |",
        "|" + "|".join("---" if i < 6 else "---:" for i in range(len(TABLE_COLS))) + "|",
    ]


def table_row(case, res):
    def s(name):
        v = res.get(name, (None, ""))[0]
        return v

    def cell(name):
        v, k = res.get(name, (None, ""))
        if v is None:
            return fmt_s(v)
        return fmt_s(v) + ("~" if k == 1 else "w" if k == "w" else "")

    nat, py, skl, tor, flo = (s(c) for c in CONTENDERS)
    scale = res.get("_scale", (1.0, None))[0]
    batch = str(case.batch) + ("*" if scale != 1.0 else "")
    cells = [
        case.dataset,
        _hidden_str(case.hidden),
        case.solver,
        batch,
        case.dtype,
        str(case.threads),
        *(cell(c) for c in CONTENDERS),
        fmt_r(skl, nat),
        fmt_r(skl, py),
        fmt_r(tor, nat),
        fmt_r(tor, py),
        fmt_r(nat, flo),
        fmt_r(py, flo),
        f"{res['_load'][0]:.1f}" if "_load" in res else "",
    ]
    return "| " + " | ".join(cells) + " |"


# --------------------------------------------------------------------------------------------
# targets of issues 3 and 4


def check_targets(rows):
    """Lines that say, per target, which cases met it and which missed it."""
    lines = []

    def verdict(label, checks):
        # checks: list of (case, value or None, ok or None)
        measured = [c for c in checks if c[1] is not None]
        if not checks:
            lines.append(f"- {label}: no such case in this run")
            return
        if not measured:
            lines.append(f"- {label}: NOT MEASURED (contender n/a)")
            return
        missed = [c for c in measured if not c[2]]
        vals = ", ".join(
            f"{c[0].dataset}/{_hidden_str(c[0].hidden)}/{c[0].solver}/b{c[0].batch}/"
            f"{c[0].dtype}/t{c[0].threads}={c[1]:.2f}"
            for c in (missed if missed else measured)
        )
        if missed:
            lines.append(f"- {label}: MISSED in {len(missed)}/{len(measured)} cases ({vals})")
        else:
            lines.append(f"- {label}: MET in all {len(measured)} cases ({vals})")

    def get(res, name):
        return res.get(name, (None, ""))[0]

    def pick(pred):
        return [(c, r) for c, r in rows if pred(c)]

    issue3 = lambda c: c.dataset == "synth60k" and c.hidden == (100,) and c.solver == "adam"  # noqa: E731
    lines.append("Issue 3 (Python loop; synth60k, hidden 100, adam):")
    sel = pick(issue3)
    checks = []
    for c, r in sel:
        v = ratio(get(r, "sklearn"), get(r, "fastnn_python"))
        checks.append((c, v, v is not None and v > 1.0))
    verdict("faster than scikit-learn at every batch size (skl/py > 1)", checks)
    checks = []
    for c, r in sel:
        if c.batch == 200 and c.dtype == "float32":
            v = ratio(get(r, "sklearn"), get(r, "fastnn_python"))
            checks.append((c, v, v is not None and v >= 1.5))
    verdict(">= 1.5x scikit-learn at batch 200 float32", checks)

    lines.append("Issue 4 (native loop; every case of the run):")
    for label, batch, name, need in (
        ("batch 1: >= 30x faster than scikit-learn", 1, "sklearn", 30.0),
        ("batch 1: >= 10x faster than PyTorch", 1, "torch", 10.0),
        ("batch 32: >= 3x faster than scikit-learn", 32, "sklearn", 3.0),
        ("batch 32: faster than PyTorch", 32, "torch", 1.0 + 1e-12),
    ):
        checks = []
        for c, r in pick(lambda c, b=batch: c.batch == b):
            v = ratio(get(r, name), get(r, "fastnn_native"))
            checks.append((c, v, v is not None and v >= need))
        verdict(label, checks)
    checks = []
    for c, r in pick(lambda c: c.batch in (256, "full")):
        v = ratio(get(r, "fastnn_native"), get(r, "floor"))
        checks.append((c, v, v is not None and v <= 1.3))
    verdict("batch 256 and full: within 1.3x of the BLAS floor (nat/floor <= 1.3)", checks)
    return lines


# --------------------------------------------------------------------------------------------
# header: command, versions, threads


def _version(mod):
    try:
        m = __import__(mod)
        return getattr(m, "__version__", "?")
    except Exception:  # noqa: BLE001
        return "not installed"


def header_lines(env, argv):
    import threadpoolctl

    lines = []
    cmd = "python " + " ".join(shlex.quote(a) for a in argv)
    lines.append(f"Command: `{cmd}`")
    try:
        commit = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = "?"
    lines.append(
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; fastnn commit {commit} "
        "(working tree)"
    )
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    lines.append(
        f"Machine: {cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )
    vers = ", ".join(
        f"{m} {_version(m)}"
        for m in ("numpy", "scipy", "sklearn", "torch", "threadpoolctl", "fastnn")
    )
    lines.append(f"Versions: {vers}")
    import fastnn_core

    lines.append(
        f"fastnn backend: {env.backend} (fastnn_core.available_backends() = "
        f"{fastnn_core.available_backends()})"
    )
    for note in env.notes:
        lines.append(f"Note: {note}")
    if env.est_cls is None:
        lines.append(f"fastnn.MLPClassifier: not importable ({env.est_reason}); fastnn columns n/a")
    elif env.switch is None:
        lines.append(
            "fastnn loop: no native/python loop switch in MLPClassifier's parameters: "
            "'fastnn python' is the estimator as it is, 'fastnn native' is n/a"
        )
    else:
        name, nat, py = env.switch
        lines.append(f"fastnn loop switch: native = `{name}={nat!r}`, python = `{name}={py!r}`")
    pools = threadpoolctl.threadpool_info()
    desc = "; ".join(
        f"{p['user_api']}: {p['prefix']} {p.get('version') or ''} "
        f"({os.path.basename(p['filepath'])}, default {p['num_threads']} threads)"
        for p in pools
    )
    lines.append(f"Thread pools: {desc}")
    env_threads = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    lines.append(
        "Threads per case (`thr`): threadpoolctl.threadpool_limits(thr) on every pool above "
        f"and torch.set_num_threads(thr); environment {env_threads}"
    )
    a = env.args
    lines.append(
        f"Timing: one warm-up epoch excluded, then {a.min_repeats}-{a.max_repeats} interleaved "
        f"epochs per contender (about {a.budget:g} s each; up to 31 for epochs under 50 ms), median; "
        + ("one epoch = the second epoch of a `fit(max_iter=2, warm_start=True)` call, from the "
           "end of the first to the end of the second (an epoch inside a long fit)"
           if a.timing == "epoch" else f"one epoch = one whole `{a.epoch_call}` call")
        + ". Hyperparameters: relu, alpha 1e-4, learning_rate_init 1e-3, "
        f"shuffle on (fastnn: not at full batch), tol/early stopping off; torch optimizer `{a.torch_optim}`. `*`: batch 1 "
        f"timed on the first {a.batch1_subset} rows, scaled to per-epoch-equivalent seconds of "
        f"the whole set. `~`: warm-up epoch over {a.slow_cap:g} s, one timed epoch only; `w`: warm-up epoch over "
        f"{3 * a.slow_cap:g} s, which is then the measurement. "
        "`load`: 1-minute load average after the case (the machine is shared: rows with load "
        "above the core count are noisy, 2-thread rows most of all)."
    )
    return lines


# --------------------------------------------------------------------------------------------
# main


def parse_batch(text):
    return "full" if text == "full" else int(text)


def parse_hidden(text):
    return tuple(int(t) for t in text.split(",") if t)


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a handful of cases, < 2 minutes")
    p.add_argument("--threads", type=int, nargs="+", default=None, help="default: 1 2 (quick: 1)")
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=None)
    p.add_argument("--hidden", type=parse_hidden, nargs="+", default=None, help="e.g. 100 256,128")
    p.add_argument("--solvers", nargs="+", choices=("adam", "sgd"), default=None)
    p.add_argument("--batch-sizes", type=parse_batch, nargs="+", default=None, help="ints or full")
    p.add_argument("--dtypes", nargs="+", choices=("float32", "float64"), default=None)
    p.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    p.add_argument("--backend", default="auto", help="fastnn_core backend (auto: cython, numba, numpy)")
    p.add_argument(
        "--loop-param",
        default=None,
        help="the estimator's loop switch as NAME=NATIVE,PYTHON (default: detected)",
    )
    p.add_argument(
        "--torch-optim",
        choices=("fused", "foreach", "default"),
        default="fused",
        help="PyTorch optimizer implementation (default: fused)",
    )
    p.add_argument("--epoch-call", choices=("partial_fit", "fit"), default="partial_fit")
    p.add_argument(
        "--timing",
        choices=("epoch", "call"),
        default="epoch",
        help="estimators: time an epoch inside fit (default) or one whole --epoch-call",
    )
    p.add_argument(
        "--batch1-subset", type=int, default=None, help="rows timed at batch 1 (1000; --quick 500)"
    )
    p.add_argument(
        "--slow-cap",
        type=float,
        default=4.0,
        help="a contender whose warm-up epoch takes longer than this (s) gets 1 timed epoch",
    )
    p.add_argument("--min-repeats", type=int, default=None)
    p.add_argument("--max-repeats", type=int, default=None)
    p.add_argument("--budget", type=float, default=None, help="seconds of timed epochs per contender")
    p.add_argument(
        "--profile",
        nargs="+",
        choices=CONTENDERS,
        default=None,
        help="after timing, cProfile one epoch of these contenders per case (to stderr)",
    )
    p.add_argument("--profile-top", type=int, default=18)
    p.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="start no new case after this many minutes (default: 18; --quick and 0: no limit); "
        "cases run in priority order (the 60000-row set, hidden 100 and adam first)",
    )
    p.add_argument("--markdown-out", default=None, help="also write the whole output to this file")
    return p


def cases_from_args(args):
    quick = args.quick
    datasets = args.datasets or (["synth60k"] if quick else list(DATASETS))
    hidden = args.hidden or ([(100,)] if quick else [(100,), (256, 128)])
    solvers = args.solvers or (["adam"] if quick else ["adam", "sgd"])
    batches = args.batch_sizes or [1, 32, 200, 256, "full"]
    dtypes = args.dtypes or (["float32"] if quick else ["float32", "float64"])
    threads = args.threads or ([1] if quick else [1, 2])
    # Priority order, so that --max-minutes cuts the least important cases: every 1-thread
    # case before any 2-thread one (on a shared 2-core machine 2-thread timings are the
    # noisiest), then the 60000-row set, hidden 100 and adam first. The table is printed
    # sorted by case at the end.
    cases = []
    for t in threads:
        for d in datasets:
            for h in hidden:
                for s in solvers:
                    for b in batches:
                        for dt in dtypes:
                            cases.append(Case(d, h, s, b, dt, t))
    return cases


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    args = build_parser().parse_args(argv[1:])
    if args.batch1_subset is None:
        args.batch1_subset = 500 if args.quick else 1000
    if args.min_repeats is None:
        args.min_repeats = 3
    if args.max_repeats is None:
        args.max_repeats = 5 if args.quick else 7
    if args.budget is None:
        args.budget = 0.6 if args.quick else 1.0
    backend, notes = choose_backend(args.backend)
    os.environ.setdefault("FASTNN_BACKEND", backend)
    est_cls, reason = fastnn_estimator()
    env = Env(args=args, backend=backend, est_cls=est_cls, est_reason=reason or "", notes=notes)
    env.switch = loop_switch(est_cls, args.loop_param)
    if backend != "cython":
        env.notes.append(
            f"the cython backend is not usable here: fastnn ran on FASTNN_BACKEND={backend}"
        )

    out_lines = []

    def emit(line=""):
        print(line, flush=True)
        out_lines.append(line)

    t_start = time.perf_counter()
    for line in header_lines(env, argv):
        emit(line + "  ")
    emit()
    rows = []
    notes = {}
    cases = cases_from_args(args)
    limit = args.max_minutes if args.max_minutes is not None else (None if args.quick else 18.0)
    if limit is not None and limit <= 0:
        limit = None  # --max-minutes 0: no limit
    skipped = []
    print("progress (rows as measured; the table follows, sorted):", file=sys.stderr)
    for line in table_header():
        print(line, file=sys.stderr)
    for case in cases:
        if limit is not None and time.perf_counter() - t_start > 60 * limit:
            skipped.append(case)
            continue
        res = run_case(case, env, args.contenders)
        rows.append((case, res))
        print(table_row(case, res), file=sys.stderr, flush=True)
        for name, (v, note) in res.items():
            if name.startswith("_"):
                continue
            if v is None and note:
                notes.setdefault(f"{LABELS[name]}: {note}", 0)
                notes[f"{LABELS[name]}: {note}"] += 1
    order = {c.key(): i for i, c in enumerate(
        Case(d, h, s, b, dt, t)
        for d in (args.datasets or DATASETS)
        for h in sorted({c.hidden for c in cases}, key=len)
        for s in ("adam", "sgd")
        for b in [1, 32, 200, 256, "full"] + sorted(
            {c.batch for c in cases} - {1, 32, 200, 256, "full"}, key=str)
        for dt in ("float32", "float64")
        for t in sorted({c.threads for c in cases})
    )}
    rows.sort(key=lambda cr: order.get(cr[0].key(), len(order)))
    for line in table_header():
        emit(line)
    for case, res in rows:
        emit(table_row(case, res))
    emit()
    if skipped:
        emit(
            f"- NOT RUN ({len(skipped)} of {len(cases)} cases): the --max-minutes {limit:g} budget "
            "ran out; run them with the options above, e.g. "
            + ", ".join(sorted({f"--datasets {c.dataset} --hidden {_hidden_str(c.hidden)} "
                                f"--solvers {c.solver}" for c in skipped}))
        )
    for note, count in notes.items():
        emit(f"- n/a ({count} cases): {note}")
    if notes:
        emit()
    for line in check_targets(rows):
        emit(line)
    emit()
    emit(f"Total wall time: {time.perf_counter() - t_start:.0f} s")
    if args.markdown_out:
        with open(args.markdown_out, "w") as f:
            f.write("\n".join(out_lines) + "\n")
    return rows


if __name__ == "__main__":
    main()

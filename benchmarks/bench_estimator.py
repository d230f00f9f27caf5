"""pytest-benchmark form of the estimator cases of ``benchmarks/estimator_table.py``.

    PYTHONPATH=. python -m pytest benchmarks/bench_estimator.py --benchmark-group-by=group

One benchmark per (case, contender); each round is one training epoch (one ``partial_fit``
call; at batch size 1 an epoch over the first 1000 rows, the per-epoch-equivalent scaling is the
table's job), after one warm-up round. Contenders that do not exist yet (the native loop before
issue 4, an unbuilt backend) are skipped with the reason. The grid is the ``--quick`` grid of the
table (the 60000 x 100 set, hidden 100, adam, float32, 1 thread, batch 1/32/200/256/full);
``FASTNN_BENCH_FULL=1`` runs the full grid (long). No timing asserts: the numbers are for
``--benchmark-compare`` between commits; ratios and targets come from the table script.
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import estimator_table as et  # noqa: E402

_args = et.build_parser().parse_args(["--quick"] if not os.environ.get("FASTNN_BENCH_FULL") else [])
_args.min_repeats, _args.max_repeats, _args.budget = 3, 5, 1.0
_args.batch1_subset = 1000
_args.timing = "call"  # pytest-benchmark times the whole call
_CASES = et.cases_from_args(_args)
_ENV = None


def _env():
    global _ENV
    if _ENV is None:
        backend, notes = et.choose_backend(os.environ.get("FASTNN_BENCH_BACKEND", "auto"))
        est_cls, reason = et.fastnn_estimator()
        _ENV = et.Env(args=_args, backend=backend, est_cls=est_cls, est_reason=reason or "")
        _ENV.notes = notes
        _ENV.switch = et.loop_switch(est_cls)
    return _ENV


def _case_id(c):
    return f"{c.dataset}-h{et._hidden_str(c.hidden)}-{c.solver}-b{c.batch}-{c.dtype}-t{c.threads}"


@pytest.mark.parametrize("contender", et.CONTENDERS)
@pytest.mark.parametrize("case", _CASES, ids=_case_id)
def test_epoch(benchmark, case, contender):
    env = _env()
    X, y = et.load_dataset(case.dataset, case.dtype)
    classes = np.unique(y)
    if case.batch == 1 and X.shape[0] > _args.batch1_subset:
        X, y = X[: _args.batch1_subset], y[: _args.batch1_subset]
    benchmark.group = _case_id(case)
    benchmark.extra_info["fastnn_backend"] = env.backend
    with et.thread_limits(case.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        made = et.FACTORIES[contender](case, X, y, classes, env)
        fn, why = made if isinstance(made, tuple) else (made, None)
        if fn is None:
            pytest.skip(why)
        benchmark.pedantic(fn, rounds=_args.min_repeats, warmup_rounds=1, iterations=1)

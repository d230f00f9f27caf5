"""Time every kernel benchmark case in one run and print the Markdown ratio table.

    python benchmarks/kernel_table.py            # full: 9 repeats, >= 0.1 s each
    python benchmarks/kernel_table.py --quick    # 5 repeats, >= 0.02 s each
    python benchmarks/kernel_table.py --stat min # fastest single call instead (busy machine)
    python benchmarks/kernel_table.py --shapes 4096x1000 --dtypes float32 --threads 1
    python benchmarks/kernel_table.py --quick --steady-memory  # no page faults, see below

The cases are those of ``benchmarks/bench_kernels.py`` (same data, same callables, same thread
limits); each is timed with ``timeit`` (wall clock) after one warm-up call, the repeats of a
case's implementations taken in turn (numpy, cython, ..., numpy, cython, ...) so that all of
them see the same minutes of this shared machine, and the table shows the median time per call
in ms and the ratios

- ``numpy/cython``: speed-up of the cython backend over the NumPy reference backend,
- ``torch/cython``: speed-up over PyTorch (``F.cross_entropy`` + ``backward``, or softmax),
- ``cython/floor``: cython (into a preallocated ``out=``, as the floor) over ``np.copyto``,
- ``numpy/numba``: speed-up of the numba backend over the NumPy reference backend,
- ``numpy/floor``: the NumPy baseline in plain copies of the array: a ``numpy/cython`` target
  above it asks for a kernel faster than ``np.copyto`` of the array (only streaming stores get
  there: a hand-written streaming copy of 512 x 32000 floats takes 3.9 ms against 5.3 ms).

After the table, the issue's targets (``cross_entropy_grad``, one thread) are checked on the rows
of this run, each MET or MISSED; a missed speed-up whose time budget (NumPy's time over the
target) is below the copy floor is marked: it asks for a kernel faster than ``np.copyto``.

Every call allocates its result (and NumPy its temporaries); glibc returns freed arrays above
its mmap threshold to the kernel, so the next call page-faults fresh zeroed pages, and whether
a given array size does so varies from process to process (the float64 NumPy baseline at
4096 x 100 took 1.3 ms in one process and 5.5 ms in another). ``--steady-memory`` re-runs the
script with glibc told to keep freed memory (``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``): no side page-faults, and the ratios are reproducible.
"""

import argparse
import os
import platform
import statistics
import sys
import timeit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
try:
    import fastnn_core  # noqa: F401
except ImportError:  # run from a source checkout without installing: use the in-place build
    sys.path.insert(1, os.path.dirname(HERE))

import bench_kernels as B  # noqa: E402
import numpy as np  # noqa: E402


def interleaved_times(runs, repeats, min_time, stat="median"):
    """Seconds per call of each callable in ``runs`` (name -> callable): the median over
    ``repeats`` repeats of ``number`` calls each, ``number`` chosen per callable so that one
    repeat takes at least ``min_time``; or, for ``stat="min"``, the fastest of up to 500 single
    calls (``repeats * min_time`` seconds of them).

    The repeats go round-robin over the callables (one repeat of each, then the next round),
    so that a slow spell of this shared machine falls on every implementation of a case
    alike instead of on whichever ran during it: the ratios are taken over the same minutes."""
    once = {}
    for name, run in runs.items():
        t0 = timeit.default_timer()
        run()
        once[name] = max(timeit.default_timer() - t0, 1e-7)
    if stat == "min":
        # fastest single call out of many: what the code does when nothing else disturbs it
        number = {name: 1 for name in runs}
        rounds = {name: max(repeats, min(500, int(repeats * min_time / once[name])))
                  for name in runs}
    else:
        number = {name: max(1, int(min_time / once[name])) for name in runs}
        rounds = {name: repeats for name in runs}
    times = {name: [] for name in runs}
    for r in range(max(rounds.values())):
        for name, run in runs.items():
            if r < rounds[name]:
                times[name].append(timeit.timeit(run, number=number[name]) / number[name])
    pick = min if stat == "min" else statistics.median
    return {name: pick(ts) for name, ts in times.items()}


def _parse_shape(text):
    n, C = text.lower().split("x")
    return int(n), int(C)


def _fmt_ms(t):
    if t is None:
        return "n/a"
    ms = t * 1e3
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}" if ms < 100 else f"{ms:.0f}"


def _ratio(a, b):
    if a is None or b is None:
        return "n/a"
    return f"{a / b:.1f}x" if a / b >= 10 else f"{a / b:.2f}x"


_STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "268435456", "MALLOC_TRIM_THRESHOLD_": "1073741824"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter repeats")
    parser.add_argument("--shapes", nargs="*", type=_parse_shape, default=B.SHAPES)
    parser.add_argument("--dtypes", nargs="*", default=B.DTYPES)
    parser.add_argument("--threads", nargs="*", type=int, default=B.THREADS)
    parser.add_argument("--ops", nargs="*", default=B.OPS, choices=B.OPS)
    parser.add_argument("--stat", default="median", choices=["median", "min"],
                        help="median (default) of repeats, or the fastest single call "
                             "(steadier on a busy machine)")
    parser.add_argument("--steady-memory", action="store_true",
                        help="re-run with glibc keeping freed memory (no page faults per call)")
    args = parser.parse_args(argv)
    if args.steady_memory and os.environ.get("MALLOC_MMAP_THRESHOLD_") is None:
        env = dict(os.environ, **_STEADY_MALLOC)
        argv = sys.argv[1:] if argv is None else list(argv)
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *argv], env)
    repeats, min_time = (5, 0.02) if args.quick else (9, 0.1)

    import fastnn_core

    cy = fastnn_core.get_kernels("cython") if "cython" in fastnn_core.available_backends() else None
    for name in B.BACKENDS:  # load every backend now, so that limit_threads also sees numba
        try:
            fastnn_core.get_kernels(name)
        except fastnn_core.BackendUnavailableError:
            pass
    try:
        import torch

        torch_version = torch.__version__
    except Exception:
        torch_version = "not installed"
    print(f"<!-- python benchmarks/kernel_table.py{' --quick' if args.quick else ''}"
          f"{' --stat min' if args.stat == 'min' else ''}; "
          f"{'median of %d repeats' % repeats if args.stat == 'median' else 'fastest call'}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"numpy {np.__version__}, torch {torch_version}, "
          f"cython OpenMP={getattr(cy, 'OPENMP', None)}, SIMD: {getattr(cy, 'SIMD_INFO', None)}; "
          f"glibc MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_', 'default')}; "
          f"load average {os.getloadavg()[0]:.1f} -->")
    print()
    print("| op | n x C | dtype | threads | numpy ms | numba ms | cython ms | cython out= ms "
          "| torch ms | copy floor ms | numpy/cython | torch/cython | cython/floor | numpy/numba "
          "| numpy/floor |")
    # (cython/floor uses "cython out=": both write into a preallocated array)
    print("|" + "---|" * 15)
    rows = []
    for op in args.ops:
        for shape in args.shapes:
            for dtype in args.dtypes:
                z, y = B.make_data(shape, dtype)
                for threads in args.threads:
                    runs = {}
                    for impl in B.IMPLS:
                        try:
                            runs[impl] = B.make_case(op, impl, z, y)
                        except B.Unavailable:
                            pass
                    with B.limit_threads(threads):
                        t = interleaved_times(runs, repeats, min_time, args.stat)
                    t.update({impl: None for impl in B.IMPLS if impl not in runs})
                    print(f"| {op} | {shape[0]}x{shape[1]} | {dtype} | {threads} "
                          f"| {_fmt_ms(t['numpy'])} | {_fmt_ms(t['numba'])} "
                          f"| {_fmt_ms(t['cython'])} | {_fmt_ms(t['cython_out'])} "
                          f"| {_fmt_ms(t['torch'])} | {_fmt_ms(t['floor'])} "
                          f"| {_ratio(t['numpy'], t['cython'])} "
                          f"| {_ratio(t['torch'], t['cython'])} "
                          f"| {_ratio(t['cython_out'], t['floor'])} "
                          f"| {_ratio(t['numpy'], t['numba'])} "
                          f"| {_ratio(t['numpy'], t['floor'])} |", flush=True)
                    rows.append((op, shape, dtype, threads, t))
                del z, y
    print()
    for line in target_lines(rows):
        print(line)


def _case(shape, dtype):
    return f"{shape[0]}x{shape[1]} {dtype}"


def target_lines(rows):
    """The issue's one-thread ``cross_entropy_grad`` targets, checked on ``rows`` (op, shape,
    dtype, threads, times); one Markdown list item per target."""
    ce = [(shape, dtype, t) for op, shape, dtype, threads, t in rows
          if op == "cross_entropy_grad" and threads == 1 and t["cython"] is not None]
    # (name, cases, numerator, denominator, the least ratio that meets the target)
    checks = [
        ("float32 cython >= 5x NumPy", [r for r in ce if r[1] == "float32"],
         "numpy", "cython", 5.0),
        ("float64 cython >= 4x NumPy", [r for r in ce if r[1] == "float64"],
         "numpy", "cython", 4.0),
        ("float32 cython >= 2x PyTorch at C >= 1000",
         [r for r in ce if r[1] == "float32" and r[0][1] >= 1000], "torch", "cython", 2.0),
        ("float32 cython out= within 2x of the copy floor at C >= 1000 (floor/cython >= 0.5)",
         [r for r in ce if r[1] == "float32" and r[0][1] >= 1000], "floor", "cython_out", 0.5),
        ("numba faster than NumPy", ce, "numpy", "numba", 1.0),
    ]
    lines = ["Targets (cross_entropy_grad, 1 thread, this run):"]
    for name, cases, num, den, need in checks:
        cases = [c for c in cases if c[2][num] is not None and c[2][den] is not None]
        if not cases:
            lines.append(f"- {name}: no such case in this run")
            continue
        missed = [c for c in cases if c[2][num] / c[2][den] < need]
        if not missed:
            lines.append(f"- {name}: MET in all {len(cases)} cases")
            continue
        parts = []
        for shape, dtype, t in missed:
            text = f"{_case(shape, dtype)} {t[num] / t[den]:.2f}"
            budget = t[num] / need
            if num == "numpy" and t["floor"] is not None and budget < t["floor"]:
                text += (f" (the budget {_fmt_ms(budget)} ms is below the copy floor "
                         f"{_fmt_ms(t['floor'])} ms: it asks for more speed than np.copyto of "
                         "the array has)")
            parts.append(text)
        lines.append(f"- {name}: MISSED in {len(missed)}/{len(cases)} cases: "
                     + "; ".join(parts))
    return lines


if __name__ == "__main__":
    main()

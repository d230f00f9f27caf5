"""Build the Cython extensions of fastnn_core, with OpenMP where the compiler has it."""

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

OPENMP_TEST = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"


def _compiler():
    return os.environ.get("CC") or sysconfig.get_config_var("CC").split()[0]


def _has_openmp():
    """Compile and link a tiny OpenMP program; False on any failure (then kernels run serially)."""
    if os.environ.get("FASTNN_NO_OPENMP"):
        return False
    cc = _compiler()
    if shutil.which(cc) is None or sys.platform == "win32":
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp.c")
        with open(src, "w") as f:
            f.write(OPENMP_TEST)
        result = subprocess.run(
            [cc, "-fopenmp", src, "-o", os.path.join(tmp, "omp")],
            capture_output=True,
        )
        return result.returncode == 0


def _extensions():
    openmp = _has_openmp()
    compile_args = ["-O3", "-fno-math-errno", "-fopenmp-simd"]
    link_args = []
    if openmp:
        compile_args.append("-fopenmp")
        link_args.append("-fopenmp")
    macros = [
        ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
        ("FASTNN_OPENMP", "1" if openmp else "0"),
    ]
    extensions = []
    for pyx in sorted(glob.glob(os.path.join("fastnn_core", "_cython", "*.pyx"))):
        name = pyx[: -len(".pyx")].replace(os.sep, ".")
        extensions.append(
            Extension(
                name,
                [pyx],
                include_dirs=[np.get_include(), os.path.join("fastnn_core", "_cython")],
                define_macros=macros,
                extra_compile_args=compile_args,
                extra_link_args=link_args,
            )
        )
    return cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
        compile_time_env={"FASTNN_OPENMP": int(openmp)},
    )


setup(ext_modules=_extensions())

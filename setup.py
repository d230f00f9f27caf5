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
from setuptools.command.build_ext import build_ext

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


class build_ext_with_info(build_ext):
    """build_ext that also records how the extensions were built, for ``fastnn.show_config()``.

    Writes ``fastnn_core/_build_info.json`` next to the built extensions (in the wheel).
    """

    def run(self):
        super().run()
        import json

        import Cython

        ext = self.extensions[0] if self.extensions else None
        macros = dict(ext.define_macros) if ext else {}
        info = {
            "openmp": macros.get("FASTNN_OPENMP") == "1",
            "FASTNN_NO_OPENMP": os.environ.get("FASTNN_NO_OPENMP", ""),
            "compiler": " ".join(getattr(self.compiler, "compiler_so", None) or [_compiler()]),
            "extra_compile_args": list(ext.extra_compile_args) if ext else [],
            "extra_link_args": list(ext.extra_link_args) if ext else [],
            "define_macros": macros,
            "extensions": [e.name for e in self.extensions],
            "built_with": {
                "python": sys.version.split()[0],
                "numpy": np.__version__,
                "Cython": Cython.__version__,
            },
        }
        package_dir = "fastnn_core" if self.inplace else os.path.join(self.build_lib, "fastnn_core")
        os.makedirs(package_dir, exist_ok=True)
        with open(os.path.join(package_dir, "_build_info.json"), "w") as f:
            json.dump(info, f, indent=1, sort_keys=True)


setup(ext_modules=_extensions(), cmdclass={"build_ext": build_ext_with_info})

"""Build the native kernel.

OpenMP is used when the compiler supports it (``FASTMATCH_NO_OPENMP=1`` turns it
off); ``-march=native`` is added only when ``FASTMATCH_NATIVE=1`` asks for it,
because a wheel built so crashes on older CPUs.
"""

import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _compiler_accepts(flags: list[str]) -> bool:
    """Compile and link a tiny OpenMP program with the compiler Python was built with."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()
    if shutil.which(cc[0]) is None:
        return False
    source = "#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as handle:
            handle.write(source)
        result = subprocess.run(
            [*cc, *flags, path, "-o", os.path.join(tmp, "probe")],
            capture_output=True,
        )
    return result.returncode == 0


compile_args = ["-O3", "-fno-strict-aliasing"]
link_args: list[str] = []
if sys.platform != "win32":
    if platform.machine() in {"x86_64", "AMD64"}:
        # Asked for by the project on x86-64 (every CPU since 2008 has it): without it gcc
        # turns any __builtin_popcountll into a library call.
        compile_args.append("-mpopcnt")
    compile_args += ["-march=native"] if _flag("FASTMATCH_NATIVE") else []  # opt-in: ties the build to this CPU
    if _flag("FASTMATCH_DEBUG"):
        compile_args = ["-O0", "-g"]

use_openmp = not _flag("FASTMATCH_NO_OPENMP") and _compiler_accepts(["-fopenmp"])
if use_openmp:
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")

directives = {
    "language_level": 3,
    "boundscheck": _flag("FASTMATCH_DEBUG"),
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": _flag("FASTMATCH_DEBUG"),
}

extensions = [
    Extension(
        "fastmatch._kernel",
        ["native/_kernel.pyx"],
        include_dirs=[numpy.get_include(), "native"],
        depends=["native/loops.h", "native/loops.pxd", "native/tile512.h", "native/reductions.pxi"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives, include_path=["native"]))

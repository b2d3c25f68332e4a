"""Build klayers: every ``_ext/*.pyx`` becomes ``klayers._ext.<name>``.

OpenMP is used where the compiler accepts ``-fopenmp`` (found by compiling a probe, never by
platform name); otherwise the same sources build serially. BLAS comes only from
``scipy.linalg.cython_blas``: nothing links against a system BLAS.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from glob import glob

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"


def compiler_has_openmp(cc: str) -> bool:
    """Compile and link a tiny OpenMP program with ``cc``; True when it builds."""
    if os.environ.get("KLAYERS_NO_OPENMP"):
        return False
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(PROBE)
        cmd = [cc, "-fopenmp", src, "-o", os.path.join(tmp, "probe")]
        return subprocess.run(cmd, capture_output=True).returncode == 0
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class BuildExt(build_ext):
    """Adds OpenMP flags to every extension when the compiler supports them."""

    def build_extensions(self):
        cc = self.compiler.compiler_so[0] if hasattr(self.compiler, "compiler_so") else "cc"
        omp = compiler_has_openmp(cc)
        msg = "with OpenMP" if omp else "without OpenMP (serial kernels)"
        print(f"klayers: building kernels {msg}", file=sys.stderr)
        for ext in self.extensions:
            ext.extra_compile_args = ["-O3", "-fno-math-errno"]
            if omp:
                ext.extra_compile_args.append("-fopenmp")
                ext.extra_link_args = ["-fopenmp"]
        super().build_extensions()


def compiler_directives():
    """Speed by default; ``KLAYERS_DEBUG_BOUNDS=1`` builds with bounds and None checks on, so
    fuzz tests can prove that no index escapes what the Python wrappers validated."""
    debug = bool(os.environ.get("KLAYERS_DEBUG_BOUNDS"))
    return {
        "boundscheck": debug,
        "wraparound": False,
        "cdivision": True,
        "initializedcheck": debug,
        "nonecheck": debug,
    }


def extensions():
    """One extension per ``_ext/*.pyx``. The shared inline helpers (``_ext/*.pxd``) and C headers
    (``_ext/*.h``) are found through ``include_path`` / ``include_dirs`` and listed as
    dependencies, so editing one rebuilds every module (MANIFEST.in ships them in the sdist)."""
    exts = []
    shared = sorted(glob(os.path.join("_ext", "*.pxd")) + glob(os.path.join("_ext", "*.h")))
    for pyx in sorted(glob(os.path.join("_ext", "*.pyx"))):
        name = os.path.splitext(os.path.basename(pyx))[0]
        exts.append(
            Extension(
                f"klayers._ext.{name}",
                [pyx],
                include_dirs=[np.get_include(), "_ext"],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                depends=shared,
            )
        )
    return cythonize(
        exts,
        include_path=["_ext"],
        language_level=3,
        compiler_directives=compiler_directives(),
        force=bool(os.environ.get("KLAYERS_DEBUG_BOUNDS")),
        annotate=bool(os.environ.get("KLAYERS_ANNOTATE")),
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})

"""Build fastbp's compiled extensions (metadata lives in pyproject.toml).

FASTBP_DEBUG=1 builds with Cython's bounds and initialization checks on and
without optimization, for running the tests under a memory checker.
"""
import glob
import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTBP_DEBUG", "0") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}
# OpenMP: the engine's threads (cython.parallel) and the `omp simd` loops of csrc/.
compile_args = (["-O0", "-g"] if DEBUG else ["-O3"]) + ["-fopenmp"]
link_args = ["-fopenmp"]
macros = [("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION")]

extensions = [
    Extension(
        "fastbp._engine",
        sources=["fastbp/_engine.pyx", "csrc/fastbp_kernels.c", "csrc/fastbp_book.c",
                 "csrc/fastbp_book_gemv.c", "csrc/fastbp_small_gemm.c"],
        include_dirs=["csrc", np.get_include()],
        # the kernels' headers (the .c files include their bodies from
        # csrc/*_impl.h): a change to one rebuilds the extension
        depends=sorted(glob.glob("csrc/*.h")),
        define_macros=macros,
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    ),
    Extension(
        "fastbp._blas",
        sources=["fastbp/_blas.pyx"],
        define_macros=macros,
        extra_compile_args=compile_args,
    ),
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))

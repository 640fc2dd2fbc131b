"""Build of the compiled extension: fastkv._core = _core.pyx + the C core.

Set FASTKV_DEBUG=1 for a developer build: -O0, debug symbols, asserts and
-Werror. Everything else about the package lives in pyproject.toml.
"""

import os
from glob import glob

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


DEBUG = os.environ.get("FASTKV_DEBUG") == "1"


class BuildExt(build_ext):
    """Pick flags by compiler family; never -march=native (wheels travel)."""

    def build_extensions(self):
        ctype = self.compiler.compiler_type
        for ext in self.extensions:
            if ctype == "msvc":
                # the Win32 layer is src_c/platform_win32.[ch] (platform.h
                # picks it)
                ext.extra_compile_args += ["/W3"]
                ext.extra_compile_args += ["/Od", "/Zi"] if DEBUG else ["/O2"]
            else:  # gcc, clang, and mingw's gcc
                ext.extra_compile_args += ["-std=c11", "-Wall", "-Wextra",
                                           "-Wno-unused-parameter"]
                if ctype == "unix":
                    ext.extra_compile_args += ["-fvisibility=hidden"]
                    ext.extra_link_args += ["-pthread"]
                if DEBUG:
                    ext.extra_compile_args += ["-O0", "-g3", "-UNDEBUG"]
                else:
                    # -g0: Python's own CFLAGS add -g, a 1.5 MB of debug
                    # info in every wheel; FASTKV_DEBUG=1 keeps symbols
                    ext.extra_compile_args += ["-O2", "-g0", "-DNDEBUG"]
        super().build_extensions()


core = Extension(
    "fastkv._core",
    sources=["fastkv/_core.pyx"] + sorted(glob("src_c/*.c")),
    include_dirs=["src_c"],
    define_macros=[("_GNU_SOURCE", None)],
)

if DEBUG:
    # -Werror applies to our C files only; Cython's generated C is not ours.
    core.extra_compile_args = ["-Werror=implicit-function-declaration"]

setup(
    ext_modules=cythonize(
        [core],
        compiler_directives={"language_level": "3", "embedsignature": True},
        annotate=False,
        force=False,
    ),
    cmdclass={"build_ext": BuildExt},
)

"""The C core's own test (tests/core/core_test.c), no Python in between:
built with the machine's C compiler, and cross-built with mingw-w64 and
run under Wine, which runs the core's Win32 code path for real (the lock
between processes, offset reads and writes, the replace step of
compaction). .ci/run installs mingw-w64 and Wine and sets
FASTKV_REQUIRE_WINE=1, which turns a skip for want of them into a failure."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent / "core" / "run.sh"
WINE_REQUIRED = os.environ.get("FASTKV_REQUIRE_WINE") == "1"
CASES = 14  # the cases in core_test.c's main()


def run(mode: str) -> str:
    proc = subprocess.run(["bash", str(RUN), mode], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passed: 0 failures" in proc.stdout, proc.stdout
    return proc.stdout


# On Windows itself the suite runs against the extension, whose core is the
# same C: the core's own test is a program of the Linux run (bash, cc).
pytestmark = pytest.mark.skipif(
    sys.platform == "win32",
    reason="the C core's own test is built and run by the Linux run (bash and a C "
           "compiler; it runs its Win32 build under Wine there)")


def test_core_natively() -> None:
    if not (shutil.which(os.environ.get("CC", "cc")) and shutil.which("bash")):
        pytest.skip("no C compiler (cc) to build tests/core/core_test.c")
    out = run("native")
    assert out.count("ok  ") == CASES


def test_core_on_the_win32_code_path_under_wine() -> None:
    wine = Path("/usr/lib/wine/wine64")
    have = shutil.which("x86_64-w64-mingw32-gcc") and (wine.exists() or shutil.which("wine64"))
    if not have:
        why = ("mingw-w64 or Wine not installed "
               "(apt-get install gcc-mingw-w64-x86-64 wine64)")
        if WINE_REQUIRED:
            pytest.fail(why + ", and FASTKV_REQUIRE_WINE=1")
        pytest.skip(why)
    out = run("wine")
    assert out.count("ok  ") == CASES

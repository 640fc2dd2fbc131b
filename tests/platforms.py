"""What the tests need to know of the platform they run on, shared by
conftest.py and the test files."""

from __future__ import annotations

import os

# The Windows run under Wine (.ci/windows/suite.py sets it).
UNDER_WINE = os.environ.get("FASTKV_UNDER_WINE") == "1"
NO_CTRL_BREAK = ("Wine cannot deliver Ctrl+Break (GenerateConsoleCtrlEvent fails): a clean "
                 "stop is tested on Linux and on the Windows wheel runners")


def assert_stopped_cleanly(code: int, err: str) -> None:
    """A server stopped by Served.stop() ended cleanly: no traceback, exit
    code 0 (under Wine the stop was a kill, so only the first is known)."""
    assert "Traceback" not in err, err
    if not UNDER_WINE:
        assert code == 0, err

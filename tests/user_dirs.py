"""Per-user folders moved into a test's temporary folder, on every platform
(a helper shared by conftest.py and the tests of default locations)."""

from __future__ import annotations

from pathlib import Path

import pytest

# Where the per-user folders come from: HOME and XDG_* on POSIX; on
# Windows USERPROFILE (for ~) and the known folders, which platformdirs
# reads through the system unless WIN_PD_OVERRIDE_* names them.
USER_DIR_VARS = {
    "HOME": "home", "USERPROFILE": "home",
    "XDG_DATA_HOME": "home/.local/share", "XDG_CONFIG_HOME": "home/.config",
    "XDG_CACHE_HOME": "home/.cache", "XDG_STATE_HOME": "home/.local/state",
    "APPDATA": "home/AppData/Roaming", "LOCALAPPDATA": "home/AppData/Local",
    "WIN_PD_OVERRIDE_APPDATA": "home/AppData/Roaming",
    "WIN_PD_OVERRIDE_LOCAL_APPDATA": "home/AppData/Local",
}


def isolate_user_dirs(monkeypatch: pytest.MonkeyPatch, root: Path) -> Path:
    """Point every per-user folder (home, data, config, cache) into root, on
    every platform; the home folder."""
    for name, sub in USER_DIR_VARS.items():
        monkeypatch.setenv(name, str(root / sub))
    monkeypatch.delenv("FASTKV_PATH", raising=False)
    return root / "home"

"""What an installation holds: the tests run against the installed package
(from a wheel in .ci/run), never the source tree."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import fastkv

SOURCE_TREE = Path(__file__).resolve().parents[1]
PACKAGE_DIR = Path(fastkv.__file__).resolve().parent


def test_the_installed_package_is_the_one_under_test() -> None:
    assert PACKAGE_DIR != SOURCE_TREE / "fastkv"
    assert "site-packages" in PACKAGE_DIR.parts, PACKAGE_DIR


def test_installed_files_are_the_module_python_and_types_only() -> None:
    names = {p.name for p in PACKAGE_DIR.iterdir() if p.name != "__pycache__"}
    assert {"py.typed", "_core.pyi", "__init__.py", "cli", "redis", "serving"} <= names
    assert (PACKAGE_DIR / "cli" / "commands.py").is_file()
    assert any(n.startswith("_core.") and n.endswith((".so", ".pyd")) for n in names)
    leaked = [n for n in names if n.endswith((".pyx", ".pxd", ".c", ".h"))]
    assert not leaked


def test_one_version_everywhere() -> None:
    assert importlib.metadata.version("fastkv") == fastkv.__version__
    entry_points = importlib.metadata.distribution("fastkv").entry_points
    assert any(ep.name == "fastkv" and ep.value == "fastkv.cli:main" for ep in entry_points)

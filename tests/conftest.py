"""Shared fixtures. There is no tests/__init__.py on purpose: the suite
imports the installed fastkv package, never the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable, Iterator

import pytest

import fastkv
from fastkv import _core


@pytest.fixture(autouse=True)
def _outside_the_source_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test from its temp dir, so that child interpreters (which put
    their working directory on sys.path) import the installed fastkv too."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.fkv"


@pytest.fixture
def db(store_path: Path) -> Iterator[fastkv.DataStore]:
    store = fastkv.DataStore(store_path)
    yield store
    store.close()


class Clock:
    """Pins the C core's clock, so TTL tests move time instead of sleeping."""

    def __init__(self) -> None:
        self.ms = 1_800_000_000_000  # a fixed wall-clock instant (2027)
        _core._set_clock(self.ms)

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)
        _core._set_clock(self.ms)


@pytest.fixture
def clock() -> Iterator[Clock]:
    c = Clock()
    yield c
    _core._set_clock(None)


RunPython = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_python() -> RunPython:
    """Run a snippet in a fresh interpreter (the installed fastkv)."""

    def run(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )

    return run

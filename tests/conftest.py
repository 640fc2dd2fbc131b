"""Shared fixtures. There is no tests/__init__.py on purpose: the suite
imports the installed fastkv package, never the source tree."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

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


@pytest.fixture(scope="session")
def hash_collision() -> tuple[str, str]:
    """Two keys whose 27-bit index hashes are equal."""
    seen: dict[int, str] = {}
    i = 0
    while True:
        key = f"collide:{i}"
        h = _core._key_hash(key)
        if h in seen:
            return seen[h], key
        seen[h] = key
        i += 1


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


# ---- a real `fastkv serve` in a subprocess ----------------------------------------


def fastkv_script() -> str:
    """The installed console script, beside this interpreter if it is in a venv."""
    found = shutil.which("fastkv", path=str(Path(sys.executable).parent)) or shutil.which("fastkv")
    assert found, "the fastkv console script is not installed"
    return found


@pytest.fixture
def fastkv_exe() -> str:
    return fastkv_script()


class Served:
    """A running `fastkv serve`: its URL, token and process."""

    def __init__(self, proc: "subprocess.Popen[str]", url: str, path: Path,
                 token: Optional[str], banner: str) -> None:
        self.proc, self.url, self.path, self.token, self.banner = proc, url, path, token, banner

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        """Signal it; its exit code and what it printed after the banner."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err


def start_server(path: Path, *args: str, token: Optional[str] = None,
                 env: Optional[dict[str, str]] = None) -> Served:
    cmd = [fastkv_script(), "--path", str(path), "serve", "--port", "0", *args]
    if token is not None:
        cmd += ["--token", token]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    assert proc.stderr is not None
    ready, _, _ = select.select([proc.stderr], [], [], 60)
    banner = proc.stderr.readline() if ready else ""
    match = re.search(r" at (http://\S+) ", banner)
    if not match:
        proc.kill()
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"fastkv serve did not start: {banner}{err}")
    return Served(proc, match.group(1), path, token, banner)


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Start servers (start_server's arguments); all are stopped at the end."""
    started: list[Served] = []

    def start(path: Path, *args: str, **kwargs: Any) -> Served:
        s = start_server(path, *args, **kwargs)
        started.append(s)
        return s

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.stop()

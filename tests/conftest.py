"""Shared fixtures. There is no tests/__init__.py on purpose: the suite
imports the installed fastkv package, never the source tree."""

from __future__ import annotations

import os
import re
import threading
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
from platforms import NO_CTRL_BREAK, UNDER_WINE
from user_dirs import isolate_user_dirs


def _real_user_places() -> dict[Path, set[str]]:
    """What the suite must never write into: the real default store's
    folder and the source tree's top (a listing of each, now)."""
    import platformdirs

    places = [platformdirs.user_data_path("fastkv", appauthor=False),
              Path(__file__).resolve().parent.parent, Path(os.path.expanduser("~"))]
    return {p: set(os.listdir(p)) if p.is_dir() else set() for p in places}


@pytest.fixture(scope="session", autouse=True)
def _nothing_written_outside_temp_dirs() -> Iterator[None]:
    """The check: after the session, the real per-user data folder, the
    home folder and the source tree hold no new name."""
    before = _real_user_places()
    yield
    after = _real_user_places()
    new = {str(p): sorted(after[p] - names) for p, names in before.items() if after[p] - names}
    new = {p: [n for n in names if n not in (".pytest_cache", ".hypothesis", "__pycache__")]
           for p, names in new.items()}
    assert not any(new.values()), f"the suite wrote outside its temporary folders: {new}"


@pytest.fixture(autouse=True)
def _outside_the_source_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test from its temp dir, so that child interpreters (which put
    their working directory on sys.path) import the installed fastkv too;
    with the per-user folders there as well, so that nothing a test does
    (the default store, ~ in a path) lands in the real ones."""
    monkeypatch.chdir(tmp_path)
    isolate_user_dirs(monkeypatch, tmp_path / "user")


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
        resp = re.search(r" (redis://\S+) ", banner)
        self.resp_url: Optional[str] = resp.group(1) if resp else None  # with --resp-port

    def stop(self, sig: Optional[int] = None) -> tuple[int, str]:
        """Signal it (by default, ask it to stop: SIGTERM, or Ctrl+Break on
        Windows); its exit code and what it printed after the banner. Under
        Wine, which cannot send Ctrl+Break, it is killed (TerminateProcess),
        and a test that names a signal skips."""
        if UNDER_WINE:
            if sig is not None:
                pytest.skip(NO_CTRL_BREAK)
            self.proc.kill()
        if sig is None:
            sig = getattr(signal, "CTRL_BREAK_EVENT", signal.SIGTERM)
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err


def start_server(path: Path, *args: str, token: Optional[str] = None,
                 env: Optional[dict[str, str]] = None) -> Served:
    cmd = [fastkv_script(), "--path", str(path), "serve", "--port", "0", *args]
    if token is not None:
        cmd += ["--token", token]
    # on Windows, a process group of its own: Ctrl+Break reaches it alone
    flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, creationflags=flags)
    assert proc.stderr is not None
    stderr = proc.stderr
    first: list[str] = []  # a thread, not select(): Windows cannot select() a pipe
    reader = threading.Thread(target=lambda: first.append(stderr.readline()), daemon=True)
    reader.start()
    reader.join(60)
    banner = first[0] if first else ""
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


# ---- real redis-server processes (Debian's redis-server) ---------------------------

REDIS_REQUIRED = os.environ.get("FASTKV_REQUIRE_REDIS") == "1"


def _redis_or_skip() -> str:
    """redis-server's path; without it the test skips, or fails under CI
    (FASTKV_REQUIRE_REDIS=1, set by .ci/run, which installs it)."""
    found = shutil.which("redis-server")
    if found and shutil.which("redis-cli"):
        pytest.importorskip("redis", reason="redis-py is not installed (the redis extra)")
        return found
    why = "redis-server/redis-cli not installed (apt-get install redis-server redis-tools)"
    if UNDER_WINE:
        # Wine starts a Linux program but hands Python an invalid process
        # handle: the tests could not stop or restart it
        pytest.skip("redis-server is a Linux program, which Windows Python under Wine cannot "
                    "run as a child (the Linux run tests every Redis store)")
    if REDIS_REQUIRED:
        pytest.fail(why + ", and FASTKV_REQUIRE_REDIS=1")
    pytest.skip(why)


def free_port(bus: bool = False) -> int:
    """A free loopback port; with bus, port + 10000 is free too (a cluster
    node's bus port), so both are below 65536."""
    import random
    import socket

    while True:
        port = random.randint(20000, 50000) if bus else 0
        try:
            with socket.socket() as s, socket.socket() as b:
                s.bind(("127.0.0.1", port))
                if bus:
                    b.bind(("127.0.0.1", port + 10000))
                found: int = s.getsockname()[1]
                return found
        except OSError:
            continue


class RedisServer:
    """One redis-server on a free loopback port, in its own directory,
    persistence off unless asked for."""

    def __init__(self, directory: Path, *config: str) -> None:
        self.dir, self.config = directory, list(config)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port(bus="--cluster-enabled" in config)
        self.proc: Optional["subprocess.Popen[bytes]"] = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
               "--bind", "127.0.0.1", "--dir", str(self.dir), "--save", "",
               "--appendonly", "no", "--daemonize", "no", "--logfile", "server.log",
               *self.config]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_ready()

    def cli(self, *args: str, check: bool = True) -> str:
        res = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                             text=True, timeout=30, check=check)
        return res.stdout.strip()

    def wait_ready(self, timeout: float = 30.0) -> None:
        import socket
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    reply = s.recv(64)
                    if reply.startswith((b"+PONG", b"-NOAUTH")):
                        return
            except OSError:
                pass
            assert self.proc is not None and self.proc.poll() is None, "redis-server exited"
            time.sleep(0.02)
        raise AssertionError(f"redis-server on port {self.port} did not start")

    def kill(self, sig: Optional[int] = None) -> None:
        """SIGKILL (TerminateProcess on Windows), or the signal given."""
        if self.proc is not None and self.proc.poll() is None:
            if sig is None:
                self.proc.kill()
            else:
                self.proc.send_signal(sig)
            self.proc.wait(timeout=30)


class RedisCluster:
    """Three primaries, no replicas, slots spread by redis-cli --cluster create."""

    def __init__(self, directory: Path) -> None:
        self.nodes = [RedisServer(directory / f"node{i}", "--cluster-enabled", "yes",
                                  "--cluster-config-file", "nodes.conf",
                                  "--cluster-node-timeout", "2000") for i in range(3)]
        addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(["redis-cli", "--cluster", "create", *addrs, "--cluster-replicas", "0",
                        "--cluster-yes"], capture_output=True, text=True, timeout=60, check=True)
        import time

        deadline = time.monotonic() + 60
        while not all("cluster_state:ok" in n.cli("cluster", "info") for n in self.nodes):
            assert time.monotonic() < deadline, "the cluster did not come up"
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def kill(self) -> None:
        for n in self.nodes:
            n.kill()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One standalone server for the session; tests keep apart by namespace."""
    _redis_or_skip()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.kill()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    _redis_or_skip()
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.kill()


@pytest.fixture
def new_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start servers of a test's own (extra redis-server options); killed at the end."""
    _redis_or_skip()
    started: list[RedisServer] = []

    def start(*config: str) -> RedisServer:
        s = RedisServer(tmp_path / f"redis{len(started)}", *config)
        started.append(s)
        return s

    yield start
    for s in started:
        s.kill()


@pytest.fixture
def new_redis_cluster(tmp_path: Path) -> Iterator[Callable[[], RedisCluster]]:
    """A cluster of a test's own (to break it); killed at the end."""
    _redis_or_skip()
    started: list[RedisCluster] = []

    def start() -> RedisCluster:
        c = RedisCluster(tmp_path / f"cluster{len(started)}")
        started.append(c)
        return c

    yield start
    for c in started:
        c.kill()


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> str:
    """A namespace of this test's own, so tests sharing a server never meet."""
    import uuid

    return f"t{uuid.uuid4().hex[:12]}"

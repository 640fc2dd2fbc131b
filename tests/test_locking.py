"""One opener at a time: another DataStore or another process is refused."""

from __future__ import annotations

from typing import TYPE_CHECKING

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import fastkv
from fastkv import DataStore

if TYPE_CHECKING:
    from conftest import RunPython

HOLDER = """
import sys, time, fastkv
db = fastkv.DataStore(sys.argv[1])
db.create("holder", {"pid": 1})
print("ready", flush=True)
hold = float(sys.argv[2])
if hold < 0:
    sys.stdin.readline()
else:
    time.sleep(hold)
db.close()
print("released", flush=True)
"""

TRY_OPEN = """
import sys, fastkv
try:
    fastkv.DataStore(sys.argv[1]).close()
except fastkv.StoreLockedError as e:
    print("locked:", e)
    sys.exit(3)
print("opened")
"""


def start_holder(path: Path, hold: float = -1) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(hold)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_second_datastore_in_the_same_process_refused(store_path: Path) -> None:
    first = DataStore(store_path)
    try:
        with pytest.raises(fastkv.StoreLockedError, match="locked by another opener"):
            DataStore(store_path)
        first.create("k", {"still": "usable"})
        assert first.read("k") == {"still": "usable"}
    finally:
        first.close()
    with DataStore(store_path) as second:
        assert second.read("k") == {"still": "usable"}


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need a privilege on Windows")
def test_same_file_through_another_path_refused(store_path: Path, tmp_path: Path) -> None:
    link = tmp_path / "alias.fkv"
    with DataStore(store_path):
        link.symlink_to(store_path)
        with pytest.raises(fastkv.StoreLockedError):
            DataStore(link)


def test_another_process_is_refused_while_we_hold(store_path: Path, run_python: RunPython) -> None:
    with DataStore(store_path) as db:
        db.create("k", {})
        res = run_python(TRY_OPEN, str(store_path))
        assert res.returncode == 3, res.stderr
        assert "locked by another opener" in res.stdout
    res = run_python(TRY_OPEN, str(store_path))
    assert res.returncode == 0 and "opened" in res.stdout


def test_we_are_refused_while_another_process_holds(store_path: Path) -> None:
    proc = start_holder(store_path)
    try:
        with pytest.raises(fastkv.StoreLockedError):
            DataStore(store_path)
    finally:
        proc.communicate("go\n", timeout=30)
    with DataStore(store_path) as db:
        assert db.read("holder") == {"pid": 1}


def test_lock_timeout_waits_for_the_holder(store_path: Path) -> None:
    proc = start_holder(store_path, hold=0.5)
    try:
        start = time.monotonic()
        with DataStore(store_path, lock_timeout=30) as db:
            waited = time.monotonic() - start
            assert db.read("holder") == {"pid": 1}
        assert waited > 0.1
    finally:
        proc.wait(timeout=30)


def test_lock_timeout_gives_up(store_path: Path) -> None:
    proc = start_holder(store_path)
    try:
        start = time.monotonic()
        with pytest.raises(fastkv.StoreLockedError):
            DataStore(store_path, lock_timeout=0.3)
        assert time.monotonic() - start >= 0.3
    finally:
        proc.communicate("go\n", timeout=30)


def test_lock_held_before_during_and_after_compaction(store_path: Path) -> None:
    db = DataStore(store_path)
    for i in range(2000):
        db.create(f"k{i}", {"pad": "x" * 100})
    for i in range(0, 2000, 2):
        db.delete(f"k{i}")
    prober = subprocess.Popen(
        [sys.executable, "-c", """
import sys, time, fastkv
opened = 0
tries = 0
end = time.monotonic() + float(sys.argv[2])
print("start", flush=True)
while time.monotonic() < end:
    tries += 1
    try:
        fastkv.DataStore(sys.argv[1]).close()
        opened += 1
    except fastkv.StoreLockedError:
        pass
print(opened, tries)
""", str(store_path), "2.0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert prober.stdout is not None
    assert prober.stdout.readline().strip() == "start"
    compactions = 0
    deadline = time.monotonic() + 2.2
    i = 0
    while time.monotonic() < deadline:
        db.compact()
        db.create(f"extra{i}", {"i": i})
        db.delete(f"extra{i}")
        compactions += 1
        i += 1
    out, _ = prober.communicate(timeout=30)
    opened, tries = map(int, out.split())
    db.close()
    assert compactions > 5 and tries > 5
    assert opened == 0, f"another process opened the store {opened} times"


def test_lock_released_when_the_holder_is_killed(store_path: Path) -> None:
    proc = start_holder(store_path)
    proc.kill()
    proc.wait(timeout=30)
    with DataStore(store_path) as db:
        assert db.read("holder") == {"pid": 1}


def test_closing_in_one_thread_lets_another_open(store_path: Path) -> None:
    db = DataStore(store_path)
    opened = threading.Event()

    def waiter() -> None:
        with DataStore(store_path, lock_timeout=30):
            opened.set()

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.2)
    assert not opened.is_set()
    db.close()
    t.join(timeout=30)
    assert opened.is_set()

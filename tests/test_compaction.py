"""Compaction: explicit, automatic, crash-safe, and never letting another opener in."""

from __future__ import annotations

from typing import TYPE_CHECKING

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fastkv
from fastkv import DataStore

if TYPE_CHECKING:
    from conftest import Clock


def test_compact_on_an_empty_store(db: DataStore) -> None:
    db.compact()
    assert db.stats()["file_bytes"] == 128 and len(db) == 0


def test_compact_twice_changes_nothing(db: DataStore) -> None:
    for i in range(50):
        db.create(f"k{i}", {"i": i})
    db.compact()
    first = db.path.read_bytes()
    db.compact()
    second = db.path.read_bytes()
    assert first[128:] == second[128:]  # only the header differs (time, id, sessions)


def test_compaction_keeps_ttl_deadlines(store_path: Path, clock: Clock) -> None:
    with DataStore(store_path) as db:
        db.create("t", {"v": 1}, ttl=100)
        db.create("p", {"v": 2})
        for i in range(20):
            db.create(f"junk{i}", {})
            db.delete(f"junk{i}")
        db.compact()
        clock.advance(99)
        assert db.read("t") == {"v": 1}
        clock.advance(1)
        with pytest.raises(fastkv.KeyExpiredError):
            db.read("t")
    clock.advance(-1)
    with DataStore(store_path) as db:
        assert db.read("t") == {"v": 1}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_compaction_preserves_file_permissions(store_path: Path) -> None:
    with DataStore(store_path) as db:
        db.create("k", {})
        os.chmod(store_path, 0o600)
        db.compact()
    assert (store_path.stat().st_mode & 0o777) == 0o600


def test_automatic_compaction_once_dead_bytes_pass_half(store_path: Path) -> None:
    # a small cap makes the documented floor (half the cap) small too
    cap = 64 * 1024
    with DataStore(store_path, max_file_size=cap) as db:
        db.create("keep", {"pad": "k" * 100})
        n = 0
        while db.stats()["compactions"] == 0:
            db.create(f"tmp{n}", {"pad": "x" * 300})
            db.delete(f"tmp{n}")
            n += 1
            assert n < 10_000
        st = db.stats()
        assert st["file_bytes"] < cap / 2
        assert db.read("keep") == {"pad": "k" * 100}
        assert len(db) == 1
        # the threshold: more than half the file dead, at least half the cap
        assert n * 2 * 300 > cap / 2


def test_no_automatic_compaction_while_mostly_live(store_path: Path) -> None:
    with DataStore(store_path, max_file_size=64 * 1024) as db:
        for i in range(100):
            db.create(f"k{i}", {"pad": "x" * 300})
        for i in range(40):
            db.delete(f"k{i}")
        assert db.stats()["compactions"] == 0


def test_leftover_temporary_file_is_removed_on_open(store_path: Path) -> None:
    with DataStore(store_path) as db:
        db.create("k", {"v": 1})
    leftovers = [Path(str(store_path) + s) for s in (".compact", ".repair")]
    for leftover in leftovers:
        leftover.write_bytes(b"half-written output of a killed compaction or repair")
    with DataStore(store_path) as db:
        assert db.read("k") == {"v": 1}
    assert not any(p.exists() for p in leftovers)


COMPACTOR = r"""
import sys, fastkv
db = fastkv.DataStore(sys.argv[1])
i = 0
print("ready", flush=True)
while True:
    db.create(f"c{i}", {"pad": "c" * 200})
    if i % 3:
        db.delete(f"c{i}")
    db.compact()
    i += 1
"""


def test_kill_during_compaction_leaves_a_whole_store(tmp_path: Path) -> None:
    path = tmp_path / "s.fkv"
    with DataStore(path) as db:
        for i in range(3000):
            db.create(f"base{i}", {"i": i, "pad": "b" * 100})
    for round_ in range(10):
        proc = subprocess.Popen(
            [sys.executable, "-c", COMPACTOR, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.05 + 0.03 * round_)
        proc.kill()  # SIGKILL; TerminateProcess on Windows
        proc.wait(timeout=30)
        with DataStore(path) as db:  # opens: the old file or the new one, whole
            for i in range(0, 3000, 97):
                assert db.read(f"base{i}") == {"i": i, "pad": "b" * 100}
            assert sum(1 for k in db if k.startswith("base")) == 3000
        assert not Path(str(path) + ".compact").exists()


def test_waiting_opener_never_gets_in_during_compactions(store_path: Path) -> None:
    """An opener waiting on the lock (lock_timeout) may wake on the old file
    after a compaction renamed a new one over it; it must notice and keep
    being refused rather than open a stale file."""
    db = DataStore(store_path)
    for i in range(1000):
        db.create(f"k{i}", {"pad": "x" * 100})
    prober = subprocess.Popen(
        [sys.executable, "-c", """
import sys, time, fastkv
opened = tries = 0
end = time.monotonic() + 2.0
print("start", flush=True)
while time.monotonic() < end:
    tries += 1
    try:
        fastkv.DataStore(sys.argv[1], lock_timeout=0.05).close()
        opened += 1
    except fastkv.StoreLockedError:
        pass
print(opened, tries)
""", str(store_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert prober.stdout is not None and prober.stdout.readline().strip() == "start"
    end = time.monotonic() + 2.3
    n = 0
    while time.monotonic() < end:
        db.create(f"x{n}", {})
        db.delete(f"x{n}")
        db.compact()
        n += 1
    out, _ = prober.communicate(timeout=30)
    db.close()
    opened, tries = map(int, out.split())
    assert n > 5 and tries > 3
    assert opened == 0

"""Room made ahead for appends (src_c/append.h): while a store is open its
file may run past its log, with zeros only; close cuts them, and so does
the next open after a crash, which never takes them for damage or for
torn bytes. Where room is never made (Windows, "fsync" mode) the file is
its log, which every assertion here allows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import os
import signal
import sys
from pathlib import Path

import pytest

import fastkv
from fastkv import DataStore

if TYPE_CHECKING:
    from conftest import RunPython

ROOM = 64 * 1024  # APPEND_ROOM


def fill(db: DataStore, n: int, start: int = 0) -> dict[str, dict[str, object]]:
    model: dict[str, dict[str, object]] = {}
    for i in range(start, start + n):
        model[f"k{i}"] = {"i": i, "pad": "p" * (i % 90)}
        db.put(f"k{i}", model[f"k{i}"])
    return model


@pytest.mark.parametrize("durability", ["process", "fsync"])
def test_the_file_runs_past_its_log_only_with_zeros_and_close_cuts_them(
        store_path: Path, durability: str) -> None:
    db = DataStore(store_path, durability=durability)
    for round_ in range(3):
        fill(db, 700, round_ * 700)
        log = db.stats()["file_bytes"]
        data = store_path.read_bytes()
        assert log <= len(data) <= log + ROOM
        assert data[log:] == bytes(len(data) - log)
        if durability == "fsync":
            assert len(data) == log  # fsync mode appends by pwrite
    db.delete("k5")
    log = db.stats()["file_bytes"]
    db.close()
    assert os.path.getsize(store_path) == log
    with DataStore(store_path) as db:
        assert len(db) == 2099 and db.stats()["open_path"] == "snapshot"


KILLED = r"""
import os, signal, sys, fastkv
db = fastkv.DataStore(sys.argv[1])
for i in range(int(sys.argv[2])):
    db.put(f"k{i}", {"i": i, "pad": "p" * (i % 90)})
db.delete("k3")
print(db.stats()["file_bytes"], os.path.getsize(sys.argv[1]), flush=True)
os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
"""


@pytest.mark.parametrize("n", [5, 500, 3000])
def test_a_kill_leaves_room_that_the_next_open_cuts_and_does_not_count(
        store_path: Path, run_python: RunPython, n: int) -> None:
    proc = run_python(KILLED, str(store_path), str(n))
    assert proc.returncode == (signal.SIGTERM if sys.platform == "win32" else -signal.SIGKILL)
    log, size = map(int, proc.stdout.split())
    assert os.path.getsize(store_path) == size >= log
    with DataStore(store_path) as db:
        st = db.stats()
        assert st["torn_bytes_dropped"] == 0 and st["file_bytes"] == log
        assert os.path.getsize(store_path) == log
        assert len(db) == n - 1 and "k3" not in db
        assert db.read(f"k{n - 1}") == {"i": n - 1, "pad": "p" * ((n - 1) % 90)}
        db.put("after", {"ok": True})
    with DataStore(store_path) as db:
        assert db.read("after") == {"ok": True}


def closed_store(path: Path, n: int = 400) -> tuple[dict[str, dict[str, object]], int]:
    with DataStore(path) as db:
        model = fill(db, n)
        last_start = db.stats()["file_bytes"]
        db.put("last", {"v": "x" * 300})
    return model, last_start


def test_a_long_zero_tail_is_never_written_room_not_damage(store_path: Path) -> None:
    # A power cut can leave more than the room's worth: the file's length
    # reached the disk, the pages written through the mapping did not.
    model, _ = closed_store(store_path)
    log = os.path.getsize(store_path)
    with open(store_path, "ab") as f:
        f.write(bytes(3 * 1024 * 1024))
    report = fastkv.verify(store_path)
    assert report["ok"] and report["torn_tail_bytes"] == 0
    with DataStore(store_path) as db:
        assert db.stats()["torn_bytes_dropped"] == 0
        assert os.path.getsize(store_path) == log
        assert {k: db.read(k) for k in model} == model and db.read("last") == {"v": "x" * 300}


@pytest.mark.parametrize("kept", [1, 7, 16, 40, 200])
def test_a_record_cut_short_before_the_zeros_is_a_torn_tail(store_path: Path, kept: int) -> None:
    model, last_start = closed_store(store_path)
    data = store_path.read_bytes()
    torn = data[last_start:last_start + kept]
    store_path.write_bytes(data[:last_start] + torn + bytes(ROOM))
    report = fastkv.verify(store_path)
    assert report["ok"] and report["torn_tail_bytes"] == len(torn.rstrip(b"\0"))
    with DataStore(store_path) as db:
        assert db.stats()["torn_bytes_dropped"] == len(torn.rstrip(b"\0"))
        assert "last" not in db and {k: db.read(k) for k in model} == model
        assert os.path.getsize(store_path) == last_start


def test_damage_before_a_zero_tail_is_still_damage(store_path: Path) -> None:
    model, last_start = closed_store(store_path)
    data = bytearray(store_path.read_bytes())
    data[last_start - 200] ^= 0x40  # inside an earlier record, intact ones after it
    store_path.write_bytes(bytes(data) + bytes(ROOM))
    with pytest.raises(fastkv.CorruptionError, match="damaged at byte offset"):
        with DataStore(store_path) as db:
            for k in model:
                db.read(k)
    assert not fastkv.verify(store_path)["ok"]

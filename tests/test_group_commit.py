"""fsync mode: concurrent writers share flushes (group commit), no write
returns before a flush covers it, and a failed flush refuses every later
write while keeping what was acknowledged."""

from __future__ import annotations

import errno
import threading
from pathlib import Path
from typing import Callable

import pytest

import fastkv
from fastkv import DataStore, _core

N_THREADS = 8


def create_from_threads(db: DataStore, per_thread: int, tag: str = "t") -> list[list[str]]:
    """Each thread creates its own keys; returns the acknowledged ones."""
    acked: list[list[str]] = [[] for _ in range(N_THREADS)]
    start = threading.Barrier(N_THREADS)

    def worker(t: int) -> None:
        start.wait()
        for n in range(per_thread):
            key = f"{tag}{t}:{n}"
            try:
                db.create(key, {"t": t, "n": n})
            except fastkv.StoreIOError:
                return
            acked[t].append(key)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(N_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    return acked


def test_concurrent_writers_share_flushes(store_path: Path) -> None:
    with DataStore(store_path, durability="fsync") as db:
        before = db.stats()["flushes"]
        acked = create_from_threads(db, per_thread=60)
        writes = sum(map(len, acked))
        flushes = db.stats()["flushes"] - before
        assert writes == N_THREADS * 60
        # one writer alone needs a flush per write; eight share them
        assert 0 < flushes <= writes // 2, (flushes, writes)
    with DataStore(store_path) as db:
        for keys in acked:
            for key in keys:
                assert key in db


def test_one_writer_flushes_once_per_write(store_path: Path) -> None:
    with DataStore(store_path, durability="fsync") as db:
        before = db.stats()["flushes"]
        for i in range(20):
            db.create(f"k{i}", {"i": i})
        db.delete("k0")
        assert db.stats()["flushes"] - before == 21


def test_process_mode_writes_do_not_flush_but_sync_does(store_path: Path) -> None:
    with DataStore(store_path) as db:
        for i in range(20):
            db.create(f"k{i}", {"i": i})
        assert db.stats()["flushes"] == 0
        db.sync()
        assert db.stats()["flushes"] == 1
        db.sync()  # nothing written since: nothing to flush
        assert db.stats()["flushes"] == 1


@pytest.mark.parametrize("durability", ["fsync", "process"])
def test_failed_flush_refuses_every_later_write(store_path: Path, durability: str) -> None:
    with DataStore(store_path, durability=durability) as db:
        for i in range(50):
            db.create(f"k{i}", {"i": i})
        db.sync()
        _core._debug_fail_next_flush(db, errno.EIO)
        with pytest.raises(fastkv.StoreIOError) as failed:
            db.create("during", {"v": 1})  # fsync mode: refused here
            db.sync()  # process mode: the create needs no flush, the sync does
        assert failed.value.errno == errno.EIO
        assert "reopened" in str(failed.value)
        assert db.stats()["flush_failed"] is True
        refused: list[Callable[[], None]] = [
            lambda: db.create("after", {}), lambda: db.delete("k1"), db.compact, db.sync]
        for call in refused:
            with pytest.raises(fastkv.StoreIOError):
                call()
        # reads still work, and the store is unchanged by the refused calls
        assert db.read("k1") == {"i": 1} and "after" not in db
    with DataStore(store_path, durability=durability) as db:
        for i in range(50):
            assert db.read(f"k{i}") == {"i": i}
        db.create("after", {"v": 2})  # a reopened store writes again
        assert db.stats()["flush_failed"] is False


def test_failed_flush_under_8_writers_keeps_every_acknowledged_write(store_path: Path) -> None:
    with DataStore(store_path, durability="fsync") as db:
        first = create_from_threads(db, per_thread=30, tag="a")
        _core._debug_fail_next_flush(db, errno.ENOSPC)
        second = create_from_threads(db, per_thread=30, tag="b")
        assert sum(map(len, second)) == 0  # every writer was refused
        with pytest.raises(fastkv.StoreIOError) as refused:
            db.create("late", {})
        assert refused.value.errno == errno.ENOSPC
    with DataStore(store_path) as db:
        for keys in first:
            for key in keys:
                assert key in db
        assert sum(map(len, first)) == N_THREADS * 30


def test_close_flushes_for_writers_still_waiting(store_path: Path) -> None:
    """close() while fsync-mode writers wait on a flush: each either returns
    (its record flushed) or is refused as closed; acknowledged ones are kept."""
    db = DataStore(store_path, durability="fsync")
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(t: int) -> None:
        n = 0
        while not stop.is_set():
            key = f"c{t}:{n}"
            try:
                db.create(key, {})
            except fastkv.StoreClosedError:
                return
            with lock:
                acked.append(key)
            n += 1

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(N_THREADS)]
    for th in threads:
        th.start()
    while len(acked) < 100:
        threading.Event().wait(0.01)
    db.close()
    stop.set()
    for th in threads:
        th.join(timeout=60)
    with DataStore(store_path) as again:
        for key in acked:
            assert key in again

"""Many threads on one store: nothing lost, the GIL released, close() racing."""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import fastkv
from fastkv import DataStore, _core

N_THREADS = 8


def test_mixed_operations_from_8_threads_lose_nothing(store_path: Path) -> None:
    db = DataStore(store_path)
    shared = {f"shared{i}": {"i": i} for i in range(50)}
    for k, v in shared.items():
        db.create(k, v)
    models: list[dict[str, dict[str, Any]]] = [{} for _ in range(N_THREADS)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(N_THREADS)

    def worker(t: int) -> None:
        rng = random.Random(t)
        model = models[t]
        barrier.wait()
        try:
            for n in range(1500):
                key = f"t{t}:{rng.randrange(120)}"
                op = rng.random()
                if op < 0.4:
                    if key in model:
                        with pytest.raises(fastkv.KeyExistsError):
                            db.create(key, {"x": 0})
                    else:
                        model[key] = {"t": t, "n": n, "pad": "z" * rng.randrange(200)}
                        db.create(key, model[key])
                elif op < 0.7:
                    if key in model:
                        db.delete(key)
                        del model[key]
                    else:
                        with pytest.raises(fastkv.KeyNotFoundError):
                            db.delete(key)
                elif op < 0.9:
                    if key in model:
                        assert db.read(key) == model[key]
                    else:
                        with pytest.raises(fastkv.KeyNotFoundError):
                            db.read(key)
                else:
                    s = f"shared{rng.randrange(50)}"
                    assert db.read(s) == shared[s]
                    assert (key in db) == (key in model)
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(N_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[0]
    expected = dict(shared)
    for m in models:
        expected.update(m)
    assert len(db) == len(expected)
    assert {k: db.read(k) for k in db} == expected
    db.close()
    with DataStore(store_path) as again:
        assert {k: again.read(k) for k in again} == expected


def test_threads_creating_the_same_keys_only_one_wins(db: DataStore) -> None:
    wins = [0] * N_THREADS
    barrier = threading.Barrier(N_THREADS)

    def worker(t: int) -> None:
        barrier.wait()
        for i in range(300):
            try:
                db.create(f"k{i}", {"by": t})
                wins[t] += 1
            except fastkv.KeyExistsError:
                pass

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(N_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(wins) == 300 and len(db) == 300


def test_gil_is_released_while_a_call_waits_in_c(db: DataStore) -> None:
    """A thread parked in the C core must not hold the GIL: while one thread
    holds the store's mutex (in C, no GIL) and another waits for it inside
    read(), this thread keeps running Python code."""
    db.create("k", {"v": 1})
    holder = threading.Thread(target=_core._debug_hold, args=(db, 0.6))
    holder.start()
    time.sleep(0.1)  # the holder now has the mutex
    got = []
    reader = threading.Thread(target=lambda: got.append(db.read("k")))
    reader.start()
    time.sleep(0.05)  # the reader is now blocked inside fkv_read
    assert reader.is_alive()
    spins = 0
    end = time.monotonic() + 0.2
    while time.monotonic() < end:
        spins += 1
    assert reader.is_alive() and not got  # still waiting in C ...
    assert spins > 1000  # ... while this thread ran freely
    holder.join()
    reader.join()
    assert got == [{"v": 1}]


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="needs posix_fadvise")
def test_gil_released_while_a_read_waits_for_the_disk(store_path: Path) -> None:
    """With a long switch interval the interpreter changes threads only when
    the running one lets go of the GIL. The store's pages are dropped from
    the page cache, so reads wait for the disk: a counting thread must get
    to run during those waits. (Reads served from memory keep the GIL: a
    hand-off would cost more than the read.)"""
    with DataStore(store_path) as db:
        n = 2000
        for i in range(n):
            db.create(f"k{i}", {"pad": "x" * 8000})
        db.sync()
        fd = os.open(store_path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        order = list(range(n))
        random.Random(5).shuffle(order)
        old = sys.getswitchinterval()
        sys.setswitchinterval(5.0)
        try:
            counter = [0]
            stop = threading.Event()

            def count() -> None:
                while not stop.is_set():
                    counter[0] += 1
                    time.sleep(0)  # hand the GIL back to the reader promptly

            def read_all() -> None:
                for i in order:
                    db.read(f"k{i}")
                stop.set()

            reader = threading.Thread(target=read_all)
            counter_t = threading.Thread(target=count)
            counter_t.start()
            reader.start()
            reader.join(timeout=120)
            stop.set()
            counter_t.join(timeout=60)
        finally:
            sys.setswitchinterval(old)
        assert counter[0] > 20, counter[0]


def test_close_racing_threads_in_flight(store_path: Path) -> None:
    db = DataStore(store_path)
    for i in range(100):
        db.create(f"k{i}", {"i": i})
    acknowledged: list[list[str]] = [[] for _ in range(N_THREADS)]
    unexpected: list[BaseException] = []
    started = threading.Barrier(N_THREADS + 1)

    def worker(t: int) -> None:
        started.wait()
        n = 0
        while True:
            key = f"w{t}:{n}"
            try:
                db.create(key, {"t": t})
                acknowledged[t].append(key)
                db.read(f"k{n % 100}")
                len(db)
            except fastkv.StoreClosedError:
                return
            except BaseException as e:
                unexpected.append(e)
                return
            n += 1

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(N_THREADS)]
    for th in threads:
        th.start()
    started.wait()
    time.sleep(0.3)
    db.close()
    for th in threads:
        th.join(timeout=60)
    assert not unexpected, unexpected[0]
    with DataStore(store_path) as again:
        for keys in acknowledged:
            for key in keys:
                assert key in again
        assert len(again) == 100 + sum(map(len, acknowledged))


def start_slow_read(db: DataStore, key: str, seconds: float, got: list[Any]) -> threading.Thread:
    """A thread whose read of key sleeps in the core, outside the store's
    mutex, as a read from a slow disk would; returns once it sleeps there."""
    _core._debug_pause_next_read(db, seconds)
    slow = threading.Thread(target=lambda: got.append(db.read(key)))
    slow.start()
    deadline = time.monotonic() + 60
    while _core._debug_reads_paused(db) == 0:
        assert time.monotonic() < deadline and slow.is_alive(), "the slow read never started"
        time.sleep(0.001)
    return slow


def test_a_read_waiting_for_the_disk_holds_up_no_other_call(db: DataStore) -> None:
    """A read that waits for the disk (the core's test hook sleeps where the
    pread would wait, outside the store's mutex) must not hold up reads,
    writes, membership tests or iteration in other threads: they all finish
    while it is still waiting."""
    for i in range(500):
        db.create(f"k{i}", {"i": i})
    got: list[Any] = []
    slow = start_slow_read(db, "k7", 5.0, got)
    for i in range(500):
        assert db.read(f"k{i}") == {"i": i}
    for i in range(50):
        db.create(f"new{i}", {"i": i})
        db.delete(f"new{i}")
    assert "k1" in db and len(db) == 500
    assert len(list(db)) == 500
    # all of that happened while the slow read was still waiting
    assert _core._debug_reads_paused(db) == 1
    slow.join(timeout=60)
    assert got == [{"i": 7}]


def test_reads_in_flight_keep_their_file_across_a_compaction(store_path: Path) -> None:
    """A read pinned to the file before a compaction replaced it still reads
    the record from the old file: the descriptor lives until it is done."""
    with DataStore(store_path) as db:
        for i in range(2000):
            db.create(f"k{i}", {"i": i, "pad": "x" * 200})
        for i in range(0, 2000, 2):
            db.delete(f"k{i}")
        got: list[Any] = []
        slow = start_slow_read(db, "k1999", 1.0, got)
        before = db.stats()["file_bytes"]
        db.compact()  # replaces the file while the read is between lookup and pread
        assert db.stats()["file_bytes"] < before
        slow.join(timeout=60)
        assert got == [{"i": 1999, "pad": "x" * 200}]
        assert db.read("k1999") == {"i": 1999, "pad": "x" * 200}

"""put, get, ttl, touch and mapping manners on the file store: atomic
replacement, exact deadlines, the file cap, and crash safety."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import fastkv
from fastkv import DataStore, _core


def test_put_over_live_expired_and_missing_keys(db: DataStore, clock: Any) -> None:
    db.put("missing", {"v": 1})
    assert db.read("missing") == {"v": 1}
    db.create("live", {"v": 1}, ttl=10)
    db.put("live", {"v": 2}, ttl=20)
    assert db.read("live") == {"v": 2}
    assert db.ttl("live") == 20.0
    db.create("old", {"v": 1}, ttl=5)
    clock.advance(6)
    with pytest.raises(fastkv.KeyExpiredError):
        db.ttl("old")
    db.put("old", {"v": 2})
    assert db.read("old") == {"v": 2} and db.ttl("old") is None
    assert len(db) == 3 and sorted(db) == ["live", "missing", "old"]


def test_put_leaves_the_old_record_as_dead_bytes(db: DataStore) -> None:
    db.put("k", {"pad": "x" * 1000})
    before = db.stats()
    db.put("k", {"pad": "y" * 1000})
    after = db.stats()
    assert after["live_keys"] == before["live_keys"] == 1
    assert after["dead_bytes"] - before["dead_bytes"] == 16 + 1 + len('{"pad":""}') + 1000
    db.compact()
    assert db.stats()["dead_bytes"] == 0 and db.read("k") == {"pad": "y" * 1000}


def test_ttl_and_touch_follow_the_clock_exactly(db: DataStore, clock: Any) -> None:
    db.create("k", {"v": 1}, ttl=100)
    clock.advance(30.5)
    assert db.ttl("k") == pytest.approx(69.5)
    db.touch("k", 10)  # counted from now, not from the old deadline
    assert db.ttl("k") == 10.0
    clock.advance(9.999)
    assert db.read("k") == {"v": 1}
    clock.advance(0.001)
    with pytest.raises(fastkv.KeyExpiredError):
        db.read("k")
    with pytest.raises(fastkv.KeyExpiredError):
        db.touch("k", 10)  # an expired key cannot be revived by touch
    assert db.get("k", "gone") == "gone"


def test_touch_survives_reopen_with_its_deadline(store_path: Path) -> None:
    with DataStore(store_path) as db:
        db.create("k", {"v": 1})
        db.touch("k", 1000)
        deadline = db.read_with_deadline("k")[1]
    with DataStore(store_path) as db:
        assert db.read_with_deadline("k") == ({"v": 1}, deadline)
        db.touch("k", None)
    with DataStore(store_path) as db:
        assert db.ttl("k") is None


def test_reader_never_sees_a_miss_while_another_thread_puts(db: DataStore) -> None:
    db.put("hot", {"n": 0})
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                seen.append(db.read("hot")["n"])
        except BaseException as e:
            errors.append(e)

    th = threading.Thread(target=reader)
    th.start()
    for n in range(1, 5001):
        db.put("hot", {"n": n, "pad": "p" * (n % 300)})
    stop.set()
    th.join(timeout=60)
    assert not errors, repr(errors[0])
    assert seen and all(0 <= n <= 5000 for n in seen)
    assert seen == sorted(seen)  # never an older value after a newer one
    assert db.read("hot")["n"] == 5000


def test_put_at_the_file_cap_compacts_then_refuses_keeping_the_old_value(
        store_path: Path) -> None:
    with DataStore(store_path, max_file_size=8192) as db:
        small, big = {"pad": "x" * 1900}, {"pad": "x" * 4000}
        db.put("a", small)
        db.put("b", big)
        db.put("a", {"pad": "y" * 1900})
        assert db.stats()["compactions"] == 0
        db.put("a", {"pad": "z" * 1900})  # fits only once the dead bytes go: compacts first
        assert db.stats()["compactions"] == 1 and db.read("a") == {"pad": "z" * 1900}
        with pytest.raises(fastkv.StoreFullError):
            db.put("b", {"pad": "w" * 5000})
        assert db.read("b") == big  # the old value is intact
        with pytest.raises(fastkv.StoreFullError):
            db.touch("b", 60)  # a touch needs room for a copy too
        assert db.read("b") == big and db.ttl("b") is None
        assert os.path.getsize(store_path) <= 8192


def test_bad_input_to_put_and_touch_leaves_the_store_unchanged(db: DataStore) -> None:
    db.put("k", {"v": 1})
    size = os.path.getsize(db.path)
    bad: list[Callable[[], None]] = [
        lambda: db.put("k", [1]),  # type: ignore[arg-type]
        lambda: db.put("k", {"x": float("nan")}), lambda: db.put("k" * 33, {}),
        lambda: db.put("k", {}, ttl=0), lambda: db.put("k", {"p": "x" * 16_400}),
        lambda: db.touch("k", -5), lambda: db.touch("k", False), lambda: db.touch("", 5)]
    for call in bad:
        with pytest.raises(fastkv.FastKVError):
            call()
    assert os.path.getsize(db.path) == size and db.read("k") == {"v": 1}


WRITER = r"""
import random, sys, fastkv
path, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
db = fastkv.DataStore(path)
out = sys.stdout
out.write("ready\n"); out.flush()
while True:
    key = f"k{rng.randrange(40)}"
    if rng.random() < 0.7:
        n = rng.randrange(10**9)
        ttl = rng.choice([None, 3600, 7200])
        out.write(f"P {key} {n} {ttl}\n"); out.flush()
        db.put(key, {"n": n, "pad": "p" * rng.randrange(400)}, ttl=ttl)
    else:
        ttl = rng.choice([None, 600])
        out.write(f"T {key} {ttl}\n"); out.flush()
        try:
            db.touch(key, ttl)
        except fastkv.KeyNotFoundError:
            out.write("missing\n"); out.flush()
            continue
    out.write("ok\n"); out.flush()
"""


def test_sigkill_during_put_and_touch_leaves_old_or_new_never_neither(tmp_path: Path) -> None:
    """A model of each key: its value and whether it has a deadline. After
    each kill, every key holds its acknowledged value or, for the operation
    in flight, the new one."""
    path = tmp_path / "crash.fkv"
    model: dict[str, tuple[int, bool]] = {}  # key -> (n, has deadline)
    rounds = int(os.environ.get("FASTKV_CRASH_ROUNDS", "50")) // 2
    rng = random.Random(99)
    for r in range(rounds):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(r)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.02, 0.2))
        proc.kill()  # SIGKILL; TerminateProcess on Windows
        out = proc.stdout.read()
        proc.wait(timeout=60)
        pending: Any = None
        for line in out.split("\n"):
            if line == "ok" and pending is not None:
                op = pending
                if op[0] == "P":
                    model[op[1]] = (int(op[2]), op[3] != "None")
                else:
                    model[op[1]] = (model[op[1]][0], op[2] != "None")
                pending = None
            elif line == "missing":
                pending = None
            elif line[:2] in ("P ", "T "):
                pending = line.split(" ")
        with DataStore(path) as db:
            for key in set(model) | ({pending[1]} if pending else set()):
                allowed: set[Any] = {model.get(key)}  # None: never stored
                if pending and pending[1] == key:
                    if pending[0] == "P":
                        allowed.add((int(pending[2]), pending[3] != "None"))
                    elif key in model:
                        allowed.add((model[key][0], pending[2] != "None"))
                got = db.get(key)
                state = None if got is None else (got["n"], db.ttl(key) is not None)
                assert state in allowed, (r, key, state, allowed)
                if state is not None:
                    model[key] = state  # what landed is the truth from here on


def test_check_key_hash_collisions_work_with_put(
        db: DataStore, hash_collision: tuple[str, str]) -> None:
    a, b = hash_collision
    db.put(a, {"k": "a1"})
    db.put(b, {"k": "b1"})
    db.put(a, {"k": "a2"})
    db.touch(b, 100)
    assert db.read(a) == {"k": "a2"} and db.read(b) == {"k": "b1"}
    assert db.ttl(a) is None and db.ttl(b) == pytest.approx(100, abs=1)
    assert _core._key_hash(a) == _core._key_hash(b)

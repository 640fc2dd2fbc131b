"""Iteration (iter, keys, items) while other threads write and compact: every
key live throughout comes exactly once, none twice, memory stays one batch."""

from __future__ import annotations

import threading
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest

import fastkv
from fastkv import DataStore

N_WRITERS = 8
N_ITERATORS = 2


def stable_value(key: str) -> dict[str, Any]:
    return {"stable": key}


def writer_value(key: str) -> dict[str, Any]:
    return {"w": key, "pad": "x" * (len(key) * 3)}


def check_pass(seen: list[str], stable: set[str]) -> None:
    """One pass over the keys: no duplicate, every stable key, nothing foreign."""
    assert len(seen) == len(set(seen)), "a key was yielded twice"
    missing = stable - set(seen)
    assert not missing, f"{len(missing)} keys live throughout were not yielded: {sorted(missing)[:5]}"
    foreign = {k for k in seen if k not in stable and not k.startswith("w")}
    assert not foreign, sorted(foreign)[:5]


def run_storm(db: DataStore, stable: set[str], passes: Callable[[], Iterable[Any]],
              check: Callable[[Any], None], ops_per_writer: int, compacting: bool) -> int:
    """8 writers create and delete their own keys (growing the index several
    times) while 2 threads iterate; optionally a thread compacts in a loop.
    Returns the number of passes the iterating threads completed."""
    errors: list[BaseException] = []
    done = threading.Event()
    completed = [0]
    lock = threading.Lock()

    def writer(t: int) -> None:
        mine: list[str] = []
        try:
            for n in range(ops_per_writer):
                if mine and n % 3 == 2:
                    db.delete(mine.pop(n % len(mine)))
                else:
                    key = f"w{t}:{n}"
                    db.create(key, writer_value(key))
                    mine.append(key)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def iterator() -> None:
        try:
            while True:
                stop = done.is_set()
                check(list(passes()))
                with lock:
                    completed[0] += 1
                if stop:
                    return
        except BaseException as e:
            errors.append(e)

    def compactor() -> None:
        try:
            while not done.is_set():
                db.compact()
        except BaseException as e:
            errors.append(e)

    writers = [threading.Thread(target=writer, args=(t,)) for t in range(N_WRITERS)]
    others = [threading.Thread(target=iterator) for _ in range(N_ITERATORS)]
    if compacting:
        others.append(threading.Thread(target=compactor))
    for th in writers + others:
        th.start()
    for th in writers:
        th.join(timeout=300)
    done.set()
    for th in others:
        th.join(timeout=300)
    assert not errors, repr(errors[0])
    # the model: the writers' last keys and the stable ones are all there
    assert stable <= set(db)
    return completed[0]


def fill_stable(db: DataStore, n: int) -> set[str]:
    keys = {f"s:{i}" for i in range(n)}
    for key in keys:
        db.create(key, stable_value(key))
    return keys


@pytest.mark.parametrize("compacting", [False, True], ids=["writers", "writers+compaction"])
def test_iter_under_8_writers_yields_live_keys_exactly_once(store_path: Path,
                                                            compacting: bool) -> None:
    with DataStore(store_path) as db:
        stable = fill_stable(db, 1500)
        slots_before = db.stats()["index_slots"]

        def check(seen: list[str]) -> None:
            check_pass(seen, stable)
            for key in seen:  # the scenario of the issue: read what iteration gave
                if key in stable:
                    assert db.read(key) == stable_value(key)

        passes = run_storm(db, stable, lambda: iter(db), check, ops_per_writer=1500,
                           compacting=compacting)
        assert passes >= N_ITERATORS
        assert db.stats()["index_slots"] > slots_before  # the index grew meanwhile
        if compacting:
            assert db.stats()["compactions"] > 0


def test_items_under_writers_and_compaction_give_model_values(store_path: Path) -> None:
    with DataStore(store_path) as db:
        stable = fill_stable(db, 1500)

        def check(pairs: list[tuple[str, Any]]) -> None:
            check_pass([k for k, _ in pairs], stable)
            for key, value in pairs:
                assert value == (stable_value(key) if key in stable else writer_value(key))

        run_storm(db, stable, lambda: db.items(), check, ops_per_writer=1000, compacting=True)


def test_prefix_under_writers_yields_only_matching_keys(store_path: Path) -> None:
    with DataStore(store_path) as db:
        stable = fill_stable(db, 1000)
        wanted = {k for k in stable if k.startswith("s:1")}

        def check(seen: list[str]) -> None:
            assert len(seen) == len(set(seen))
            assert set(seen) == wanted  # writers' keys start with "w"

        run_storm(db, stable, lambda: db.keys("s:1"), check, ops_per_writer=800,
                  compacting=True)


def test_iteration_resumes_across_index_growth_and_compaction(db: DataStore) -> None:
    """Between two batches the index is rebuilt several times over and the
    file compacted: the rest of the iteration still gives each original key
    once."""
    original = fill_stable(db, 3000)
    it = iter(db)
    first = [next(it) for _ in range(700)]
    for i in range(60_000):  # grows the index from 8,192 slots to 131,072
        db.create(f"g{i}", {"i": i})
    for i in range(0, 60_000, 2):
        db.delete(f"g{i}")
    db.compact()
    rest = list(it)
    seen = first + rest
    assert len(seen) == len(set(seen))
    assert original <= set(seen)


def test_keys_deleted_during_iteration_are_never_yielded_twice(db: DataStore) -> None:
    keys = fill_stable(db, 2000)
    seen = []
    for n, key in enumerate(db):
        seen.append(key)
        if n % 2 == 0:
            # delete some keys ahead of and behind the cursor, then recreate
            victim = f"s:{(n * 7) % 2000}"
            if victim in db:
                db.delete(victim)
                db.create(victim, stable_value(victim))
    assert len(seen) == len(set(seen))
    assert set(seen) <= keys


def test_keys_with_the_same_hash_come_out_once_each(
    db: DataStore, hash_collision: tuple[str, str]
) -> None:
    a, b = hash_collision
    for key in (a, b, "other"):
        db.create(key, {"k": key})
    assert sorted(db) == sorted([a, b, "other"])
    assert sorted(db.keys(a[:3])) == sorted(k for k in (a, b, "other") if k.startswith(a[:3]))


def test_keys_and_items_with_prefix(db: DataStore) -> None:
    for i in range(300):
        db.create(f"user:{i}", {"i": i})
        db.create(f"order:{i}", {"o": i})
    db.create("ünï:1", {"u": 1})
    assert sorted(db.keys("user:")) == sorted(f"user:{i}" for i in range(300))
    assert dict(db.items("order:1")) == {
        k: {"o": int(k[6:])} for k in (f"order:{i}" for i in range(300)) if k.startswith("order:1")
    }
    assert list(db.keys("ünï")) == ["ünï:1"]
    assert list(db.keys("nothing")) == []
    assert len(list(db.keys(""))) == 601 == len(list(db.keys()))
    with pytest.raises(fastkv.InvalidKeyError):
        db.keys(b"user:")  # type: ignore[arg-type]


def test_items_skips_keys_deleted_after_their_batch(db: DataStore) -> None:
    for i in range(100):
        db.create(f"k{i}", {"i": i})
    it = db.items()
    first_key, _ = next(it)
    for i in range(100):
        key = f"k{i}"
        if key != first_key:
            db.delete(key)
    assert list(it) == []  # the rest of the batch is gone: skipped, not raised


def test_expired_keys_are_not_yielded(db: DataStore, clock: Any) -> None:
    db.create("short", {"v": 1}, ttl=5)
    db.create("long", {"v": 2}, ttl=500)
    db.create("forever", {"v": 3})
    clock.advance(10)
    assert sorted(db) == ["forever", "long"]
    assert dict(db.items()) == {"forever": {"v": 3}, "long": {"v": 2}}


def test_iteration_holds_one_batch_not_the_key_set(db: DataStore) -> None:
    for i in range(100_000):
        db.create(f"key:{i:06d}", {"i": i})
    tracemalloc.start()
    try:
        it = iter(db)
        next(it)
        held, _ = tracemalloc.get_traced_memory()
        count = 1 + sum(1 for _ in it)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 100_000
    # one batch of a few hundred short strings, not 100,000 of them (~6 MB)
    assert held < 200_000, held
    assert peak < 400_000, peak


def test_iterating_a_closed_store_refuses(store_path: Path) -> None:
    db = DataStore(store_path)
    for i in range(2000):
        db.create(f"k{i}", {})
    it = iter(db)
    next(it)
    db.close()
    with pytest.raises(fastkv.StoreClosedError):
        list(it)


def test_store_changed_error_is_kept_for_old_code() -> None:
    assert issubclass(fastkv.StoreChangedError, fastkv.FastKVError)


def test_tables_of_every_size_yield_each_key_once(db: DataStore) -> None:
    """Small tables are scanned in one batch that spans the whole table
    (regression: the scan went round past its start and yielded keys twice)."""
    expected: set[str] = set()
    for i in range(3000):
        key = f"k{i}"
        db.create(key, {})
        expected.add(key)
        if i < 200 or i % 97 == 0:
            seen = list(db)
            assert len(seen) == len(expected) and set(seen) == expected, i
        if i % 5 == 0:
            db.delete(key)
            expected.discard(key)


def test_keys_of_every_utf8_length_are_read_back_whole(db: DataStore) -> None:
    """Keys up to the 128-byte limit (32 four-byte characters) come back
    whole from iteration (regression: a 64-byte first read cut them)."""
    keys = {c * n for c in ("a", "é", "€", "😀") for n in (1, 12, 13, 31, 32)}
    for key in keys:
        db.create(key, {"k": key, "pad": "x" * 300})
    assert sorted(db) == sorted(keys)
    assert dict(db.items()) == {k: {"k": k, "pad": "x" * 300} for k in keys}
    assert sorted(db.keys("😀")) == sorted(k for k in keys if k.startswith("😀"))

"""The max_file_size cap: never passed, reclaimed by compaction, delete always works."""

from __future__ import annotations

from typing import TYPE_CHECKING

import os
from pathlib import Path

import pytest

import fastkv
from fastkv import DataStore

if TYPE_CHECKING:
    from conftest import Clock

CAP = 8192


def record_bytes(key: str, value_json_len: int) -> int:
    return 16 + len(key.encode()) + value_json_len


def fill(db: DataStore, prefix: str = "k", pad: int = 200) -> list[str]:
    keys: list[str] = []
    i = 0
    while True:
        key = f"{prefix}{i}"
        try:
            db.create(key, {"pad": "x" * pad})
        except fastkv.StoreFullError:
            return keys
        keys.append(key)
        assert os.path.getsize(db.path) <= db.stats()["max_file_size"]
        i += 1


def test_default_cap_is_one_gib(db: DataStore) -> None:
    assert db.stats()["max_file_size"] == 1_073_741_824 == fastkv.MAX_FILE_SIZE


def test_full_store_refuses_create_and_stays_usable(store_path: Path) -> None:
    with DataStore(store_path, max_file_size=CAP) as db:
        keys = fill(db)
        assert len(keys) > 10
        size = os.path.getsize(store_path)
        assert size <= CAP
        with pytest.raises(fastkv.StoreFullError, match="max_file_size 8,192 bytes"):
            db.create("one-more", {"pad": "x" * 200})
        assert os.path.getsize(store_path) == size
        assert db.read(keys[0]) == {"pad": "x" * 200}
        assert len(db) == len(keys)


def test_full_error_is_an_os_error(store_path: Path) -> None:
    with DataStore(store_path, max_file_size=4096) as db:
        with pytest.raises(OSError):
            db.create("k", {"v": "x" * 5000})


def test_delete_works_at_the_cap_and_makes_room(store_path: Path) -> None:
    with DataStore(store_path, max_file_size=CAP) as db:
        keys = fill(db)
        # top the file up until not even a tombstone fits: the smallest
        # records (one-character keys) last, so at most 18 bytes are left
        small = 0
        for key in [f"f{i}" for i in range(100)] + [chr(c) for c in range(ord("a"), ord("z") + 1)]:
            try:
                db.create(key, {})
                small += 1
            except fastkv.StoreFullError:
                pass
        slack = CAP - os.path.getsize(store_path)
        victim = next(k for k in keys if record_bytes(k, 0) > slack)
        keys.remove(victim)
        db.delete(victim)  # no room for a tombstone: the store compacts instead
        assert victim not in db
        assert os.path.getsize(store_path) <= CAP
        db.create("new", {"pad": "x" * 150})  # the deleted record's space is reused
        assert db.read("new") == {"pad": "x" * 150}
        for k in keys:
            assert db.read(k) == {"pad": "x" * 200}
    with DataStore(store_path, max_file_size=CAP) as db:
        assert victim not in db and "new" in db and len(db) == len(keys) + small + 1


def test_create_at_the_cap_compacts_dead_space_on_its_own(store_path: Path) -> None:
    with DataStore(store_path, max_file_size=CAP) as db:
        keys = fill(db)
        for k in keys[: len(keys) // 2]:
            db.delete(k)
        before = db.stats()["compactions"]
        more = fill(db, prefix="m")
        assert len(more) >= len(keys) // 2 - 2
        assert db.stats()["compactions"] > before
        assert os.path.getsize(store_path) <= CAP
        for k in keys[len(keys) // 2 :]:
            assert db.read(k) == {"pad": "x" * 200}


def test_expired_records_are_reclaimed_at_the_cap(store_path: Path, clock: Clock) -> None:
    with DataStore(store_path, max_file_size=CAP) as db:
        n = 0
        while True:
            try:
                db.create(f"t{n}", {"pad": "y" * 200}, ttl=60)
            except fastkv.StoreFullError:
                break
            n += 1
        clock.advance(60)
        for i in range(n):
            db.create(f"u{i}", {"pad": "y" * 200})
        assert len(db) == n
        assert os.path.getsize(store_path) <= CAP


def test_value_that_can_never_fit_is_refused(store_path: Path) -> None:
    with DataStore(store_path, max_file_size=4096) as db:
        with pytest.raises(fastkv.StoreFullError):
            db.create("big", {"v": "x" * 5000})
        assert len(db) == 0 and os.path.getsize(store_path) == 128
        db.create("small", {"v": 1})


def test_reopen_with_a_smaller_cap_than_the_file(store_path: Path) -> None:
    with DataStore(store_path) as db:
        for i in range(100):
            db.create(f"k{i}", {"pad": "x" * 100})
    with DataStore(store_path, max_file_size=4096) as db:
        assert len(db) == 100  # still readable
        with pytest.raises(fastkv.StoreFullError):
            db.create("x", {})
        db.delete("k0")  # and deletable
        assert len(db) == 99

"""Keys: a str of 1 to 32 characters, stored as UTF-8."""

from __future__ import annotations

from pathlib import Path

import pytest

import fastkv
from fastkv import DataStore


@pytest.mark.parametrize("length", [1, 2, 31, 32])
def test_key_lengths_within_the_limit(db: DataStore, length: int) -> None:
    key = "k" * length
    db.create(key, {"n": length})
    assert db.read(key) == {"n": length}
    assert key in db
    db.delete(key)


@pytest.mark.parametrize("length", [33, 100, 10_000])
def test_key_over_32_characters_refused(db: DataStore, length: int) -> None:
    key = "k" * length
    with pytest.raises(fastkv.InvalidKeyError, match=f"{length} characters; limit 32"):
        db.create(key, {})
    for call in (db.read, db.delete):
        with pytest.raises(fastkv.InvalidKeyError):
            call(key)
    assert len(db) == 0


def test_empty_key_refused(db: DataStore) -> None:
    with pytest.raises(fastkv.InvalidKeyError, match="empty"):
        db.create("", {})


@pytest.mark.parametrize("key", [b"bytes", 42, None, 1.5, ("t",), ["l"]])
def test_non_str_key_refused(db: DataStore, key: object) -> None:
    with pytest.raises(fastkv.InvalidKeyError, match="must be a str"):
        db.create(key, {})  # type: ignore[arg-type]
    with pytest.raises(fastkv.InvalidKeyError):
        db.read(key)  # type: ignore[arg-type]


def test_key_limit_counts_characters_not_bytes(db: DataStore) -> None:
    key = "\U0001f600" * 32  # 32 characters, 128 bytes of UTF-8
    db.create(key, {"emoji": True})
    assert db.read(key) == {"emoji": True}
    with pytest.raises(fastkv.InvalidKeyError):
        db.create("\U0001f600" * 33, {})


def test_unicode_keys_round_trip_and_persist(store_path: Path) -> None:
    keys = ["café", "ключ", "键", "a\x00b", " ", "k\ud7ff"]
    with DataStore(store_path) as db:
        for i, k in enumerate(keys):
            db.create(k, {"i": i})
    with DataStore(store_path) as db:
        assert sorted(db) == sorted(keys)
        for i, k in enumerate(keys):
            assert db.read(k) == {"i": i}


def test_unencodable_key_refused(db: DataStore) -> None:
    with pytest.raises(fastkv.InvalidKeyError, match="UTF-8"):
        db.create("bad\ud800", {})
    assert "bad\ud800" not in db


def test_str_subclass_key_accepted(db: DataStore) -> None:
    class Name(str):
        pass

    db.create(Name("sub"), {"a": 1})
    assert db.read("sub") == {"a": 1}


def test_similar_keys_are_distinct(db: DataStore) -> None:
    keys = ["a", "A", "a ", "ab", "ba", "a" * 32, "a" * 31 + "b"]
    for i, k in enumerate(keys):
        db.create(k, {"i": i})
    for i, k in enumerate(keys):
        assert db.read(k) == {"i": i}


def test_keys_with_the_same_hash_are_told_apart_by_the_key_on_disk(
    store_path: Path, hash_collision: tuple[str, str]
) -> None:
    a, b = hash_collision
    from fastkv import _core

    assert a != b and _core._key_hash(a) == _core._key_hash(b)
    with DataStore(store_path) as db:
        db.create(a, {"k": a})
        assert b not in db
        with pytest.raises(fastkv.KeyNotFoundError):
            db.read(b)
        db.create(b, {"k": b})
        assert db.read(a) == {"k": a} and db.read(b) == {"k": b}
        db.delete(a)
        assert db.read(b) == {"k": b} and a not in db
        db.create(a, {"k": "again"})
    with DataStore(store_path) as db:
        assert db.read(a) == {"k": "again"} and db.read(b) == {"k": b}
        db.compact()
        assert sorted(db) == sorted([a, b])

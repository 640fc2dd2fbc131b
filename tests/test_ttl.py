"""Time-to-live: an int of seconds, a wall-clock deadline that survives reopen."""

from __future__ import annotations

from typing import TYPE_CHECKING

import time
from pathlib import Path

import pytest

import fastkv
from fastkv import DataStore

if TYPE_CHECKING:
    from conftest import Clock

TEN_YEARS = 315_360_000


@pytest.mark.parametrize("ttl", [1, 2, 3600, TEN_YEARS - 1, TEN_YEARS])
def test_ttl_within_bounds_accepted(db: DataStore, ttl: int) -> None:
    db.create("k", {"ttl": ttl}, ttl=ttl)
    assert db.read("k") == {"ttl": ttl}


@pytest.mark.parametrize("ttl", [0, -1, TEN_YEARS + 1, 2**64, -(2**70)])
def test_ttl_out_of_range_refused(db: DataStore, ttl: int) -> None:
    with pytest.raises(fastkv.InvalidTTLError, match="1 to 315,360,000 seconds"):
        db.create("k", {}, ttl=ttl)
    assert "k" not in db


@pytest.mark.parametrize("ttl", [True, False, 1.0, 1.5, "10", b"1", [1]])
def test_ttl_of_the_wrong_type_refused(db: DataStore, ttl: object) -> None:
    with pytest.raises(fastkv.InvalidTTLError, match="must be an int"):
        db.create("k", {}, ttl=ttl)  # type: ignore[arg-type]
    assert "k" not in db


def test_ttl_bound_is_exported() -> None:
    assert fastkv.TTL_MAX_SECONDS == TEN_YEARS


def test_key_is_gone_from_the_deadline_on(db: DataStore, clock: Clock) -> None:
    db.create("s", {"uid": 1}, ttl=10)
    db.create("forever", {"a": 1})
    clock.advance(9.999)
    assert db.read("s") == {"uid": 1} and "s" in db and len(db) == 2
    clock.advance(0.001)  # exactly at the deadline
    with pytest.raises(fastkv.KeyExpiredError, match="'s' has expired"):
        db.read("s")
    assert "s" not in db
    assert len(db) == 1
    assert list(db) == ["forever"]
    with pytest.raises(fastkv.KeyExpiredError):
        db.delete("s")


def test_expired_error_is_a_key_not_found_error(db: DataStore, clock: Clock) -> None:
    db.create("s", {}, ttl=1)
    clock.advance(2)
    with pytest.raises(fastkv.KeyNotFoundError):
        db.read("s")
    with pytest.raises(KeyError):
        db.read("s")


def test_create_may_reuse_an_expired_key(db: DataStore, clock: Clock) -> None:
    db.create("s", {"v": 1}, ttl=5)
    with pytest.raises(fastkv.KeyExistsError):
        db.create("s", {"v": 2})
    clock.advance(5)
    db.create("s", {"v": 2})
    assert db.read("s") == {"v": 2} and len(db) == 1
    clock.advance(10**6)
    assert db.read("s") == {"v": 2}  # the new record has no deadline


def test_new_ttl_replaces_the_old_one(db: DataStore, clock: Clock) -> None:
    db.create("s", {"v": 1}, ttl=5)
    clock.advance(6)
    db.create("s", {"v": 2}, ttl=100)
    clock.advance(50)
    assert db.read("s") == {"v": 2}
    clock.advance(50)
    with pytest.raises(fastkv.KeyExpiredError):
        db.read("s")


def test_len_tracks_expiries_over_time(db: DataStore, clock: Clock) -> None:
    for i in range(100):
        db.create(f"k{i}", {"i": i}, ttl=i + 1)
    for i in range(50):
        db.create(f"p{i}", {"i": i})
    assert len(db) == 150
    for step in range(1, 101):
        clock.advance(1)
        assert len(db) == 150 - step
    assert sorted(db) == sorted(f"p{i}" for i in range(50))


def test_len_stays_right_across_creates_and_deletes_between_expiries(db: DataStore, clock: Clock) -> None:
    db.create("a", {}, ttl=10)
    db.create("b", {}, ttl=20)
    assert len(db) == 2
    db.create("c", {}, ttl=5)
    db.delete("b")
    assert len(db) == 2
    clock.advance(5)
    assert len(db) == 1
    clock.advance(5)
    assert len(db) == 0
    db.create("a", {})
    assert len(db) == 1


def test_deadline_survives_a_reopen(store_path: Path, clock: Clock) -> None:
    with DataStore(store_path) as db:
        db.create("s", {"v": 1}, ttl=100)
        db.create("p", {"v": 2})
    clock.advance(99)
    with DataStore(store_path) as db:
        assert db.read("s") == {"v": 1}
    clock.advance(1)
    with DataStore(store_path) as db:
        with pytest.raises(fastkv.KeyNotFoundError):
            db.read("s")
        assert list(db) == ["p"] and len(db) == 1
        db.create("s", {"v": 3})
    with DataStore(store_path) as db:
        assert db.read("s") == {"v": 3}


def test_compaction_drops_expired_records(db: DataStore, clock: Clock) -> None:
    for i in range(100):
        db.create(f"k{i}", {"pad": "x" * 200}, ttl=10)
    db.create("keep", {"a": 1})
    clock.advance(10)
    db.compact()
    st = db.stats()
    assert st["held_keys"] == 1 and st["live_keys"] == 1
    assert st["file_bytes"] < 200
    with pytest.raises(fastkv.KeyNotFoundError):
        db.read("k1")


def test_real_clock_expiry(db: DataStore) -> None:
    """One test against the real wall clock, no pinning."""
    db.create("s", {"v": 1}, ttl=1)
    assert db.read("s") == {"v": 1}
    time.sleep(1.05)
    with pytest.raises(fastkv.KeyExpiredError):
        db.read("s")

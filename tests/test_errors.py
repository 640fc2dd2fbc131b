"""Each error class against SPEC.md's table: its bases, pickling, messages."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

import fastkv
from fastkv import DataStore

SPEC_TABLE = [
    ("InvalidKeyError", ValueError),
    ("InvalidValueError", ValueError),
    ("ValueTooLargeError", fastkv.InvalidValueError),
    ("InvalidTTLError", ValueError),
    ("KeyExistsError", KeyError),
    ("KeyNotFoundError", KeyError),
    ("KeyExpiredError", fastkv.KeyNotFoundError),
    ("StoreFullError", OSError),
    ("StoreLockedError", OSError),
    ("StoreClosedError", ValueError),
    ("InvalidPathError", OSError),
    ("ConfigError", ValueError),
    ("CorruptionError", OSError),
    ("StoreIOError", OSError),
    ("StoreChangedError", RuntimeError),
]


@pytest.mark.parametrize("name,builtin", SPEC_TABLE)
def test_error_bases(name: str, builtin: type) -> None:
    cls = getattr(fastkv, name)
    assert issubclass(cls, fastkv.FastKVError)
    assert issubclass(cls, builtin)
    assert issubclass(fastkv.FastKVError, Exception)


@pytest.mark.parametrize("name,builtin", SPEC_TABLE)
def test_errors_pickle(name: str, builtin: type) -> None:
    cls = getattr(fastkv, name)
    err = cls("a message")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and str(back) == "a message"


def test_key_errors_print_plain_messages(db: DataStore) -> None:
    with pytest.raises(fastkv.KeyNotFoundError) as info:
        db.read("user:1")
    assert str(info.value).startswith("key 'user:1' not found in ")
    assert str(db.path) in str(info.value)


def test_io_error_carries_errno() -> None:
    err = fastkv.StoreIOError(28, "No space left on device on /x")
    assert err.errno == 28


def test_messages_name_the_key_and_the_limit(db: DataStore) -> None:
    with pytest.raises(fastkv.ValueTooLargeError, match=r"'user:1' is 17,002 bytes of JSON; limit 16,384"):
        db.create("user:1", {"v": "x" * (17_002 - 8)})
    with pytest.raises(fastkv.InvalidKeyError, match=r"is 33 characters; limit 32"):
        db.create("k" * 33, {})
    with pytest.raises(fastkv.InvalidTTLError, match=r"ttl for 'k' is 0"):
        db.create("k", {}, ttl=0)
    db.create("k", {})
    with pytest.raises(fastkv.KeyExistsError, match="'k' already exists"):
        db.create("k", {})


def test_long_keys_are_cut_short_in_messages(db: DataStore) -> None:
    with pytest.raises(fastkv.InvalidKeyError) as info:
        db.create("z" * 100_000, {})
    assert len(str(info.value)) < 200


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_file_size": 4095},
        {"max_file_size": 2**30 + 1},
        {"max_file_size": 0},
        {"max_file_size": -1},
        {"max_file_size": 1.5e6},
        {"max_file_size": True},
        {"durability": "always"},
        {"durability": None},
        {"lock_timeout": -0.1},
        {"lock_timeout": float("nan")},
        {"lock_timeout": "1"},
    ],
)
def test_bad_options_raise_config_error(store_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(fastkv.ConfigError):
        DataStore(store_path, **kwargs)
    assert not store_path.exists()


def test_option_bounds_accepted(store_path: Path) -> None:
    with DataStore(store_path, max_file_size=4096, lock_timeout=0, durability="process"):
        pass
    with DataStore(store_path, max_file_size=2**30, lock_timeout=0.5):
        pass

"""The library surface of SPEC.md: the calls, the dunders, the shortcuts."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

import fastkv
from fastkv import DataStore
from user_dirs import isolate_user_dirs


def test_create_read_delete_round_trip(db: DataStore) -> None:
    db.create("user:42", {"name": "Ann"})
    assert db.read("user:42") == {"name": "Ann"}
    db.delete("user:42")
    with pytest.raises(fastkv.KeyNotFoundError):
        db.read("user:42")


def test_read_returns_a_new_dict_each_call(db: DataStore) -> None:
    db.create("k", {"a": [1, 2]})
    first = db.read("k")
    first["a"].append(3)
    assert db.read("k") == {"a": [1, 2]}
    assert db.read("k") is not db.read("k")


def test_create_refuses_live_key_and_keeps_old_value(db: DataStore) -> None:
    db.create("k", {"v": 1})
    with pytest.raises(fastkv.KeyExistsError):
        db.create("k", {"v": 2})
    assert db.read("k") == {"v": 1}


def test_delete_then_create_again(db: DataStore) -> None:
    db.create("k", {"v": 1})
    db.delete("k")
    db.create("k", {"v": 2})
    assert db.read("k") == {"v": 2}


def test_delete_missing_key(db: DataStore) -> None:
    with pytest.raises(fastkv.KeyNotFoundError, match="'nope'"):
        db.delete("nope")
    db.create("k", {})
    db.delete("k")
    with pytest.raises(fastkv.KeyNotFoundError):
        db.delete("k")


def test_contains_len_and_iteration(db: DataStore) -> None:
    assert len(db) == 0 and list(db) == []
    keys = {f"key:{i}" for i in range(500)}
    for k in keys:
        db.create(k, {"k": k})
    assert len(db) == 500
    assert set(db) == keys
    assert set(db.keys()) == keys
    assert "key:7" in db and "key:9999" not in db
    for k in list(keys)[:100]:
        db.delete(k)
    assert len(db) == 400
    assert set(db) == keys - set(list(keys)[:100])


def test_contains_with_keys_that_cannot_exist(db: DataStore) -> None:
    assert 42 not in db
    assert "" not in db
    assert "x" * 33 not in db


def test_iteration_survives_deletes_during_iteration(db: DataStore) -> None:
    for i in range(300):
        db.create(f"k{i}", {})
    seen = []
    for k in db:
        seen.append(k)
        db.delete(k)
    assert len(seen) == 300 and len(db) == 0


def test_path_property_is_absolute_pathlib(store_path: Path) -> None:
    with DataStore(str(store_path)) as db:
        assert isinstance(db.path, Path)
        assert db.path == store_path.resolve()
        assert db.path.is_absolute()


def test_pathlike_and_tilde_expansion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = isolate_user_dirs(monkeypatch, tmp_path)
    assert Path(os.path.expanduser("~")) == home  # before anything is written
    with DataStore("~/sub/dir/data.fkv") as db:
        db.create("a", {"x": 1})
        assert db.path == (home / "sub" / "dir" / "data.fkv").resolve()
    assert (home / "sub" / "dir" / "data.fkv").is_file()


def test_context_manager_closes(store_path: Path) -> None:
    with DataStore(store_path) as db:
        db.create("k", {"a": 1})
    with pytest.raises(fastkv.StoreClosedError):
        db.read("k")
    with DataStore(store_path) as again:  # the lock was released
        assert again.read("k") == {"a": 1}


def test_close_is_idempotent_and_every_method_refuses_after(store_path: Path) -> None:
    db = DataStore(store_path)
    db.create("k", {})
    db.close()
    db.close()
    for call in (
        lambda: db.create("j", {}),
        lambda: db.read("k"),
        lambda: db.delete("k"),
        lambda: "k" in db,
        lambda: len(db),
        lambda: list(db),
        lambda: db.stats(),
        lambda: db.sync(),
        lambda: db.compact(),
    ):
        with pytest.raises(fastkv.StoreClosedError, match="closed"):
            call()


def test_stats_reports_the_documented_counters(db: DataStore) -> None:
    for i in range(10):
        db.create(f"k{i}", {"i": i})
    db.delete("k0")
    st = db.stats()
    for name in ("live_keys", "file_bytes", "dead_bytes", "index_bytes", "index_bytes_per_key"):
        assert name in st
    assert st["live_keys"] == 9
    # the log; the file may run past it by room made ahead for appends, zeros cut at close
    assert st["file_bytes"] <= os.path.getsize(db.path) <= st["file_bytes"] + 64 * 1024
    assert st["dead_bytes"] > 0  # the deleted record and its tombstone
    assert st["index_bytes"] >= 9 * 8
    assert st["path"] == str(db.path)
    db.close()
    assert st["file_bytes"] == os.path.getsize(db.path)


def test_compact_keeps_live_data_and_shrinks_file(db: DataStore) -> None:
    for i in range(200):
        db.create(f"k{i}", {"i": i, "pad": "x" * 100})
    for i in range(150):
        db.delete(f"k{i}")
    before = os.path.getsize(db.path)
    db.compact()
    after = os.path.getsize(db.path)
    assert after < before / 3
    assert db.stats()["dead_bytes"] == 0
    assert {k: db.read(k) for k in db} == {f"k{i}": {"i": i, "pad": "x" * 100} for i in range(150, 200)}


def test_sync_succeeds(db: DataStore) -> None:
    db.create("k", {})
    db.sync()


def test_fsync_durability_mode(store_path: Path) -> None:
    with DataStore(store_path, durability="fsync") as db:
        db.create("k", {"a": 1})
        db.delete("k")
        db.create("k", {"a": 2})
        assert db.durability == "fsync"
    with DataStore(store_path) as db:
        assert db.read("k") == {"a": 2}


def test_datastore_refuses_pickling(db: DataStore) -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(db)


def test_repr_names_the_path(db: DataStore) -> None:
    assert repr(db) == f"DataStore({str(db.path)!r})"


def test_module_shortcuts_use_fastkv_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "env" / "default.fkv"
    monkeypatch.setenv("FASTKV_PATH", str(target))
    from fastkv import datastore

    datastore._close_default()
    try:
        fastkv.create("greeting", {"text": "hi"}, ttl=60)
        assert fastkv.read("greeting") == {"text": "hi"}
        fastkv.delete("greeting")
        with pytest.raises(fastkv.KeyNotFoundError):
            fastkv.read("greeting")
        assert fastkv.default_path() == target
    finally:
        datastore._close_default()
    assert target.is_file()


def test_default_location_without_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_user_dirs(monkeypatch, tmp_path)
    assert fastkv.default_path().is_relative_to(tmp_path)  # before anything is written
    with DataStore() as db:
        db.create("k", {"a": 1})
        assert db.path.is_relative_to(tmp_path)
        assert db.path.name == "default.fkv"

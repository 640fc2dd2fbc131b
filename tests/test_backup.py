"""db.backup(dest) and `fastkv backup`: a copy as of one moment, taken while
other threads write, that opens from a snapshot of its own."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import fastkv
from fastkv import DataStore
from snapshot_files import contents, snap_of, with_locks

ORDERED = [f"k{i:02d}" for i in range(100)]


def generations(path: Path) -> list[int]:
    """The generation of each ordered key in the store at path, which must
    open from its own snapshot."""
    with DataStore(path) as db:
        assert db.stats()["snapshot"] == "loaded"
        return [db.read(k)["gen"] for k in ORDERED]


def test_a_backup_taken_while_four_threads_write_is_one_moment(tmp_path: Path) -> None:
    db = DataStore(tmp_path / "live.fkv")
    for k in ORDERED:
        db.put(k, {"gen": 0, "pad": "x" * 100})
    stop = threading.Event()
    errors: list[BaseException] = []

    def ordered_writer() -> None:  # k00..k99 in order, generation after generation
        gen = 0
        while not stop.is_set():
            gen += 1
            for k in ORDERED:
                db.put(k, {"gen": gen, "pad": "x" * 100})

    def other_writer(n: int) -> None:  # noise: the log grows, compactions happen
        i = 0
        while not stop.is_set():
            db.put(f"w{n}:{i % 500}", {"i": i, "pad": "y" * 300})
            if i % 7 == 0:
                db.delete(f"w{n}:{(i // 7) % 500}") if f"w{n}:{(i // 7) % 500}" in db else None
            i += 1

    def guarded(fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(ordered_writer,))]
    threads += [threading.Thread(target=guarded, args=(other_writer, n)) for n in range(3)]
    for t in threads:
        t.start()
    seen = set()
    try:
        for b in range(12):
            dest = db.backup(tmp_path / f"backups/b{b}.fkv")
            gens = generations(dest)
            g = gens[-1]
            cut = next((i for i, x in enumerate(gens) if x == g), 0)
            # all keys before the cut at generation g+1, from it on at g
            assert gens == [g + 1] * cut + [g] * (100 - cut), gens
            seen.add((g, cut))
            db.compact() if b % 4 == 3 else None  # a backup after a compaction too
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert len(seen) > 1  # the writer moved between backups
    db.close()


def test_a_backup_of_a_quiet_store_equals_it(tmp_path: Path) -> None:
    with DataStore(tmp_path / "a.fkv") as db:
        for i in range(2000):
            db.put(f"key{i}", {"i": i, "nested": {"l": [i, str(i)]}}, ttl=3600 if i % 3 else None)
        for i in range(0, 2000, 5):
            db.delete(f"key{i}")
        dest = db.backup(tmp_path / "copy" / "b.fkv")
        assert dest == tmp_path / "copy" / "b.fkv" and snap_of(dest).exists()
        expected = contents(db)  # values and absolute deadlines
    with DataStore(dest) as copy:
        assert copy.stats()["snapshot"] == "loaded"
        assert contents(copy) == expected and len(copy) == len(expected) == 1600
        copy.put("only-in-the-copy", {})
    with DataStore(tmp_path / "a.fkv") as db:  # the original is its own history
        assert "only-in-the-copy" not in db and contents(db) == expected


def test_an_existing_dest_is_refused_and_left_untouched(tmp_path: Path) -> None:
    with DataStore(tmp_path / "a.fkv") as db:
        db.put("k", {"v": 1})
        other = tmp_path / "other.bin"
        other.write_bytes(b"precious")
        snap_of(other).write_bytes(b"its sidecar")
        for dest in (other, tmp_path / "a.fkv", tmp_path):
            with pytest.raises(fastkv.InvalidPathError, match=str(dest.name)):
                db.backup(dest)
        assert other.read_bytes() == b"precious"
        assert snap_of(other).read_bytes() == b"its sidecar"
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            with_locks("a.fkv") + ["other.bin", "other.bin.idx"])
        assert db.read("k") == {"v": 1}  # the store goes on
    with pytest.raises(fastkv.StoreClosedError):
        db.backup(tmp_path / "after-close.fkv")


def test_the_command_line_backs_up(tmp_path: Path) -> None:
    src = tmp_path / "a.fkv"
    with DataStore(src) as db:
        for i in range(500):
            db.put(f"k{i}", {"i": i})

    def fastkv_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fastkv", "--path", str(src), *args],
                              capture_output=True, text=True, timeout=60)

    res = fastkv_cli("--json", "backup", str(tmp_path / "b.fkv"))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["backup"] == str(tmp_path / "b.fkv")
    with DataStore(tmp_path / "b.fkv") as copy:
        assert {k: copy.read(k) for k in copy} == {f"k{i}": {"i": i} for i in range(500)}
    res = fastkv_cli("backup", str(tmp_path / "b.fkv"))
    assert res.returncode != 0 and "exists already" in res.stderr


def test_the_async_twin_backs_up(tmp_path: Path) -> None:
    import asyncio

    from fastkv.aio import AsyncDataStore

    async def scenario() -> Path:
        async with AsyncDataStore(tmp_path / "a.fkv") as db:
            await db.put("k", {"v": 1})
            dest: Path = await db.backup(tmp_path / "b.fkv")
            with pytest.raises(fastkv.InvalidPathError):
                await db.backup(dest)
            return dest

    dest = asyncio.run(scenario())
    with DataStore(dest) as copy:
        assert copy.read("k") == {"v": 1} and copy.stats()["snapshot"] == "loaded"

"""What is on disk: reopening, torn tails, files that are not stores."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import os
import random
import sys
from pathlib import Path

import pytest

import fastkv
from fastkv import DataStore

if TYPE_CHECKING:
    from conftest import RunPython

HEADER = 128  # the data file header of format 3 (src_c/record.h)


def test_everything_survives_close_and_reopen(store_path: Path) -> None:
    rng = random.Random(7)
    model: dict[str, Any] = {}
    with DataStore(store_path) as db:
        for i in range(3000):
            key = f"k{rng.randrange(1000)}"
            if key in model:
                db.delete(key)
                del model[key]
            else:
                model[key] = {"i": i, "s": "v" * rng.randrange(50)}
                db.create(key, model[key])
    with DataStore(store_path) as db:
        assert len(db) == len(model)
        assert {k: db.read(k) for k in db} == model
        st = db.stats()
        assert st["file_bytes"] == os.path.getsize(store_path)
        assert st["torn_bytes_dropped"] == 0


def test_reopen_after_compaction(store_path: Path) -> None:
    with DataStore(store_path) as db:
        for i in range(100):
            db.create(f"k{i}", {"i": i})
        for i in range(0, 100, 2):
            db.delete(f"k{i}")
        db.compact()
        db.create("after", {"x": 1})
    with DataStore(store_path) as db:
        assert sorted(db) == sorted([f"k{i}" for i in range(1, 100, 2)] + ["after"])
        assert db.read("k99") == {"i": 99}
    assert not Path(str(store_path) + ".compact").exists()


def test_empty_file_is_initialised(store_path: Path) -> None:
    store_path.write_bytes(b"")
    with DataStore(store_path) as db:
        db.create("k", {"a": 1})
    with DataStore(store_path) as db:
        assert db.read("k") == {"a": 1}


def test_new_file_holds_only_the_header(store_path: Path) -> None:
    DataStore(store_path).close()
    data = store_path.read_bytes()
    assert len(data) == HEADER and data[:4] == b"\x89FKV"


@pytest.mark.parametrize(
    "content",
    [
        b"hello world, this is a text file that is not a store\n",
        b"SQLite format 3\x00" + bytes(200),
        b"x",
        bytes(31),
        bytes(4096),
        b"\x89FKV\r\n\x1a\n" + bytes(24),  # our magic, damaged header
    ],
)
def test_foreign_file_refused_and_left_byte_identical(store_path: Path, content: bytes) -> None:
    store_path.write_bytes(content)
    stat_before = store_path.stat()
    with pytest.raises(fastkv.CorruptionError) as info:
        DataStore(store_path)
    assert str(store_path.resolve()) in str(info.value)
    assert store_path.read_bytes() == content
    assert store_path.stat().st_mtime_ns == stat_before.st_mtime_ns
    # refused, not locked: a second try is refused the same way
    with pytest.raises(fastkv.CorruptionError):
        DataStore(store_path)


def test_directory_path_refused(tmp_path: Path) -> None:
    with pytest.raises(fastkv.InvalidPathError, match="is a directory"):
        DataStore(tmp_path)


def test_parent_that_cannot_be_created_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(fastkv.InvalidPathError, match="cannot create the directory"):
        DataStore(blocker / "sub" / "store.fkv")
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("bad", [42, None.__class__, b"\x00bad", "nul\x00char"])
def test_unusable_path_values_refused(bad: object) -> None:
    with pytest.raises(fastkv.InvalidPathError):
        DataStore(bad)  # type: ignore[arg-type]


def test_missing_parents_are_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c" / "store.fkv"
    with DataStore(target) as db:
        db.create("k", {})
    assert target.is_file()


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need a privilege on Windows")
def test_symlinked_store_stays_a_symlink_after_compaction(tmp_path: Path) -> None:
    real = tmp_path / "real.fkv"
    link = tmp_path / "link.fkv"
    link.symlink_to(real)
    with DataStore(link) as db:
        db.create("k", {"a": 1})
        db.compact()
    assert link.is_symlink()
    with DataStore(real) as db:
        assert db.read("k") == {"a": 1}


def _write_store(path: Path, n: int) -> list[int]:
    """n records; returns the file size after each create (record ends)."""
    ends = []
    with DataStore(path) as db:
        for i in range(n):
            db.create(f"key{i}", {"i": i, "pad": "p" * (i % 7)})
            ends.append(db.stats()["file_bytes"])
    return ends


def test_torn_tail_dropped_at_every_cut_of_the_last_record(tmp_path: Path) -> None:
    master = tmp_path / "master.fkv"
    ends = _write_store(master, 20)
    data = master.read_bytes()
    last_start = ends[-2]
    for cut in range(last_start, len(data)):
        path = tmp_path / f"cut{cut}.fkv"
        path.write_bytes(data[:cut])
        with DataStore(path) as db:
            assert len(db) == 19, cut
            assert "key19" not in db
            assert db.read("key18") == {"i": 18, "pad": "p" * 4}
            # zeros that end the file are taken for room made ahead, not torn bytes
            torn = data[last_start:cut].rstrip(b"\0")
            assert db.stats()["torn_bytes_dropped"] == len(torn)
            db.create("key19", {"again": True})
        assert path.stat().st_size > last_start
        with DataStore(path) as db:
            assert db.read("key19") == {"again": True} and len(db) == 20


@pytest.mark.parametrize("garbage", [b"\x00", b"\xff" * 7, bytes(100), os.urandom(500), b"\x01" * 16])
def test_garbage_appended_is_dropped(tmp_path: Path, garbage: bytes) -> None:
    path = tmp_path / "s.fkv"
    ends = _write_store(path, 10)
    with open(path, "ab") as f:
        f.write(garbage)
    with DataStore(path) as db:
        assert len(db) == 10
        assert db.stats()["file_bytes"] == ends[-1]


def test_damaged_last_record_checksum_is_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "s.fkv"
    ends = _write_store(path, 5)
    data = bytearray(path.read_bytes())
    data[ends[-1] - 1] ^= 0x40  # inside the last record's value
    path.write_bytes(bytes(data))
    with DataStore(path) as db:
        assert len(db) == 4 and "key4" not in db


def test_damage_before_intact_records_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / "s.fkv"
    ends = _write_store(path, 50)
    data = bytearray(path.read_bytes())
    data[ends[10] + 20] ^= 0x01  # inside record 11, with 38 intact records after it
    path.write_bytes(bytes(data))
    # Opened from its index snapshot, the store does not read record 11
    # until asked for it: then the damage is reported, never returned.
    with DataStore(path) as db:
        with pytest.raises(fastkv.CorruptionError, match=f"offset {ends[10]:,}"):
            db.read("key11")
        with pytest.raises(fastkv.CorruptionError):
            list(db)  # iteration checks every record it reads a key from
    assert fastkv.verify(path)["damaged_regions"] == 1
    # With no snapshot, the open scans the whole log and refuses it.
    Path(str(path) + ".idx").unlink()
    with pytest.raises(fastkv.CorruptionError, match=f"offset {ends[10]:,}"):
        DataStore(path)
    assert path.read_bytes() == bytes(data)  # not "repaired" behind the user's back


def test_damage_in_the_second_to_last_record_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / "s.fkv"
    ends = _write_store(path, 5)
    data = bytearray(path.read_bytes())
    data[ends[2] + 18] ^= 0x01  # record 3 of 5: record 4 after it is intact
    path.write_bytes(bytes(data))
    Path(str(path) + ".idx").unlink()  # a full scan (see the test above for a snapshot)
    with pytest.raises(fastkv.CorruptionError):
        DataStore(path)


def test_damage_after_open_is_reported_by_read_not_returned(store_path: Path) -> None:
    db = DataStore(store_path)
    try:
        db.create("a", {"secret": "aaaa"})
        db.create("b", {"secret": "bbbb"})
        data = bytearray(store_path.read_bytes())
        pos = data.index(b"aaaa")
        with open(store_path, "r+b") as f:  # damage behind the open store's back
            f.seek(pos)
            f.write(b"zzzz")
        with pytest.raises(fastkv.CorruptionError, match="damaged at byte offset"):
            db.read("a")
        assert db.read("b") == {"secret": "bbbb"}
    finally:
        db.close()


FSIZE_CHILD = r"""
import errno, os, resource, signal, sys, fastkv
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of a signal
path = sys.argv[1]
with fastkv.DataStore(path) as db:
    db.create("a", {"x": 1})
size = os.path.getsize(path)
# set before the store's first append: with room made ahead (append.h) the
# file would already be longer than the records the limit is meant to stop
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, size + 100))
db = fastkv.DataStore(path)
try:
    db.create("b", {"pad": "x" * 500})
    print("no error")
except fastkv.StoreIOError as e:
    assert isinstance(e, OSError) and e.errno == errno.EFBIG, e
    assert str(path) in str(e)
    print("refused")
assert os.path.getsize(path) == size, "a partial record was left behind"
assert "b" not in db and db.read("a") == {"x": 1}
db.create("c", {"s": 1})  # a small record still fits under the limit
db.close()
print("ok")
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE (POSIX)")
def test_failed_write_raises_store_io_error_and_leaves_no_partial_record(
    store_path: Path, run_python: RunPython
) -> None:
    res = run_python(FSIZE_CHILD, str(store_path))
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["refused", "ok"]
    with DataStore(store_path) as db:
        assert sorted(db) == ["a", "c"]
        assert db.stats()["torn_bytes_dropped"] == 0

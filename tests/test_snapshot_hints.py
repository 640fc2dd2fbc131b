"""Hints: after a clean reopen, every record appended is noted, 512 to a
frame, after the snapshot's slots in its file (<data file>.idx), so that the
open after a crash takes those records from there instead of scanning them. A frame that does not fit
(damaged, cut short, made for another snapshot, past the end of the log,
crafted) is ignored with every frame after it, and the log is scanned from
the last good one; a named record that is not what its frame says, found
when its block is applied, makes the store scan the whole log. Every answer
equals a full scan's."""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import fastkv
from fastkv import DataStore, _core
from snapshot_files import HINT_HEAD as HEAD, SNAP_HEAD, contents, snap_of, truth

FRAME = 512


def front_and_slots(path: Path) -> tuple[int, int]:
    """Where the snapshot's front (header, block directory, CRC) ends, and
    its slots: the frames begin there."""
    snap = snap_of(path).read_bytes()
    cap, = struct.unpack_from("<Q", snap, 56)
    per, = struct.unpack_from("<I", snap, 20)
    front = SNAP_HEAD + 16 * (cap // per) + 4
    return int(front), int(front + 8 * cap)


def body_end(path: Path) -> int:
    return front_and_slots(path)[1]


def hints(path: Path) -> bytes:
    return snap_of(path).read_bytes()[body_end(path):]


def set_hints(path: Path, data: bytes | bytearray) -> None:
    snap = snap_of(path).read_bytes()
    snap_of(path).write_bytes(snap[:body_end(path)] + data)


def build(path: Path, n: int = 30_000) -> list[str]:
    """A store closed cleanly, its table (65,536 slots) large enough to keep
    a few thousand records past the snapshot by block."""
    with DataStore(path) as db:
        for i in range(n):
            db.create(f"k{i}", {"i": i})
    return [f"k{i}" for i in range(n)]


# 3,000 calls, each appending one record: 5 whole frames, 440 records after
WRITES = """
for i in range(3000):
    r = i % 7
    if r == 0: db.delete(f"k{i}")
    elif r == 1: db.touch(f"k{i}", 3600)
    elif r == 2: db.create(f"new{i}", {"n": i}, ttl=7200)
    else: db.put(f"k{i * 7 % 30000}", {"again": i})
"""


def crash_after(path: Path, code: str, durability: str = "process") -> None:
    """Reopen the store in another process, run code, SIGKILL it."""
    full = (f"import fastkv, os, signal\n"
            f"db = fastkv.DataStore({str(path)!r}, durability={durability!r})\n{code}\n"
            f"os.kill(os.getpid(), getattr(signal, 'SIGKILL', signal.SIGTERM))\n")
    subprocess.run([sys.executable, "-c", full], timeout=300)


def frames(path: Path) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """(offset in the file, end, entries) of each whole frame."""
    data, out, at = hints(path), [], 0
    while at + HEAD <= len(data):
        n, end = struct.unpack_from("<IQ", data, at + 4)
        entries = [struct.unpack_from("<II", data, at + HEAD + 8 * i) for i in range(n)]
        out.append((at, end, entries))
        at += HEAD + 8 * n
    return out


def seed_of(path: Path) -> int:
    """The CRC of the snapshot's front, which every frame's CRC starts from."""
    front = front_and_slots(path)[0]
    return int(struct.unpack_from("<I", snap_of(path).read_bytes(), front - 4)[0])


def reseal(path: Path, data: bytearray, at: int) -> None:
    """Give the frame at `at` in data a valid CRC again (a crafted frame)."""
    n, = struct.unpack_from("<I", data, at + 4)
    seed = seed_of(path)
    crc = _core._crc32c(bytes(data[at + 24:at + HEAD + 8 * n]),
                        _core._crc32c(bytes(data[at:at + 20]), seed))
    struct.pack_into("<I", data, at + 20, crc)


def read_each(db: DataStore, keys: list[str]) -> dict[str, Any]:
    out = {}
    for k in keys:
        if k in db:
            out[k] = db.read_with_deadline(k)
    return out


@pytest.fixture
def crashed(tmp_path: Path) -> tuple[Path, list[str]]:
    path = tmp_path / "s.fkv"
    keys = build(path) + [f"new{i}" for i in range(3000)]
    crash_after(path, WRITES)
    return path, keys


def test_an_open_after_a_crash_takes_the_hinted_records_without_a_scan(
        crashed: tuple[Path, list[str]], tmp_path: Path) -> None:
    path, keys = crashed
    got = frames(path)
    assert len(got) == 5 and all(len(e) == FRAME for _, _, e in got)
    expected = truth(path, tmp_path)
    with DataStore(path) as db:
        assert _core._debug_snapshot_blocks(db) == (0, 8)
        assert read_each(db, random.Random(3).sample(keys, len(keys))) == expected
        st = db.stats()
        assert st["open_path"] == "snapshot" and st["snapshot"] == "loaded"
        assert st["open_hinted_records"] == 5 * FRAME
        assert st["open_scanned_bytes"] == st["file_bytes"] - got[-1][1] > 0
    assert len(hints(path)) == 0  # close saved a snapshot over them, cut them off
    with DataStore(path) as db:
        st = db.stats()
        assert (st["open_scanned_bytes"], st["open_hinted_records"]) == (0, 0)
        assert contents(db) == expected


def damage(path: Path, tmp_path: Path, how: str) -> int:
    """Spoil the hints (or the log under them) one way; the frames that
    should still be taken."""
    got = frames(path)
    data = bytearray(hints(path))
    if how == "flipped":
        data[got[2][0] + HEAD + 100] ^= 0x08
        set_hints(path, data)
        return 2
    if how == "cut":
        set_hints(path, data[:got[3][0] + 1000])
        return 3
    if how == "another snapshot":
        with DataStore(path) as db:
            len(db)  # every block in: close saves a new snapshot over it
        crash_after(path, "for i in range(100): db.put(f'late{i}', {'n': i})")
        assert len(hints(path)) == 0  # fewer than a frame's worth
        set_hints(path, data)  # frames made for the snapshot before
        return 0
    if how == "log cut":
        with open(path, "r+b") as f:
            f.truncate(got[2][1] - 10)  # inside the last record of frame 2
        return 2
    if how == "rising offsets":  # crafted: two entries out of order
        at = got[1][0] + HEAD + 8 * 7
        a, b = data[at:at + 8], data[at + 8:at + 16]
        data[at:at + 16] = b + a
        reseal(path, data, got[1][0])
        set_hints(path, data)
        return 1
    if how == "last record":  # crafted: the last frame names another CRC for its end
        at = got[4][0]
        crc, = struct.unpack_from("<I", data, at + 16)
        struct.pack_into("<I", data, at + 16, crc ^ 1)
        reseal(path, data, at)
        set_hints(path, data)
        return 4
    if how == "end":  # crafted: the frame ends one record early
        struct.pack_into("<Q", data, got[3][0] + 8, got[3][2][-1][0])
        reseal(path, data, got[3][0])
        set_hints(path, data)
        return 3
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["flipped", "cut", "another snapshot", "log cut",
                                 "rising offsets", "last record", "end"])
def test_frames_that_do_not_fit_are_ignored_from_the_first_one(
        crashed: tuple[Path, list[str]], tmp_path: Path, how: str) -> None:
    path, keys = crashed
    taken = damage(path, tmp_path, how)
    expected = truth(path, tmp_path)
    named = set(keys)
    with DataStore(path) as db:
        assert read_each(db, random.Random(how).sample(keys, len(keys))) == {
            k: v for k, v in expected.items() if k in named}
        st = db.stats()
        assert st["open_path"] == "snapshot"
        assert st["open_hinted_records"] == taken * FRAME
        assert contents(db) == expected
    with DataStore(path) as db:
        assert contents(db) == expected


@pytest.mark.parametrize("how", ["another block", "inside a record"])
def test_a_named_record_that_is_not_as_named_means_a_full_scan(
        crashed: tuple[Path, list[str]], tmp_path: Path, how: str) -> None:
    """Crafted frames whose CRC holds: an entry whose hash sends its record
    to another block, or whose offset lies inside a record. Found when the
    record is applied (here by len(), which loads every block): the store
    scans the whole log, and says why."""
    path, keys = crashed
    got = frames(path)
    data = bytearray(hints(path))
    at = got[1][0] + HEAD + 8 * 100
    off, h = struct.unpack_from("<II", data, at)
    if how == "another block":
        struct.pack_into("<I", data, at + 4, h ^ (1 << 26))  # the top bit of 27: 8 blocks
    else:
        struct.pack_into("<I", data, at, off + 3)
    reseal(path, data, got[1][0])
    set_hints(path, data)
    expected = truth(path, tmp_path)
    with DataStore(path) as db:
        assert len(db) == len(expected)
        st = db.stats()
        assert (st["open_path"], st["snapshot"]) == (
            "scan", "a record its hints named was not as they said")
        assert read_each(db, keys) == expected


def test_damage_in_a_hinted_record_is_found_when_its_block_is_applied(
        crashed: tuple[Path, list[str]], tmp_path: Path) -> None:
    """Open takes the hinted records without reading them; the damaged one
    is found when its block is applied, and the store then scans the whole
    log, which fails as an open without the snapshot does: at the same
    offset, and again at every later call."""
    path, _ = crashed
    got = frames(path)
    off = got[2][2][100][0]
    data = bytearray(path.read_bytes())
    data[off + 30] ^= 0x40  # inside its value (a put): only its checksum tells
    path.write_bytes(data)
    alone = tmp_path / "alone" / path.name
    alone.parent.mkdir()
    alone.write_bytes(data)
    with pytest.raises(fastkv.CorruptionError) as full_scan:
        DataStore(alone)
    db = DataStore(path)  # opens: the damaged record is not read
    try:
        assert _core._debug_snapshot_blocks(db) == (0, 8)
        for _ in range(2):
            with pytest.raises(fastkv.CorruptionError) as applied:
                len(db)
            assert str(applied.value).split(" is damaged ")[1] == \
                str(full_scan.value).split(" is damaged ")[1]
    finally:
        db.close()


def test_hints_stop_at_a_compaction_and_are_never_written_in_fsync_mode(
        tmp_path: Path) -> None:
    path = tmp_path / "s.fkv"
    build(path, 5000)
    crash_after(path, "for i in range(1000): db.put(f'a{i}', {'n': i})\n"
                      "db.compact()\n"
                      "for i in range(1000): db.put(f'b{i}', {'n': i})")
    expected = truth(path, tmp_path)
    with DataStore(path) as db:
        st = db.stats()
        # the compaction saved a snapshot; what came after was not hinted
        assert st["open_hinted_records"] == 0 and st["open_scanned_bytes"] > 0
        assert contents(db) == expected
    fsync = tmp_path / "f.fkv"
    build(fsync, 100)
    crash_after(fsync, "for i in range(1200): db.put(f'a{i}', {'n': i})", "fsync")
    assert len(hints(fsync)) == 0
    with DataStore(fsync) as db:
        assert db.stats()["open_hinted_records"] == 0 and len(db) == 1300


HINT_FUZZ = r"""
import os, random, shutil, struct, sys
import fastkv
from fastkv import _core
src, work, seed, cases = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
snap = open(src + ".idx", "rb").read()
cap, = struct.unpack_from("<Q", snap, 56); per, = struct.unpack_from("<I", snap, 20)
front = 104 + 16 * (cap // per) + 4
seed_crc, = struct.unpack_from("<I", snap, front - 4)
body, hints = snap[:front + 8 * cap], snap[front + 8 * cap:]
keys = [f"k{i}" for i in range(0, 30000, 37)] + [f"new{i}" for i in range(2, 3000, 7)]
def answers(db):
    return {k: db.read_with_deadline(k) for k in keys if k in db}
alone = os.path.join(work, "alone.fkv")
shutil.copyfile(src, alone)
with fastkv.DataStore(alone) as db:
    expected = answers(db)
    total = len(db)
def mutate():
    d = bytearray(hints)
    kind = rng.randrange(4)
    if kind == 0:  # bytes changed, CRC left as it is
        for _ in range(rng.randrange(1, 8)):
            d[rng.randrange(len(d))] = rng.randrange(256)
        return bytes(d)
    if kind == 1:
        return bytes(d[:rng.randrange(len(d))])
    # one field of one frame rewritten and the CRC fixed up (crafted)
    at, frames = 0, []
    while at + 32 <= len(d):
        n, = struct.unpack_from("<I", d, at + 4); frames.append((at, n)); at += 32 + 8 * n
    at, n = rng.choice(frames)
    field = rng.choice([4, 8, 16, 24] + [32 + 8 * rng.randrange(n) + rng.choice([0, 4])] * 4)
    size = 8 if field in (8, 24) else 4
    old = int.from_bytes(d[at + field:at + field + size], "little")
    new = rng.choice([old + 1, old - 1, old ^ (1 << rng.randrange(8 * size)),
                      rng.randrange(1 << (8 * size))]) % (1 << (8 * size))
    d[at + field:at + field + size] = new.to_bytes(size, "little")
    n2, = struct.unpack_from("<I", d, at + 4)
    if 0 < n2 <= 512 and at + 32 + 8 * n2 <= len(d):
        crc = _core._crc32c(bytes(d[at + 24:at + 32 + 8 * n2]),
                            _core._crc32c(bytes(d[at:at + 20]), seed_crc))
        struct.pack_into("<I", d, at + 20, crc)
    return bytes(d)
used = 0
for case in range(cases):
    path = os.path.join(work, f"case{case % 2}.fkv")
    shutil.copyfile(src, path)
    with open(path + ".idx", "wb") as f:
        f.write(body + mutate())
    db = fastkv.DataStore(path)
    assert len(db) == total, case  # every block, every named record applied
    got = answers(db)
    assert got == expected, (case, db.stats())
    used += db.stats()["open_hinted_records"] > 0
    db.close()
print(used)
"""


@pytest.mark.parametrize("seed", [1, 2])
def test_fuzzed_hints_never_crash_hang_or_answer_wrong(
        crashed: tuple[Path, list[str]], tmp_path: Path, seed: int) -> None:
    """Random bytes, cuts, and single fields rewritten with the CRC fixed
    up: the open never fails, and once every record is applied every answer
    is a full scan's (in a subprocess, so that a crash is a failure)."""
    path, _ = crashed
    cases = int(os.environ.get("FASTKV_FUZZ_CASES", "60"))
    work = tmp_path / "fuzz"
    work.mkdir()
    res = subprocess.run([sys.executable, "-c", HINT_FUZZ, str(path), str(work), str(seed),
                          str(cases)], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"seed {seed}: exit {res.returncode}\n{res.stderr[-3000:]}"
    assert int(res.stdout) > 0  # the frames before a spoilt one were taken

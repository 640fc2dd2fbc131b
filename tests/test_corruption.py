"""Damaged files: reported, never returned as data; verify() and repair();
a fuzz run of the file parser."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import fastkv
from fastkv import DataStore
from snapshot_files import with_locks


def build_store(path: Path, seed: int = 3) -> tuple[dict[str, Any], dict[str, list[Any]], list[int]]:
    """A store with creates, deletes and TTLs. Returns the live model, every
    value each key ever had, and the file size after each operation."""
    rng = random.Random(seed)
    live: dict[str, Any] = {}
    history: dict[str, list[Any]] = {}
    ends = []
    with DataStore(path) as db:
        for i in range(300):
            key = f"k{rng.randrange(120)}"
            if key in live and rng.random() < 0.5:
                db.delete(key)
                del live[key]
            elif key not in live:
                value = {"key": key, "i": i, "pad": "v" * rng.randrange(80)}
                db.create(key, value, ttl=rng.choice([None, 10**6]))
                live[key] = value
                history.setdefault(key, []).append(value)
            ends.append(db.stats()["file_bytes"])
    return live, history, ends


def test_verify_a_healthy_store(store_path: Path) -> None:
    live, _, ends = build_store(store_path)
    report = fastkv.verify(store_path)
    assert report["ok"] and report["header_ok"]
    assert report["damaged_regions"] == 0 and report["first_damage_offset"] is None
    assert report["torn_tail_bytes"] == 0
    assert report["live_keys"] == len(live)
    assert report["file_bytes"] == ends[-1]
    assert report["intact_records"] == report["puts"] + report["tombstones"]


def test_verify_never_writes_and_reports_a_torn_tail(store_path: Path) -> None:
    build_store(store_path)
    with open(store_path, "ab") as f:
        f.write(b"\x01\x02\x03")
    before = store_path.read_bytes()
    report = fastkv.verify(store_path)
    assert report["ok"] and report["torn_tail_bytes"] == 3
    assert store_path.read_bytes() == before


def test_verify_refuses_an_open_store(db: DataStore) -> None:
    with pytest.raises(fastkv.StoreLockedError):
        fastkv.verify(db.path)


def test_verify_and_repair_refuse_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(fastkv.InvalidPathError):
        fastkv.verify(tmp_path / "nope.fkv")
    with pytest.raises(fastkv.InvalidPathError):
        fastkv.repair(tmp_path)
    foreign = tmp_path / "notes.txt"
    foreign.write_text("not a store")
    with pytest.raises(fastkv.CorruptionError):
        fastkv.verify(foreign)
    with pytest.raises(fastkv.CorruptionError):
        fastkv.repair(foreign)
    assert foreign.read_text() == "not a store"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_repair_salvages_everything_but_the_damaged_record(tmp_path: Path) -> None:
    path = tmp_path / "s.fkv"
    live, history, ends = build_store(path)
    data = bytearray(path.read_bytes())
    # damage one record in the middle: find a put of a live key
    victim = next(k for k in live)
    pos = data.index(f'"key":"{victim}"'.encode(), 128)
    data[pos + 2] ^= 0x20
    path.write_bytes(bytes(data))
    # a full scan finds it at open (from a snapshot, reading it would:
    # test_persistence.py's test_damage_before_intact_records_is_corruption)
    Path(str(path) + ".idx").unlink()
    with pytest.raises(fastkv.CorruptionError):
        DataStore(path)
    report = fastkv.verify(path)
    assert not report["ok"] and report["damaged_regions"] == 1
    assert report["first_damage_offset"] < pos
    result = fastkv.repair(path)
    assert Path(result["backup_path"]).read_bytes() == bytes(data)
    with DataStore(path) as db:
        got = {k: db.read(k) for k in db}
    assert victim not in got
    assert got == {k: v for k, v in live.items() if k != victim}
    assert result["salvaged_keys"] == len(got)
    assert fastkv.verify(path)["ok"]


def test_repair_without_backup_and_of_a_damaged_header(tmp_path: Path) -> None:
    path = tmp_path / "s.fkv"
    live, _, _ = build_store(path)
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF  # creation time, covered by the header checksum
    path.write_bytes(bytes(data))
    with pytest.raises(fastkv.CorruptionError, match="offset 0"):
        DataStore(path)
    assert fastkv.verify(path)["header_ok"] is False
    result = fastkv.repair(path, backup=False)
    assert result["backup_path"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == with_locks("s.fkv")
    with DataStore(path) as db:
        assert {k: db.read(k) for k in db} == live


@pytest.mark.parametrize("seed", range(6))
def test_bit_flips_mid_file_are_reported_never_returned(tmp_path: Path, seed: int) -> None:
    master = tmp_path / "master.fkv"
    live, history, ends = build_store(master)
    data = master.read_bytes()
    rng = random.Random(seed)
    # a flip in the last record looks exactly like a torn write: leave it out
    last_start = max(e for e in ends if e < ends[-1])
    for trial in range(40):
        flipped = bytearray(data)
        pos = rng.randrange(0, last_start)
        flipped[pos] ^= 1 << rng.randrange(8)
        path = tmp_path / f"f{seed}-{trial}.fkv"
        path.write_bytes(bytes(flipped))
        try:
            db = DataStore(path)
        except fastkv.CorruptionError:
            pass
        else:  # the flip changed nothing a checksum covers
            with db:
                for key in db:
                    assert db.read(key) == live[key]
            continue
        report = fastkv.verify(path)
        assert not report["ok"], pos
        fastkv.repair(path, backup=False)
        with DataStore(path) as db:
            got = {k: db.read(k) for k in db}
        # every salvaged value is one the key really had: never other data
        for key, value in got.items():
            assert value in history[key], (pos, key)
        lost = set(live) - set(got)
        assert len(lost) <= 1, (pos, lost)
        path.unlink()


def test_damage_after_open_reported_by_read(store_path: Path) -> None:
    db = DataStore(store_path)
    try:
        db.create("a", {"x": "aaaa"})
        with open(store_path, "r+b") as f:
            f.seek(128 + 8)  # inside the record, after the 128-byte header
            f.write(b"\xff")
        with pytest.raises(fastkv.CorruptionError):
            db.read("a")
    finally:
        db.close()


FUZZ = r"""
import os, random, sys
import fastkv
from fastkv import DataStore

workdir, seed, cases = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
base = os.path.join(workdir, "base.fkv")
with DataStore(base) as db:
    for i in range(200):
        db.create(f"k{i}", {"i": i, "s": "x" * rng.randrange(60)}, ttl=rng.choice([None, 99]))
        if i % 5 == 0:
            db.delete(f"k{i // 2}") if f"k{i // 2}" in db else None
        if i % 20 == 0:  # groups among the records: batch calls and transactions
            db.put_many({f"g{i}-{j}": {"j": j} for j in range(rng.randrange(1, 6))})
            with db.transaction() as tx:
                tx.put(f"t{i}", {"i": i})
                tx.delete(f"g{i}-0")
good = open(base, "rb").read()
header = good[:128]

def mutate():
    kind = rng.randrange(6)
    if kind == 0:  # random bytes after a valid header
        return header + os.urandom(rng.randrange(0, 3000))
    data = bytearray(good)
    if kind == 1:  # overwrite random bytes
        for _ in range(rng.randrange(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 2:  # insert bytes
        p = rng.randrange(128, len(data))
        data[p:p] = os.urandom(rng.randrange(1, 50))
    elif kind == 3:  # delete bytes
        p = rng.randrange(128, len(data))
        del data[p:p + rng.randrange(1, 50)]
    elif kind == 4:  # truncate
        del data[rng.randrange(len(data)):]
    else:  # plausible headers with huge lengths
        p = rng.randrange(128, len(data) - 16)
        data[p + 4] = rng.choice([1, 2, 0, 255])
        data[p + 5] = rng.choice([0, 1, 128, 129, 255])
        data[p + 6:p + 8] = rng.choice([b"\xff\xff", b"\x00\x40", b"\x01\x40", b"\x00\x00"])
    return bytes(data)

outcomes = {"opened": 0, "refused": 0}
for case in range(cases):
    path = os.path.join(workdir, f"case{case % 4}.fkv")
    with open(path, "wb") as f:
        f.write(mutate())
    try:
        with DataStore(path) as db:
            for key in list(db):
                try:
                    db.read(key)
                except fastkv.KeyNotFoundError:
                    pass
            len(db)
            db.create("fuzz-new", {"ok": True})
            with db.transaction() as tx:
                tx.put("fuzz-tx", {"n": len(tx.get_many(["k1", "k2", "t20"]))})
            db.compact()
            assert db.read("fuzz-new") == {"ok": True} and "fuzz-tx" in db
        outcomes["opened"] += 1
    except fastkv.FastKVError:
        outcomes["refused"] += 1
    try:
        fastkv.verify(path)
        fastkv.repair(path, backup=False)
        with DataStore(path) as db:
            for key in db:
                db.read(key)
    except fastkv.FastKVError:
        pass
    os.unlink(path)
print(outcomes["opened"], outcomes["refused"])
"""


@pytest.mark.parametrize("seed", [1, 2])
def test_fuzzed_files_never_crash_or_hang(tmp_path: Path, seed: int) -> None:
    cases = int(os.environ.get("FASTKV_FUZZ_CASES", "300"))
    res = subprocess.run(
        [sys.executable, "-c", FUZZ, str(tmp_path), str(seed), str(cases)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, f"seed {seed}: exit {res.returncode}\n{res.stderr[-3000:]}"
    opened, refused = map(int, res.stdout.split())
    assert opened + refused == cases
    assert opened > 0 and refused > 0


CUT_WHILE_OPEN = r"""
import os, sys
import fastkv
from fastkv import DataStore

path = sys.argv[1]
db = DataStore(path)
for i in range(300):  # about 100 KiB: many pages
    db.create(f"k{i}", {"i": i, "pad": "x" * 250})
for i in range(300):  # found in memory: the next reads copy from the mapping
    db.read(f"k{i}")
with open(path, "r+b") as f:
    f.truncate(8192)
failed = 0
for call in (lambda: db.put("k299", {}), lambda: db.delete("k298"),
             lambda: db.create("k297", {}), lambda: db.touch("k296", 5),
             lambda: db.read("k295"), lambda: db.get_many(["k294"])):
    try:
        call()
    except (fastkv.StoreIOError, fastkv.CorruptionError) as exc:
        failed += 1
db.put("k1", {"still": "here"})
assert db.read("k1") == {"still": "here"}
print("alive", failed)
"""


def test_a_file_cut_short_while_open_gives_errors_not_a_dead_process(tmp_path: Path) -> None:
    # Writers, and reads of pages found in memory a moment ago, read records
    # through a mapping of the file on POSIX; a page past the new end faults
    # there (SIGBUS), where a pread would have come back short. Run with faulthandler on, as pytest does.
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", CUT_WHILE_OPEN, str(tmp_path / "cut.fkv")],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["alive", "6"]
    assert "Fatal Python error" not in proc.stderr


FOREIGN_SIGBUS = r"""
import mmap, os, signal, sys
from fastkv import DataStore

db = DataStore(sys.argv[1])  # maps the store's file, handler installed
db.put("a", {})
db.put("a", {"b": 1})
if sys.argv[2] == "kill":
    os.kill(os.getpid(), signal.SIGBUS)
else:
    other = os.path.join(os.path.dirname(sys.argv[1]), "other.bin")
    with open(other, "wb") as f:
        f.write(b"x" * 65536)
    f = open(other, "r+b")
    m = mmap.mmap(f.fileno(), 65536)
    f.truncate(0)
    m[40000]  # a fault that is not the store's
print("survived")
"""


@pytest.mark.skipif(sys.platform == "win32", reason="no SIGBUS on Windows")
@pytest.mark.parametrize("how", ["kill", "fault"])
def test_a_sigbus_that_is_not_the_stores_still_ends_the_process(tmp_path: Path, how: str) -> None:
    proc = subprocess.run([sys.executable, "-c", FOREIGN_SIGBUS, str(tmp_path / "s.fkv"), how],
                          capture_output=True, text=True, timeout=60)
    assert "survived" not in proc.stdout
    if "AddressSanitizer" in proc.stderr:
        # the sanitizer's handler was there first: ours passed the signal on
        # to it, and it reports and aborts
        assert proc.returncode == -signal.SIGABRT, proc.stderr
    else:
        assert proc.returncode == -signal.SIGBUS, (proc.returncode, proc.stderr)


CHAINED = r"""
import os, signal, sys
import fastkv
from fastkv import DataStore

seen = []
signal.signal(signal.SIGBUS, lambda sig, frame: seen.append(sig))  # before the store
path = sys.argv[1]
db = DataStore(path)
for i in range(300):
    db.create(f"k{i}", {"i": i, "pad": "x" * 250})
os.kill(os.getpid(), signal.SIGBUS)
os.kill(os.getpid(), signal.SIGBUS)
with open(path, "r+b") as f:
    f.truncate(8192)
try:
    db.put("k299", {})
except fastkv.StoreIOError:
    print("guarded", len(seen))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="no SIGBUS on Windows")
def test_the_handler_before_the_stores_still_gets_its_signals(tmp_path: Path) -> None:
    # the store's handler passes a SIGBUS that is not its own on, and stays
    # installed: the program's handler runs each time, the store's guard
    # still works after
    proc = subprocess.run([sys.executable, "-c", CHAINED, str(tmp_path / "c.fkv")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["guarded", "2"]


# invalid JSON; and four JSON texts in one value, which get_many (parsing
# every value in one array) must not take for four values
@pytest.mark.parametrize("crafted", [b'{{{{"v":"abcd"}', b"{},{},{},{} "])
def test_valid_checksum_over_invalid_json_is_corruption(store_path: Path, crafted: bytes) -> None:
    """Only a crafted file has this; it must not crash or return garbage."""
    import struct

    with DataStore(store_path) as db:
        db.create("k", {"v": "abcd"})
    data = bytearray(store_path.read_bytes())
    pos = data.index(b'{"v":"abcd"}')
    data[pos : pos + 12] = crafted[:12]
    rec_start = 128  # the only record, after the header; give it a checksum that matches again
    body = bytes(data[rec_start + 4 :])
    crc = _crc32c(body)
    data[rec_start : rec_start + 4] = struct.pack("<I", crc)
    store_path.write_bytes(bytes(data))
    with DataStore(store_path) as db:
        with pytest.raises(fastkv.CorruptionError, match="not valid JSON") as info:
            db.read("k")
        assert info.value.__context__ is None
        db.create("k2", {"v": 2})
        for keys in (["k"], ["k2", "k", "k2"], ["k2", "k"]):
            with pytest.raises(fastkv.CorruptionError, match="value of 'k' is not valid JSON"):
                db.get_many(keys)
        assert db.get_many(["k2"]) == {"k2": {"v": 2}}


def _crc32c(data: bytes) -> int:
    """CRC-32C, bit by bit (the stdlib has none)."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_core_checksum_matches_the_definition_at_every_length_class() -> None:
    """Long buffers are hashed in three interleaved lanes that are then
    joined; a wrong join would make every long record look damaged, or
    worse, let damage through. Lengths straddle each lane boundary."""
    from fastkv import _core

    assert _core._crc32c(b"123456789") == 0xE3069283  # the published check value
    rng = random.Random(7)
    lengths = [0, 1, 7, 8, 9, 255, 256, 767, 768, 769, 1535, 1536, 1543, 4033, 16 * 1024 + 48]
    for n in lengths:
        data = rng.randbytes(n)
        assert _core._crc32c(data) == _crc32c(data), n
        cut = n // 3  # continuing from a partial checksum gives the same answer
        assert _core._crc32c(data[cut:], _core._crc32c(data[:cut])) == _crc32c(data), n

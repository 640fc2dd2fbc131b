"""The index snapshot beside the data file: a clean reopen loads it and
scans only what was written after it; any snapshot that does not fit the
data file (damaged, truncated, from another store, from before a
compaction, newer than the log, garbage) is refused and the whole log is
scanned. Results always equal those of a full scan."""

from __future__ import annotations

import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import fastkv
from fastkv import DataStore, _core
from snapshot_files import FILE_HEAD, SNAP_HEAD, contents, snap_of, truth


def fill(path: Path, n: int = 3000, seed: int = 1) -> None:
    rng = random.Random(seed)
    with DataStore(path) as db:
        for i in range(n):
            db.create(f"k{i}", {"i": i, "pad": "p" * rng.randrange(200)},
                      ttl=rng.choice([None, 3600, 7200]))
        for i in range(0, n, 5):
            db.delete(f"k{i}")
        for i in range(0, n, 7):
            if f"k{i}" in db:
                db.put(f"k{i}", {"i": -i})
        db.touch("k1", 100)


def test_clean_reopen_loads_the_snapshot_and_scans_nothing(store_path: Path, tmp_path: Path) -> None:
    fill(store_path)
    assert snap_of(store_path).exists()
    expected = truth(store_path, tmp_path)
    with DataStore(store_path) as db:
        st = db.stats()
        assert st["open_path"] == "snapshot" and st["snapshot"] == "loaded"
        assert st["open_scanned_bytes"] == 0
        assert contents(db) == expected
        assert len(db) == len(expected)
        assert st["live_bytes"] + st["dead_bytes"] == st["file_bytes"]


def test_a_reopen_that_changed_nothing_does_not_rewrite_the_snapshot(store_path: Path) -> None:
    fill(store_path, 200)
    before = snap_of(store_path).stat().st_mtime_ns
    time.sleep(0.01)
    with DataStore(store_path) as db:
        db.read("k1")
    assert snap_of(store_path).stat().st_mtime_ns == before


def test_writes_after_the_snapshot_are_scanned_from_its_end(store_path: Path, tmp_path: Path) -> None:
    fill(store_path, 500)
    size = store_path.stat().st_size
    # another process writes and is killed: no clean close, no new snapshot
    code = (f"import fastkv, os, signal\n"
            f"db = fastkv.DataStore({str(store_path)!r})\n"
            f"for i in range(300): db.put(f'new{{i}}', {{'n': i}})\n"
            f"db.delete('k1'); db.touch('k2', 50)\n"
            f"os.kill(os.getpid(), getattr(signal, 'SIGKILL', signal.SIGTERM))\n")
    res = subprocess.run([sys.executable, "-c", code], timeout=60)
    # on Windows os.kill is TerminateProcess, with the signal as exit code
    assert res.returncode == (signal.SIGTERM if sys.platform == "win32" else -signal.SIGKILL)
    expected = truth(store_path, tmp_path)
    with DataStore(store_path) as db:
        st = db.stats()
        assert st["open_path"] == "snapshot"
        assert st["open_scanned_bytes"] == store_path.stat().st_size - size > 0
        assert contents(db) == expected
        assert "k1" not in db and db.read("new299") == {"n": 299}


def reopen_matches_truth(path: Path, tmp: Path, expect_scan: bool = True) -> str:
    expected = truth(path, tmp)
    with DataStore(path) as db:
        st = db.stats()
        if expect_scan:
            assert st["open_path"] == "scan", st["snapshot"]
        assert contents(db) == expected
        return str(st["snapshot"])


def test_deleted_snapshot_means_a_full_scan(store_path: Path, tmp_path: Path) -> None:
    fill(store_path, 500)
    snap_of(store_path).unlink()
    assert reopen_matches_truth(store_path, tmp_path) == "missing"


def test_truncated_snapshots_are_refused(store_path: Path, tmp_path: Path) -> None:
    fill(store_path, 500)
    original = snap_of(store_path).read_bytes()
    for cut in (0, 1, 50, 95, 96, 97, len(original) // 2, len(original) - 4, len(original) - 1):
        snap_of(store_path).write_bytes(original[:cut])
        reopen_matches_truth(store_path, tmp_path)
        snap_of(store_path).write_bytes(original)  # each reopen may rewrite it


def test_a_flipped_bit_anywhere_is_refused(store_path: Path, tmp_path: Path) -> None:
    fill(store_path, 300)
    original = snap_of(store_path).read_bytes()
    rng = random.Random(5)
    offsets = list(range(0, 100)) + rng.sample(range(100, len(original)), 60)
    expected = truth(store_path, tmp_path)
    for off in offsets:
        damaged = bytearray(original)
        damaged[off] ^= 1 << rng.randrange(8)
        snap_of(store_path).write_bytes(bytes(damaged))
        with DataStore(store_path) as db:
            assert db.stats()["open_path"] == "scan", off
            assert contents(db) == expected
        snap_of(store_path).write_bytes(original)


def test_a_large_table_read_ahead_gives_the_same_answers(store_path: Path, tmp_path: Path) -> None:
    """A table of a megabyte or more is read by a helper thread ahead of
    the checks: loaded when whole, refused when damaged in its first,
    middle or last chunk, and the answers always those of a full scan."""
    with DataStore(store_path) as db:
        for i in range(150_000):
            db.create(f"k{i}", {"i": i}, ttl=3600 if i % 4 == 0 else None)
        for i in range(0, 150_000, 7):
            db.delete(f"k{i}")
    original = snap_of(store_path).read_bytes()
    assert len(original) > 2 * 2**20
    expected = truth(store_path, tmp_path)
    with DataStore(store_path) as db:
        assert db.stats()["open_path"] == "snapshot"
        assert contents(db) == expected
    chunk = 256 * 1024
    for off in (SNAP_HEAD + 5, SNAP_HEAD + chunk + 3, len(original) // 2, len(original) - chunk // 2,
                len(original) - 9):
        damaged = bytearray(original)
        damaged[off] ^= 0x04
        snap_of(store_path).write_bytes(bytes(damaged))
        with DataStore(store_path) as db:
            assert db.stats()["open_path"] == "scan", off
            assert contents(db) == expected
        snap_of(store_path).write_bytes(original)


def test_a_snapshot_from_another_store_is_refused(tmp_path: Path) -> None:
    a, b = tmp_path / "a.fkv", tmp_path / "b.fkv"
    fill(a, 400, seed=1)
    fill(b, 400, seed=2)
    shutil.copyfile(snap_of(b), snap_of(a))
    assert reopen_matches_truth(a, tmp_path) == "made for another data file"


def test_a_snapshot_from_before_a_compaction_is_refused(store_path: Path, tmp_path: Path) -> None:
    fill(store_path, 400)
    old = snap_of(store_path).read_bytes()
    with DataStore(store_path) as db:
        db.compact()  # a new file with a new identity, and its own snapshot
    snap_of(store_path).write_bytes(old)
    assert reopen_matches_truth(store_path, tmp_path) == "made for another data file"


def test_an_older_snapshot_of_the_same_file_still_gives_the_right_answers(
        store_path: Path, tmp_path: Path) -> None:
    fill(store_path, 400)
    old = snap_of(store_path).read_bytes()
    with DataStore(store_path) as db:
        for i in range(100):
            db.put(f"k{i}", {"later": i})
        db.delete("k3")
    snap_of(store_path).write_bytes(old)  # covers a prefix of the log
    expected = truth(store_path, tmp_path)
    with DataStore(store_path) as db:
        assert db.stats()["open_path"] == "snapshot"  # valid for its prefix
        assert db.stats()["open_scanned_bytes"] > 0
        assert contents(db) == expected


def test_a_snapshot_newer_than_the_log_is_refused(store_path: Path, tmp_path: Path) -> None:
    fill(store_path, 400)
    with open(store_path, "r+b") as f:  # the log loses its last records
        f.truncate(store_path.stat().st_size - 500)
    status = reopen_matches_truth(store_path, tmp_path)
    assert status in ("covers more than the data file holds",
                      "the last record it covers differs in the data file")


def test_an_older_log_under_a_newer_snapshot_is_refused(store_path: Path, tmp_path: Path) -> None:
    fill(store_path, 400)
    older_log = store_path.read_bytes()
    with DataStore(store_path) as db:
        db.put("k2", {"v": "new"})  # the log grows; the snapshot is rewritten
    newer_snap = snap_of(store_path).read_bytes()
    store_path.write_bytes(older_log + b"\0" * 200)  # same identity, other tail
    snap_of(store_path).write_bytes(newer_snap)
    expected_status = reopen_matches_truth  # a full scan drops the zeros as a torn tail
    assert expected_status(store_path, tmp_path) == (
        "made for another history of the data file")


def test_garbage_of_the_right_size_is_refused(store_path: Path, tmp_path: Path) -> None:
    fill(store_path, 300)
    size = snap_of(store_path).stat().st_size
    snap_of(store_path).write_bytes(random.Random(3).randbytes(size))
    assert reopen_matches_truth(store_path, tmp_path) == "bad header"


def layout(snap: bytes | bytearray) -> tuple[int, int, int]:
    """Slots, slots per block and where the slots start (snapshot.c)."""
    cap, per = struct.unpack_from("<Q", snap, 56)[0], struct.unpack_from("<I", snap, 20)[0]
    return cap, per, SNAP_HEAD + 16 * (cap // per) + 4


def reseal(data: bytearray) -> bytes:
    """Fix up every CRC of a snapshot whose fields were changed."""
    cap, per, body = layout(data)
    for b in range(cap // per):
        block = bytes(data[body + 8 * per * b: body + 8 * per * (b + 1)])
        struct.pack_into("<I", data, SNAP_HEAD + 16 * b, _core._crc32c(block))
    struct.pack_into("<I", data, body - 4, _core._crc32c(bytes(data[:body - 4])))
    return bytes(data)


def test_a_crafted_table_with_a_valid_checksum_is_refused(store_path: Path, tmp_path: Path) -> None:
    """Fields changed and the checksums fixed up: the table checks still
    catch an entry out of range, wrong counts, and an unreachable entry."""
    fill(store_path, 300)
    original = bytearray(snap_of(store_path).read_bytes())
    cap, _, body = layout(original)
    slots = [struct.unpack_from("<II", original, body + 8 * i) for i in range(cap)]
    entry = next(i for i, (_, loc) in enumerate(slots) if loc > 1)
    crafted = []
    d = bytearray(original)  # an offset past the end of the log
    struct.pack_into("<II", d, body + 8 * entry, slots[entry][0], 0x7FFFFFF0)
    crafted.append(d)
    d = bytearray(original)  # one entry more than the table holds
    struct.pack_into("<Q", d, 64, struct.unpack_from("<Q", original, 64)[0] + 1)
    crafted.append(d)
    # an entry moved past an empty slot, where probing from its home stops
    # before reaching it (its old slot emptied: the counts stay right)
    empties = [i for i in range(entry + 1, cap) if slots[i][1] == 0]
    d = bytearray(original)
    struct.pack_into("<II", d, body + 8 * empties[1], *slots[entry])
    struct.pack_into("<II", d, body + 8 * entry, 0, 0)
    crafted.append(d)
    for data in crafted:
        snap_of(store_path).write_bytes(reseal(data))
        assert reopen_matches_truth(store_path, tmp_path) == "table failed its checks"


@pytest.mark.parametrize("version", [1, 2])
def test_a_store_of_an_older_format_opens_and_is_upgraded_at_close(tmp_path: Path,
                                                                   version: int) -> None:
    """A file written before file ids (version 1) or before the sessions'
    list (version 2) existed: it opens by a scan, reads and writes as any
    store, and its first clean close rewrites it in format 3, which then
    reopens from a snapshot."""
    path = tmp_path / f"v{version}.fkv"
    file_id = 0 if version == 1 else 0x1234567
    header = bytearray(b"\x89FKV\r\n\x1a\n"
                       + struct.pack("<IIQI", version, 32, 1_700_000_000_000, file_id))
    header += struct.pack("<I", _core._crc32c(bytes(header)))

    def record(key: str, value: bytes) -> bytes:
        body = struct.pack("<BBHQ", 1, len(key), len(value), 0) + key.encode() + value
        return struct.pack("<I", _core._crc32c(body)) + body

    path.write_bytes(bytes(header) + record("a", b'{"v":1}') + record("b", b'{"v":2}'))
    with DataStore(path) as db:
        assert db.stats()["snapshot"].startswith("data file of an older format")
        assert db.read("a") == {"v": 1} and db.read("b") == {"v": 2}
        db.put("c", {"v": 3})
    data = path.read_bytes()
    assert struct.unpack_from("<II", data, 8) == (3, FILE_HEAD)
    with DataStore(path) as db:
        assert db.stats()["open_path"] == "snapshot"
        assert {k: db.read(k) for k in db} == {"a": {"v": 1}, "b": {"v": 2}, "c": {"v": 3}}


def test_sigkill_rounds_reopen_right_and_scan_only_the_tail(tmp_path: Path) -> None:
    path = tmp_path / "crash.fkv"
    fill(path, 300)
    rounds = int(os.environ.get("FASTKV_CRASH_ROUNDS", "50")) // 5
    rng = random.Random(8)
    for r in range(rounds):
        code = (f"import fastkv, random, sys\n"
                f"rng = random.Random({r})\n"
                f"db = fastkv.DataStore({str(path)!r})\n"
                f"print('ready', flush=True)\n"
                f"i = 0\n"
                f"while True:\n"
                f"    db.put(f'r{r}:{{i % 50}}', {{'i': i}}); i += 1\n"
                f"    if i % 500 == 0: db.close(); db = fastkv.DataStore({str(path)!r})\n")
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.05, 0.3))
        proc.kill()
        proc.wait(timeout=60)
        expected = truth(path, tmp_path)
        with DataStore(path) as db:
            assert contents(db) == expected
            st = db.stats()
            if st["snapshot"] in ("made for another data file", "its save was cut short"):
                # the file grew past the automatic compaction's threshold and
                # was rewritten (a new file id) after the last close, or the
                # kill came while a close wrote the snapshot over: the
                # snapshot is rightly refused and the whole file scanned
                assert st["open_path"] == "scan"
                continue
            assert st["open_path"] == "snapshot", st["snapshot"]
            assert st["open_scanned_bytes"] < st["file_bytes"]


def test_background_snapshots_bound_the_scan_after_sigkill(tmp_path: Path) -> None:
    """A store written without a close saves snapshots on its own, off the
    lock: after a kill at any moment (a snapshot may be half written),
    every acknowledged create is there and open scans only the log past
    the newest snapshot that was saved in the background."""
    rng = random.Random(21)
    value = "v" * 2000
    for r in range(int(os.environ.get("FASTKV_CRASH_ROUNDS", "50")) // 10):
        path = tmp_path / f"bg{r}.fkv"
        fill(path, 300, seed=r)
        code = (f"import fastkv, sys\n"
                f"db = fastkv.DataStore({str(path)!r})\n"
                f"for i in range(30000):\n"
                f"    db.create(f'n{{i}}', {{'i': i, 'v': {value!r}}})\n"
                f"    if i % 100 == 99: print(i + 1, db.stats()['snapshots_written'], flush=True)\n")
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        # killed at a random point once one has been saved: later ones may
        # be half written
        target, acked, saved = rng.randrange(2500, 5000), 0, 0
        while acked < target or saved == 0:
            line = proc.stdout.readline()
            assert line, f"the writer ended early: {proc.wait()}, {acked} written, {saved} saved"
            acked, saved = map(int, line.split())
        proc.kill()
        proc.wait(timeout=60)
        covered = struct.unpack_from("<Q", snap_of(path).read_bytes(), 40)[0]
        assert covered >= 4 * 2**20  # not the snapshot of fill()'s close
        expected = truth(path, tmp_path)
        with DataStore(path) as db:
            st = db.stats()
            assert st["open_path"] == "snapshot", st["snapshot"]
            torn = st["torn_bytes_dropped"]  # the kill may cut an append short
            assert st["open_scanned_bytes"] == st["file_bytes"] + torn - covered
            assert contents(db) == expected
            for i in range(acked):
                assert db.read(f"n{i}")["i"] == i


def test_background_snapshots_of_a_bulk_load_write_under_twice_the_final_table(
        store_path: Path) -> None:
    """One is saved each time the log doubles, so the tables they write grow
    by half each time: all of them together stay under twice the last."""
    value = {"v": "v" * 2000}
    with DataStore(store_path) as db:
        for i in range(40_000):  # about 80 MiB of log: four or five saves
            db.create(f"k{i}", value)
        st = db.stats()
        assert st["snapshots_written"] >= 3, st
        assert 0 < st["snapshot_table_bytes"] <= 2 * st["index_bytes"], st


def test_close_writes_the_snapshot_over_in_place_unless_it_has_another_name(
        store_path: Path, tmp_path: Path) -> None:
    """A close that saves a table of the same size rewrites the snapshot's
    bytes in place; a snapshot that is also reachable by another name (a
    hard link, a symbolic link) is replaced instead, leaving that other
    file as it was; a table that grew gets a new file."""
    fill(store_path, 500)
    snap = snap_of(store_path)
    inode = snap.stat().st_ino
    with DataStore(store_path) as db:
        db.put("k2", {"changed": 1})
    assert snap.stat().st_ino == inode
    assert reopen_matches_truth(store_path, tmp_path, expect_scan=False) == "loaded"

    other = tmp_path / "linked.idx"
    os.link(snap, other)
    kept = other.read_bytes()
    with DataStore(store_path) as db:
        db.put("k3", {"changed": 2})
    assert snap.stat().st_ino != other.stat().st_ino and other.read_bytes() == kept
    assert reopen_matches_truth(store_path, tmp_path, expect_scan=False) == "loaded"

    if sys.platform != "win32":  # symbolic links need a privilege there
        target = tmp_path / "target.idx"
        target.write_bytes(snap.read_bytes())
        snap.unlink()
        snap.symlink_to(target)
        kept = target.read_bytes()
        with DataStore(store_path) as db:
            db.put("k4", {"changed": 3})
        assert not snap.is_symlink() and target.read_bytes() == kept
        assert reopen_matches_truth(store_path, tmp_path, expect_scan=False) == "loaded"

    size = snap.stat().st_size
    with DataStore(store_path) as db:
        for i in range(5000):
            db.put(f"more{i}", {"i": i})
    assert snap.stat().st_size > size
    assert reopen_matches_truth(store_path, tmp_path, expect_scan=False) == "loaded"


def test_a_close_killed_while_it_writes_the_snapshot_over(tmp_path: Path) -> None:
    """The kill comes while a close is rewriting the snapshot in place (the
    parent watches its first bytes, which the close marks before anything
    else): the next open refuses it, says so, scans, and loses nothing."""
    path = tmp_path / "killed.fkv"
    with DataStore(path) as db:  # a 4 MB table: the rewrite lasts milliseconds
        for i in range(200_000):
            db.put(f"key{i}", {"i": i})
    snap = snap_of(path)
    cut = rounds = 0
    while cut < 2 and rounds < 8:  # a kill may land after the rewrite: then it tells nothing
        r = rounds
        rounds += 1
        code = (f"import fastkv\n"
                f"db = fastkv.DataStore({str(path)!r})\n"
                f"db.put('round{r}', {{'r': {r}}})\n"
                f"print('closing', flush=True)\n"
                f"db.close()\n")
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline() == "closing\n"
        with open(snap, "rb", buffering=0) as f:
            def magic() -> bytes:
                f.seek(0)
                return f.read(8)

            while proc.poll() is None and magic() != b"FKVSNAP~":
                pass
            proc.kill()
            proc.wait(timeout=60)
            marked = magic() == b"FKVSNAP~"
        cut += marked
        with DataStore(path) as db:
            st = db.stats()
            if marked:
                assert (st["snapshot"], st["open_path"]) == ("its save was cut short", "scan")
            assert len(db) == 200_000 + r + 1
            assert all(db.read(f"round{i}") == {"r": i} for i in range(r + 1))
            assert db.read("key199999") == {"i": 199999}
    assert cut >= 2, f"the kill landed inside the rewrite in only {cut} of {rounds} rounds"
    expected = truth(path, tmp_path)
    with DataStore(path) as db:
        assert db.stats()["open_path"] == "snapshot"
        assert contents(db) == expected


def read_each(db: DataStore, keys: list[str]) -> dict[str, Any]:
    """Every key looked up on its own (reads only: no call that loads the
    whole table), the missing ones left out."""
    found = {}
    for k in keys:
        try:
            found[k] = db.read_with_deadline(k)
        except fastkv.KeyNotFoundError:
            pass
    return found


def many(path: Path, n: int = 30_000) -> list[str]:
    """A store whose table spans many blocks; the keys ever written."""
    with DataStore(path) as db:
        for i in range(n):
            db.create(f"k{i}", {"i": i}, ttl=3600 if i % 3 == 0 else None)
        for i in range(0, n, 7):
            db.delete(f"k{i}")
    return [f"k{i}" for i in range(n)] + [f"absent{i}" for i in range(200)]


def test_a_reopen_reads_only_the_blocks_its_reads_need(store_path: Path, tmp_path: Path) -> None:
    keys = many(store_path)
    expected = truth(store_path, tmp_path)
    with DataStore(store_path) as db:
        checked, total = _core._debug_snapshot_blocks(db)
        assert (checked, total) == (0, 8)  # 65,536 slots in blocks of 8,192
        assert db.read("k1") == {"i": 1}
        checked, _ = _core._debug_snapshot_blocks(db)
        assert checked in (1, 2)  # the home block, and the next if the path runs on
        got = read_each(db, random.Random(4).sample(keys, len(keys)))
        assert got == expected
        assert _core._debug_snapshot_blocks(db) == (0, 0)  # all in: the file let go
        st = db.stats()
        assert st["open_path"] == "snapshot" and st["snapshot"] == "loaded"


def test_any_other_call_loads_the_rest_first(store_path: Path, tmp_path: Path) -> None:
    keys = many(store_path)
    for call in ("put", "delete", "iterate", "len", "stats", "compact"):
        expected = truth(store_path, tmp_path)
        with DataStore(store_path) as db:
            assert db.read("k1") == {"i": 1}
            assert _core._debug_snapshot_blocks(db)[0] > 0
            if call == "put":
                db.put("k2", {"i": "two"})
                expected["k2"] = ({"i": "two"}, None)
            elif call == "delete":
                db.delete("k4")
                del expected["k4"]
            elif call == "iterate":
                assert sorted(db) == sorted(expected)
            elif call == "len":
                assert len(db) == len(expected)
            elif call == "stats":
                assert db.stats()["open_path"] == "snapshot"
            else:
                db.compact()
            assert _core._debug_snapshot_blocks(db) == (0, 0), call
            assert read_each(db, keys) == expected
        with DataStore(store_path) as db:
            assert read_each(db, keys) == expected, call


def damage_block(path: Path, block: int, how: str) -> None:
    snap = bytearray(snap_of(path).read_bytes())
    cap, per, body = layout(snap)
    start = body + 8 * per * block
    if how == "bit":  # its CRC no longer matches
        snap[start + 8 * 100 + 5] ^= 0x20
        snap_of(path).write_bytes(bytes(snap))
        return
    # an entry made unreachable, every CRC fixed up: only the slot checks see it
    slots = [struct.unpack_from("<II", snap, start + 8 * i) for i in range(per)]
    i = next(i for i in range(per - 1) if slots[i][1] > 1 and slots[i + 1][1] == 0)
    j = next(j for j in range(i + 2, per) if slots[j][1] == 0)
    struct.pack_into("<II", snap, start + 8 * (j + 1 if j + 1 < per else j), *slots[i])
    struct.pack_into("<II", snap, start + 8 * i, 0, 0)
    snap_of(path).write_bytes(reseal(snap))


@pytest.mark.parametrize("how, why", [("bit", "checksum failed"),
                                      ("crafted", "table failed its checks")])
def test_a_bad_block_found_by_a_read_means_a_full_scan(
        store_path: Path, tmp_path: Path, how: str, why: str) -> None:
    keys = many(store_path)
    original = snap_of(store_path).read_bytes()
    expected = truth(store_path, tmp_path)
    for block in (0, 3, 7):
        damage_block(store_path, block, how)
        with DataStore(store_path) as db:
            # reads that need other blocks are answered from the snapshot;
            # the first that needs the bad one scans the log instead
            assert read_each(db, keys) == expected
            assert _core._debug_snapshot_blocks(db) == (0, 0)
            st = db.stats()
            assert (st["open_path"], st["snapshot"]) == ("scan", why), block
            assert st["open_scanned_bytes"] == st["file_bytes"] - FILE_HEAD
        with DataStore(store_path) as db:  # that close saved a good one
            assert db.stats()["snapshot"] == "loaded"
        snap_of(store_path).write_bytes(original)


SNAP_FUZZ = r"""
import os, random, shutil, struct, sys
import fastkv
from fastkv import DataStore, _core

workdir, seed, cases = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
base = os.path.join(workdir, "base.fkv")
with DataStore(base) as db:
    for i in range(12000):
        db.create(f"k{i}", {"i": i}, ttl=rng.choice([None, 3600]))
    for i in range(0, 12000, 9):
        db.delete(f"k{i}")
good_snap = open(base + ".idx", "rb").read()
# the same file with log past the snapshot, as a crash leaves it
tailed = os.path.join(workdir, "tailed.fkv")
shutil.copyfile(base, tailed)
shutil.copyfile(base + ".idx", tailed + ".idx")
WRITER = (
    "import fastkv, os, sys\n"
    "db = fastkv.DataStore(sys.argv[1])\n"
    "for i in range(0, 12000, 4): db.put(f'k{i}', {'again': i})\n"
    "for i in range(1, 12000, 10): db.delete(f'k{i}') if f'k{i}' in db else None\n"
    "for i in range(800): db.create(f't{i}', {'t': i})\n"
    "os._exit(0)\n")
import subprocess
subprocess.run([sys.executable, "-c", WRITER, tailed], check=True)
keys = [f"k{i}" for i in range(12000)] + [f"t{i}" for i in range(800)] + ["absent"]

def answers(db, sample):
    out = {}
    for k in sample:
        try:
            out[k] = db.read_with_deadline(k)
        except fastkv.KeyNotFoundError:
            out[k] = None
    return out

truths = {}
for src in (base, tailed):
    alone = os.path.join(workdir, "alone.fkv")
    shutil.copyfile(src, alone)
    with DataStore(alone) as db:
        truths[src] = answers(db, keys)
    os.unlink(alone)

def reseal(d):
    cap, per = struct.unpack_from("<Q", d, 56)[0], struct.unpack_from("<I", d, 20)[0]
    if per == 0 or cap % per or cap > 1 << 20:
        return d
    body = 104 + 16 * (cap // per) + 4
    if body + 8 * cap != len(d):
        return d
    for b in range(cap // per):
        blk = bytes(d[body + 8 * per * b: body + 8 * per * (b + 1)])
        struct.pack_into("<I", d, 104 + 16 * b, _core._crc32c(blk))
    struct.pack_into("<I", d, body - 4, _core._crc32c(bytes(d[:body - 4])))
    return d

def mutate():
    d = bytearray(good_snap)
    kind = rng.randrange(6)
    if kind == 0:  # random bytes anywhere
        for _ in range(rng.randrange(1, 20)):
            d[rng.randrange(len(d))] = rng.randrange(256)
    elif kind == 1:  # truncated
        del d[rng.randrange(len(d)):]
    elif kind == 2:  # header fields, checksums fixed up
        p = rng.randrange(0, 104, 4)
        struct.pack_into("<I", d, p, rng.choice([0, 1, 2, 0xFFFFFFFF, rng.randrange(1 << 32)]))
        reseal(d)
    elif kind == 3:  # slots rewritten, checksums fixed up
        cap, per = struct.unpack_from("<Q", d, 56)[0], struct.unpack_from("<I", d, 20)[0]
        body = 104 + 16 * (cap // per) + 4
        for _ in range(rng.randrange(1, 30)):
            i, j = rng.randrange(cap), rng.randrange(cap)
            op = rng.randrange(4)
            if op == 0:  # swap two slots
                a, b = d[body + 8 * i: body + 8 * i + 8], d[body + 8 * j: body + 8 * j + 8]
                d[body + 8 * i: body + 8 * i + 8], d[body + 8 * j: body + 8 * j + 8] = b, a
            elif op == 1:  # emptied
                d[body + 8 * i: body + 8 * i + 8] = bytes(8)
            elif op == 2:  # a random word
                struct.pack_into("<I", d, body + 8 * i + rng.choice([0, 4]), rng.randrange(1 << 32))
            else:  # every slot filled: probing must still stop
                d[body:] = d[body + 8 * i: body + 8 * i + 8] * cap
        reseal(d)
    elif kind == 4:  # garbage of the right size
        d = bytearray(os.urandom(len(d)))
    else:  # the good one: must load
        pass
    return bytes(d), kind

loaded = 0
for case in range(cases):
    path = os.path.join(workdir, f"case{case % 3}.fkv")
    src = rng.choice([base, tailed])
    truth = truths[src]
    shutil.copyfile(src, path)
    snap, kind = mutate()
    with open(path + ".idx", "wb") as f:
        f.write(snap)
    sample = rng.sample(keys, 400) + ["absent"]
    with DataStore(path) as db:
        got = answers(db, sample)
        bad = {k: (got[k], truth[k]) for k in sample if got[k] != truth[k]}
        assert not bad, f"case {case} kind {kind}: {list(bad.items())[:3]}"
        st = db.stats()
        assert kind != 5 or st["snapshot"] == "loaded", st
        loaded += st["snapshot"] == "loaded"
        assert {k: db.read_with_deadline(k) for k in db} == {k: v for k, v in truth.items() if v}
print(loaded)
"""


@pytest.mark.parametrize("seed", [1, 2])
def test_fuzzed_snapshots_never_crash_hang_or_answer_wrong(tmp_path: Path, seed: int) -> None:
    cases = int(os.environ.get("FASTKV_FUZZ_CASES", "300")) // 3
    res = subprocess.run([sys.executable, "-c", SNAP_FUZZ, str(tmp_path), str(seed), str(cases)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"seed {seed}: exit {res.returncode}\n{res.stderr[-3000:]}"
    assert int(res.stdout) > 0  # the unchanged ones loaded


def crash_after(path: Path, code: str) -> None:
    """Run code against the store in another process and SIGKILL it."""
    full = (f"import fastkv, os, signal\n"
            f"db = fastkv.DataStore({str(path)!r})\n{code}\n"
            f"os.kill(os.getpid(), getattr(signal, 'SIGKILL', signal.SIGTERM))\n")
    subprocess.run([sys.executable, "-c", full], timeout=120)


TAIL = """
for i in range(1, 30000, 5): db.put(f"k{i}", {"again": i})
for i in range(2, 30000, 17): db.delete(f"k{i}") if f"k{i}" in db else None
for i in range(3000): db.create(f"new{i}", {"n": i})
for i in range(5, 30000, 19): db.touch(f"k{i}", 7200) if f"k{i}" in db else None
"""


def test_damage_past_the_snapshot_is_judged_as_a_full_scan_judges_it(
        store_path: Path, tmp_path: Path) -> None:
    """The log past the snapshot is read through the data file's mapping:
    a record damaged in its middle still refuses the open, at the offset a
    full scan names, and a last record cut short is still a torn tail."""
    fill(store_path, 500)
    covered = store_path.stat().st_size
    crash_after(store_path, "for i in range(2000): db.put(f'new{i}', {'n': i})")
    # the log, without the room for appends the crash left (zeros; the last record ends in "}")
    data = store_path.read_bytes().rstrip(b"\0")
    damaged = bytearray(data)
    damaged[covered + (len(data) - covered) // 2] ^= 0x40
    store_path.write_bytes(damaged)
    with pytest.raises(fastkv.CorruptionError) as through_map:
        DataStore(store_path)
    alone = tmp_path / "alone" / store_path.name  # no snapshot: a full scan
    alone.parent.mkdir()
    alone.write_bytes(damaged)
    with pytest.raises(fastkv.CorruptionError) as full_scan:
        DataStore(alone)
    def where(e: pytest.ExceptionInfo[fastkv.CorruptionError]) -> str:
        return str(e.value).split(" is damaged ")[1]

    assert where(through_map) == where(full_scan) and "offset" in where(full_scan)

    store_path.write_bytes(data[:-7])
    with DataStore(store_path) as db:
        st = db.stats()
        assert st["open_path"] == "snapshot" and st["torn_bytes_dropped"] > 0
        assert db.read("new1998") == {"n": 1998} and "new1999" not in db


@pytest.mark.parametrize("then", ["reads", "a write", "iteration"])
def test_after_a_crash_the_log_past_the_snapshot_waits_for_its_blocks(
        store_path: Path, tmp_path: Path, then: str) -> None:
    """Open scans the log written after the snapshot but applies each of
    its records only when a read first needs the record's home block (or
    any other call needs the whole table): every answer is a full scan's."""
    keys = many(store_path) + [f"new{i}" for i in range(3000)]
    crash_after(store_path, TAIL)  # about 12,000 records: fewer than 65,536 / 4
    expected = truth(store_path, tmp_path)
    with DataStore(store_path) as db:
        assert _core._debug_snapshot_blocks(db) == (0, 8)
        order = random.Random(then).sample(keys, len(keys))
        if then == "reads":
            assert read_each(db, order) == expected
        else:
            assert read_each(db, order[:50]) == {k: v for k, v in expected.items()
                                                 if k in order[:50]}
            if then == "a write":
                db.put("k3", {"last": True})
                expected["k3"] = ({"last": True}, None)
            else:
                assert sorted(db) == sorted(expected)
            assert _core._debug_snapshot_blocks(db) == (0, 0)
            assert read_each(db, keys) == expected
        st = db.stats()
        assert st["open_path"] == "snapshot" and st["open_scanned_bytes"] > 0
        assert len(db) == len(expected)
        assert st["live_bytes"] + st["dead_bytes"] == st["file_bytes"]
    with DataStore(store_path) as db:  # and what close saved
        assert db.stats()["open_scanned_bytes"] == 0
        assert read_each(db, keys) == expected


@pytest.mark.parametrize("crashed", [False, True])
def test_asyncio_reads_load_blocks_in_a_worker_thread(
        store_path: Path, tmp_path: Path, crashed: bool) -> None:
    """A read that may not wait (asyncio's inline try, holding the GIL) and
    needs a block still to load, or records past the snapshot still to
    apply, answers 'would wait' and is done in a worker thread instead."""
    import asyncio

    from fastkv.aio import AsyncDataStore

    keys = many(store_path) + [f"new{i}" for i in range(3000)]
    if crashed:
        crash_after(store_path, TAIL)
    expected = truth(store_path, tmp_path)

    async def main() -> dict[str, Any]:
        db = await AsyncDataStore.open(store_path)
        try:
            assert _core._debug_snapshot_blocks(db.sync_store) == (0, 8)
            got = {}
            for k in random.Random(9).sample(keys, len(keys)):
                value = await db.get(k, None)
                contained = await db.contains(k)
                assert contained == (value is not None), k
                if value is not None:
                    got[k] = value
            assert _core._debug_snapshot_blocks(db.sync_store) == (0, 0)
            return got
        finally:
            await db.close()

    assert asyncio.run(main()) == {k: v for k, (v, _) in expected.items()}

"""Two histories of one data file never confuse a sidecar.

A history forks when a copy of a data file is put back and written
differently from the original: the file keeps its identity (file id,
creation time), and with a repeatable workload its length and its last
record as well. Each test builds two such histories, gives the data file of
one the sidecar of the other (or of its next state), reopens it in a child
process and compares everything the store answers with a model of the
history the data file holds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

from fastkv import DataStore
from snapshot_files import snap_of

Files = tuple[bytes, Optional[bytes]]  # a data file and its sidecar
Model = dict[str, Any]

LAST = ("last", {"v": "the same record in every history"})
PAD = "x" * 60


def value(i: int) -> dict[str, Any]:
    return {"n": i % 1000, "pad": PAD}  # the same size for every i


def save(path: Path) -> Files:
    idx = snap_of(path)
    return path.read_bytes(), idx.read_bytes() if idx.exists() else None


def restore(path: Path, files: Files) -> None:
    path.write_bytes(files[0])
    if files[1] is None:
        snap_of(path).unlink(missing_ok=True)
    else:
        snap_of(path).write_bytes(files[1])


WRITER = r"""
import fastkv, json, os, signal, sys
path, durability, crash = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
writes = json.loads(sys.stdin.read())
db = fastkv.DataStore(path, durability=durability)
for key, value in writes:
    db.put(key, value)
if crash:  # no clean close: the sidecar keeps the snapshot, plus hints
    os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
db.close()
"""

READER = r"""
import fastkv, json, sys
with fastkv.DataStore(sys.argv[1], durability=sys.argv[2]) as db:
    keys = list(db)
    out = {"items": {k: db.read(k) for k in keys}, "len": len(db), "iterated": len(keys),
           "prefixed": sorted(db.keys(prefix="b")), "pairs": len(list(db.items())),
           "snapshot": db.stats()["snapshot"], "hinted": db.stats()["open_hinted_records"]}
print(json.dumps(out))
"""


def write(path: Path, model: Model, keys: list[str], durability: str, crash: bool = False) -> None:
    """Put keys (and then the common last record) in another process."""
    writes = [(k, value(i)) for i, k in enumerate(keys)] + [LAST]
    subprocess.run([sys.executable, "-c", WRITER, str(path), durability, "1" if crash else "0"],
                   input=json.dumps(writes), text=True, timeout=120)
    model.update(writes)


def reopen_in_child(path: Path, durability: str) -> dict[str, Any]:
    res = subprocess.run([sys.executable, "-c", READER, str(path), durability],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return dict(json.loads(res.stdout))


def assert_holds(path: Path, model: Model, durability: str,
                 sidecar: str = "foreign") -> dict[str, Any]:
    """The store at path answers as model says. A foreign sidecar (of the
    other history) serves nothing: its snapshot refused, its hints too; a
    shared one (its snapshot made before the histories forked, its hints
    after) may serve its snapshot, never its hints."""
    got = reopen_in_child(path, durability)
    assert got["items"] == model
    assert got["len"] == got["iterated"] == got["pairs"] == len(model)
    assert got["prefixed"] == sorted(k for k in model if k.startswith("b"))
    if sidecar != "own":
        assert got["hinted"] == 0
    if sidecar == "foreign":
        assert got["snapshot"] != "loaded", got["snapshot"]
    return got


def names(prefix: str, n: int, start: int = 0) -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(start, start + n)]


@pytest.fixture
def base(tmp_path: Path) -> tuple[Path, Files, Model]:
    path = tmp_path / "store.fkv"
    model: Model = {}
    write(path, model, names("k", 5000), "process")  # a table with room to take hints
    return path, save(path), model


@pytest.mark.parametrize("durability", ["process", "fsync"])
@pytest.mark.parametrize("crash", [False, True], ids=["closed", "killed-with-hints"])
def test_a_copy_written_differently_never_takes_the_other_sidecar(
        base: tuple[Path, Files, Model], durability: str, crash: bool) -> None:
    path, f0, m0 = base
    histories: dict[str, tuple[Files, Files, Model, Model]] = {}
    for h in ("a", "b"):
        restore(path, f0)
        model = dict(m0)
        write(path, model, names(h, 600), durability, crash)  # over 512: hints
        first, model1 = save(path), dict(model)
        write(path, model, names(h, 20, 600), durability, crash)  # its next state
        histories[h] = (first, save(path), model1, model)
    (a1, a2, ma1, ma2), (b1, b2, mb1, mb2) = histories["a"], histories["b"]
    # the attack's premise: the same length and the same last record
    assert len(a1[0]) == len(b1[0]) and a1[0][-120:] == b1[0][-120:]
    assert len(a2[0]) == len(b2[0]) and a2[0][-120:] == b2[0][-120:]
    # killed, each history's sidecar holds the snapshot from before the fork
    kind = "shared" if crash else "foreign"
    for data, sidecar, model in [(b1, a1, mb1), (a1, b1, ma1), (b1, a2, mb1), (b2, a1, mb2),
                                 (b2, a2, mb2), (a2, b2, ma2)]:
        restore(path, (data[0], sidecar[1]))
        assert_holds(path, model, durability, kind)
    # and each history's own sidecar still serves it, hints and all
    restore(path, b1)
    got = assert_holds(path, mb1, durability, "own")
    assert got["snapshot"] == "loaded"
    assert got["hinted"] == (512 if crash and durability == "process" else 0)


def test_a_copy_taken_while_the_store_writes_is_a_history_of_its_own(
        base: tuple[Path, Files, Model], tmp_path: Path) -> None:
    """The copy holds part of a session's writes; the original goes on in that
    session, the copy is opened and written with records of the same sizes."""
    path, f0, m0 = base
    restore(path, f0)
    model_a = dict(m0)
    db = DataStore(path)
    for i, k in enumerate(names("m", 50)):
        db.put(k, value(i))
        model_a[k] = value(i)
    db.sync()
    mid = path.read_bytes()  # as a backup tool would copy it, mid-session
    model_b = dict(model_a)
    for i, k in enumerate(names("a", 80)):
        db.put(k, value(i))
        model_a[k] = value(i)
    db.put(*LAST)
    model_a[LAST[0]] = LAST[1]
    db.close()
    a = save(path)
    restore(path, (mid, None))
    write(path, model_b, names("b", 80), "process")
    b = save(path)
    assert len(a[0]) == len(b[0]) and a[0][-120:] == b[0][-120:]
    restore(path, (b[0], a[1]))
    assert_holds(path, model_b, "process")
    restore(path, (a[0], b[1]))
    assert_holds(path, model_a, "process")


def test_a_sidecar_of_the_history_before_a_compaction(base: tuple[Path, Files, Model]) -> None:
    path, f0, m0 = base
    restore(path, f0)
    model_a = dict(m0)
    with DataStore(path) as db:
        for i, k in enumerate(names("a", 100)):
            db.put(k, value(i))
            model_a[k] = value(i)
        db.compact()
    write(path, model_a, names("a", 10, 100), "process")
    a = save(path)
    restore(path, f0)
    model_b = dict(m0)
    write(path, model_b, names("b", 100), "process")
    b = save(path)
    for data, sidecar, model in [(b, a, model_b), (a, b, model_a)]:
        restore(path, (data[0], sidecar[1]))
        assert_holds(path, model, "process")


def test_an_untouched_copy_keeps_its_snapshot(base: tuple[Path, Files, Model]) -> None:
    """The check costs nothing where nothing forked: a copy of a closed
    store, put back with its own sidecar, opens from the snapshot; after a
    crash past it, the snapshot still serves and only the tail is scanned."""
    path, f0, m0 = base
    restore(path, f0)
    assert assert_holds(path, m0, "process", "own")["snapshot"] == "loaded"
    model = dict(m0)
    write(path, model, names("c", 50), "process", crash=True)
    write(path, model, names("d", 50), "process", crash=True)  # two sessions past it
    assert assert_holds(path, model, "process", "own")["snapshot"] == "loaded"


@pytest.mark.parametrize("durability", ["process", "fsync"])
def test_a_restored_backup_is_a_history_of_its_own(base: tuple[Path, Files, Model],
                                                   tmp_path: Path, durability: str) -> None:
    """A backup copied back over the store and written, beside the store's
    sidecar; and the store written on, beside the backup's."""
    path, f0, m0 = base
    restore(path, f0)
    with DataStore(path) as db:
        backup = db.backup(tmp_path / "backups" / "b.fkv")
    copy = (backup.read_bytes(), snap_of(backup).read_bytes())
    model_a = dict(m0)
    write(path, model_a, names("a", 600), durability)
    a = save(path)
    restore(path, (copy[0], a[1]))  # restoring is copying the backup's file back
    model_b = dict(m0)
    write(path, model_b, names("b", 600), durability)
    b = save(path)
    for data, sidecar, model in [(b, a, model_b), (a, b, model_a), (a, copy, model_a)]:
        restore(path, (data[0], sidecar[1]))
        assert_holds(path, model, durability)

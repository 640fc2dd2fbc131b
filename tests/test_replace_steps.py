"""A kill at every step of a file replace leaves a whole store at the path.

Compaction, repair and a snapshot's save each end by putting a new file in
the place of an old one: one rename on POSIX; on Windows, where a rename
cannot replace an open file, several steps (src_c/file_lock_win32.c). A
child process is stopped by the core itself at each step in turn (the
test hook ends it as a kill would); the next open must find the old store
or the new one, every key there, nothing left beside it, and a store that
takes writes. Runs natively and, in CI, on Windows CPython under Wine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import fastkv
from fastkv import _core

STEPS = _core._replace_steps()
KILLED = 1 if sys.platform == "win32" else -signal.SIGKILL
NOT_REACHED = 3

CHILD = r"""
import sys
import fastkv
from fastkv import _core
path, op, step = sys.argv[1], sys.argv[2], int(sys.argv[3])
if op == "repair":
    _core._debug_kill_at_replace_step(step)
    fastkv.repair(path)
else:
    db = fastkv.DataStore(path)
    _core._debug_kill_at_replace_step(step)
    if op == "compact":
        db.compact()
    db.close()  # "close": the snapshot's save
sys.exit(3)  # the step was never reached
"""


def make_store(path: Path) -> dict[str, dict[str, object]]:
    model: dict[str, dict[str, object]] = {}
    with fastkv.DataStore(path) as db:
        for i in range(300):
            db.put(f"k{i}", {"i": i, "pad": "x" * (i % 50)})
            model[f"k{i}"] = {"i": i, "pad": "x" * (i % 50)}
        for i in range(0, 300, 3):  # garbage for the compaction to drop
            db.delete(f"k{i}")
            del model[f"k{i}"]
    return model


def run_child(path: Path, op: str, step: int) -> int:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), op, str(step)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=120)
    assert proc.returncode in (KILLED, NOT_REACHED), proc.stderr.decode(errors="replace")
    return proc.returncode


def check_whole(path: Path, model: dict[str, dict[str, object]]) -> None:
    with fastkv.DataStore(path) as db:
        assert sorted(db) == sorted(model)
        for k, v in model.items():
            assert db.read(k) == v
        db.put("after", {"ok": 1})  # and it takes writes
    with fastkv.DataStore(path) as db:
        assert db.read("after") == {"ok": 1}
        assert len(db) == len(model) + 1
    beside = sorted(p.name for p in path.parent.iterdir() if p.name != path.name
                    and not p.name.startswith(path.name + ".damaged-"))  # repair's copy
    allowed = {path.name + ".idx", path.name + ".lock"}
    assert set(beside) <= allowed, f"left beside the store: {beside}"


@pytest.mark.parametrize("op", ["compact", "repair", "close"])
def test_a_kill_at_every_step_of_a_replace_leaves_a_whole_store(tmp_path: Path, op: str) -> None:
    killed_at = []
    for step in range(1, STEPS + 1):
        path = tmp_path / f"step{step}" / "data.fkv"
        path.parent.mkdir()
        model = make_store(path)
        if op == "close":  # a save with nothing to write over: it goes through a replace
            Path(str(path) + ".idx").unlink()
        if run_child(path, op, step) == KILLED:
            killed_at.append(step)
        if step % 2:  # the commands that need a store there find it too
            assert fastkv.verify(path)["intact_records"] >= len(model)
        check_whole(path, model)
    if op == "compact":
        # the store's file is open while it compacts: every step is taken
        assert killed_at == list(range(1, STEPS + 1))
    else:
        assert killed_at[:1] == [1] and killed_at[-1] == STEPS, killed_at


def test_the_steps_are_counted_for_this_platform() -> None:
    # one rename on POSIX (before, after, after the directory's sync); four
    # moves on Windows (file_lock_win32.c)
    assert STEPS == (5 if sys.platform == "win32" else 3)


def test_a_replace_without_the_hook_runs_to_its_end(tmp_path: Path) -> None:
    path = tmp_path / "data.fkv"
    model = make_store(path)
    _core._debug_kill_at_replace_step(0)
    with fastkv.DataStore(path) as db:
        db.compact()
    check_whole(path, model)
    assert os.path.exists(path)

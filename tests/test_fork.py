"""A DataStore used in a forked child is refused, and the child never
releases the parent's lock."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import os
import sys
from pathlib import Path

import pytest

import fastkv
from fastkv import DataStore

if TYPE_CHECKING:
    from conftest import RunPython

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def run_in_child(body: Callable[[], int]) -> int:
    """Run body() in a forked child; returns its exit code (0 = all good)."""
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = body()
        except BaseException:
            code = 98
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_forked_child_is_refused(db: DataStore) -> None:
    db.create("k", {"v": 1})

    def child() -> int:
        calls: list[Callable[[], object]] = [
            lambda: db.read("k"),
            lambda: db.create("c", {}),
            lambda: db.delete("k"),
            lambda: len(db),
            lambda: "k" in db,
            lambda: list(db),
            lambda: db.stats(),
            lambda: db.compact(),
            lambda: db.sync(),
        ]
        for i, call in enumerate(calls):
            try:
                call()
                return 10 + i
            except fastkv.StoreClosedError as e:
                if "fork" not in str(e):
                    return 30 + i
        return 0

    assert run_in_child(child) == 0
    assert db.read("k") == {"v": 1}
    db.create("after", {})
    assert len(db) == 2


def test_child_cannot_open_the_parents_file(db: DataStore) -> None:
    def child() -> int:
        try:
            DataStore(db.path)
            return 1
        except fastkv.StoreLockedError:
            return 0

    assert run_in_child(child) == 0


def test_child_close_keeps_the_parents_lock(db: DataStore, run_python: RunPython) -> None:
    db.create("k", {})

    def child() -> int:
        db.close()
        return 0

    assert run_in_child(child) == 0
    res = run_python(
        "import sys, fastkv\n"
        "try:\n    fastkv.DataStore(sys.argv[1])\n"
        "except fastkv.StoreLockedError:\n    sys.exit(3)\n",
        str(db.path),
    )
    assert res.returncode == 3, res.stderr
    assert db.read("k") == {}


def test_child_can_open_its_own_store(db: DataStore, tmp_path: Path) -> None:
    other = tmp_path / "child.fkv"

    def child() -> int:
        with DataStore(other) as mine:
            mine.create("from-child", {"ok": True})
        return 0

    assert run_in_child(child) == 0
    with DataStore(other) as mine:
        assert mine.read("from-child") == {"ok": True}


def test_fork_while_another_thread_holds_the_mutex(db: DataStore) -> None:
    """A fork can copy the mutex locked; the child must not wait on it."""
    import threading

    from fastkv import _core

    db.create("k", {})
    holder = threading.Thread(target=_core._debug_hold, args=(db, 1.0))
    holder.start()
    import time

    time.sleep(0.2)
    try:

        def child() -> int:
            try:
                db.read("k")
                return 1
            except fastkv.StoreClosedError:
                return 0

        assert run_in_child(child) == 0
    finally:
        holder.join()

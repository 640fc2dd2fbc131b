"""Crash safety: SIGKILL a writer at random moments; every acknowledged
create and delete must be there after reopening."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest

import fastkv
from fastkv import DataStore

WRITER = r"""
import random, sys, fastkv
path, seed, start, compacting = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
durability = sys.argv[5]
rng = random.Random(seed)
# compacting: a small cap forces automatic compactions, plus explicit ones
db = fastkv.DataStore(path, max_file_size=256 * 1024 if compacting else 2**30,
                      durability=durability)
live = [k for k in db]
out = sys.stdout
out.write("ready\n"); out.flush()
i = start
while True:
    # say what is about to happen, do it, then acknowledge it
    # compacting: keep about 300 live keys, well under the cap, however many rounds
    if live and rng.random() < (0.7 if compacting and len(live) > 300 else 0.3):
        key = live.pop(rng.randrange(len(live)))
        out.write(f"D {key}\n"); out.flush()
        db.delete(key)
    else:
        key = f"k{i}"
        i += 1
        out.write(f"C {key}\n"); out.flush()
        db.create(key, {"i": i, "pad": "p" * rng.randrange(300)}, ttl=rng.choice([None, 3600]))
        live.append(key)
    out.write("ok\n"); out.flush()
    if compacting and rng.random() < 0.02:
        db.compact()
"""


def kill_writer_once(
    path: Path, seed: int, start: int, run_for: float, compacting: bool, durability: str
) -> tuple[list[tuple[str, str]], Optional[tuple[str, str]]]:
    """Returns the acknowledged operations and the one in flight (if any)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(seed), str(start), str(int(compacting)),
         durability],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    # the kill comes run_for after the first acknowledgement: in fsync mode
    # a first write that meets a compaction and a slow flush can take longer
    # than the shortest run_for on a busy disk
    first = [proc.stdout.readline(), proc.stdout.readline()]
    time.sleep(run_for)
    proc.kill()  # SIGKILL; TerminateProcess on Windows
    # read through the same buffered file as readline() above: communicate()
    # with a timeout would read the raw pipe and miss what is buffered
    out = "".join(first) + proc.stdout.read()
    proc.wait(timeout=60)
    assert proc.returncode == (1 if sys.platform == "win32" else -signal.SIGKILL)
    done: list[tuple[str, str]] = []
    pending: Optional[tuple[str, str]] = None
    for line in out.split("\n"):
        if line == "ok":
            assert pending is not None, out[:300]
            done.append(pending)
            pending = None
        elif line[:2] in ("C ", "D "):
            pending = (line[0], line[2:])
    return done, pending


ROUNDS = int(os.environ.get("FASTKV_CRASH_ROUNDS", "50"))  # more for a soak by hand


@pytest.mark.parametrize("durability", ["process", "fsync"])
@pytest.mark.parametrize("compacting", [False, True], ids=["appending", "compacting"])
def test_sigkill_loses_no_acknowledged_operation(
    tmp_path: Path, compacting: bool, durability: str
) -> None:
    rounds = ROUNDS
    path = tmp_path / "crash.fkv"
    created = 0
    rng = random.Random(1234)
    present: set[str] = set()
    next_key = 0
    r = -1
    # compacting: more rounds if a slow disk (fsync mode on a busy machine)
    # has not yet written several times the cap
    while (r := r + 1) < rounds or (compacting and created * 100 <= 4 * 256 * 1024
                                    and r < rounds * 5):
        ops, in_flight = kill_writer_once(
            path, seed=r, start=next_key, run_for=rng.uniform(0.02, 0.3), compacting=compacting,
            durability=durability,
        )
        assert ops, "the writer acknowledged nothing"
        for op, key in ops:
            if op == "C":
                created += 1
                present.add(key)
                next_key = max(next_key, int(key[1:]) + 1)
            else:
                present.discard(key)
        with DataStore(path) as db:
            keys = set(db)
            if in_flight is not None:
                # the operation under way at the kill may or may not have landed
                op, key = in_flight
                if op == "C":
                    next_key = max(next_key, int(key[1:]) + 1)
                    if key in keys:
                        present.add(key)
                elif key not in keys:
                    present.discard(key)
            assert keys == present, (
                f"round {r}: lost {sorted(present - keys)[:5]}, extra {sorted(keys - present)[:5]}"
            )
            for key in keys:
                value = db.read(key)
                assert value["pad"] == "p" * len(value["pad"])
            if compacting:
                assert db.stats()["file_bytes"] <= 256 * 1024
        assert not Path(str(path) + ".compact").exists()
    if compacting:  # far more was written than the cap holds: compaction ran
        assert created * 100 > 4 * 256 * 1024

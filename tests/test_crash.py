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
path, seed, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
db = fastkv.DataStore(path)
live = [k for k in db]
out = sys.stdout
i = start
while True:
    # say what is about to happen, do it, then acknowledge it
    if live and rng.random() < 0.3:
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
"""


def kill_writer_once(
    path: Path, seed: int, start: int, run_for: float
) -> tuple[list[tuple[str, str]], Optional[tuple[str, str]]]:
    """Returns the acknowledged operations and the one in flight (if any)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(seed), str(start)],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(run_for)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    done: list[tuple[str, str]] = []
    pending: Optional[tuple[str, str]] = None
    for line in out.split("\n"):
        if line == "ok":
            assert pending is not None
            done.append(pending)
            pending = None
        elif line[:2] in ("C ", "D "):
            pending = (line[0], line[2:])
    return done, pending


@pytest.mark.parametrize("rounds", [8])
def test_sigkill_loses_no_acknowledged_operation(tmp_path: Path, rounds: int) -> None:
    path = tmp_path / "crash.fkv"
    rng = random.Random(1234)
    present: set[str] = set()
    next_key = 0
    for r in range(rounds):
        ops, in_flight = kill_writer_once(path, seed=r, start=next_key, run_for=rng.uniform(0.3, 0.8))
        assert ops, "the writer acknowledged nothing"
        for op, key in ops:
            if op == "C":
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

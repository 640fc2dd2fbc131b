"""What the snapshot tests share: where a store's snapshot is, everything
a store holds, and what a full scan of a data file finds."""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path
from typing import Any

from fastkv import DataStore


# The snapshot's layout (src_c/snapshot_format.h) and its hints' (snapshot_hints.c)
SNAP_HEAD = 104  # the header; the block directory follows
HINT_HEAD = 32   # a frame's header; its entries follow
# The data file's header (record.h): where the log starts
FILE_HEAD = 128


def snap_of(path: Path) -> Path:
    return Path(str(path) + ".idx")


def with_locks(*stores: str) -> list[str]:
    """The names a folder holds for these closed stores' data files: on
    Windows each also has its lock sidecar, store + ".lock" (kept at close,
    README "Platform support")."""
    names = list(stores)
    if sys.platform == "win32":
        names += [s + ".lock" for s in stores]
    return sorted(names)


def contents(db: DataStore) -> dict[str, Any]:
    return {k: db.read_with_deadline(k) for k in db}


def truth(path: Path, tmp: Path) -> dict[str, Any]:
    """What a full scan of the data file's bytes finds (no snapshot)."""
    alone = tmp / f"truth-{random.randrange(10**9)}" / path.name
    alone.parent.mkdir()
    shutil.copyfile(path, alone)
    with DataStore(alone) as db:
        assert db.stats()["open_path"] == "scan"
        return contents(db)

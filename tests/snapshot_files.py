"""What the snapshot tests share: where a store's snapshot is, everything
a store holds, and what a full scan of a data file finds."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

from fastkv import DataStore


def snap_of(path: Path) -> Path:
    return Path(str(path) + ".idx")


def contents(db: DataStore) -> dict[str, Any]:
    return {k: db._read_with_deadline(k) for k in db}


def truth(path: Path, tmp: Path) -> dict[str, Any]:
    """What a full scan of the data file's bytes finds (no snapshot)."""
    alone = tmp / f"truth-{random.randrange(10**9)}" / path.name
    alone.parent.mkdir()
    shutil.copyfile(path, alone)
    with DataStore(alone) as db:
        assert db.stats()["open_path"] == "scan"
        return contents(db)

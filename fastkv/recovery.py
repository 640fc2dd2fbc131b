"""Checking and salvaging a store file: fastkv.verify() and fastkv.repair().

Opening a store already drops a torn tail (the last record cut short by a
crash) and refuses any other damage with CorruptionError. These two
functions are for that case. Neither runs on its own: repair is always the
user's explicit choice, because it gives up the damaged records.
"""

from __future__ import annotations

import time
from pathlib import Path

from fastkv import _core
from fastkv.locations import existing_store_path

TYPE_CHECKING = False  # typing stays unimported at run time (see locations.py)
if TYPE_CHECKING:
    from typing import Any, Optional

    from fastkv.locations import PathArg

__all__ = ["verify", "repair"]

def verify(path: PathArg, *, progress: Optional[_core.Progress] = None) -> dict[str, Any]:
    """Read every record of a store file and report what is intact.

    Takes the store's lock (so the store must not be open elsewhere) and
    never writes. The report: ``ok`` (header and every record before the
    tail intact), ``intact_records``, ``puts``, ``tombstones``, ``groups``
    (whole groups of records: transactions, batch calls), ``damaged_regions`` and ``damaged_bytes`` (bytes that are not intact
    records, before the tail), ``first_damage_offset``, ``torn_tail_bytes``
    (what opening would drop), ``live_keys``, ``header_ok``, ``file_bytes``.
    A ``fastkv._core.Progress`` passed as progress counts the bytes read,
    for another thread to show.

    Raises:
        InvalidPathError: no file at path, or it is a directory.
        CorruptionError: the file is not a fastkv store at all.
        StoreLockedError: the store is open elsewhere.
    """
    p = existing_store_path(path)
    report: dict[str, Any] = _core.verify(str(p), progress)
    report["path"] = str(p)
    return report


def repair(
    path: PathArg, *, backup: bool = True, progress: Optional[_core.Progress] = None
) -> dict[str, Any]:
    """Salvage every intact record of a damaged store into a fresh file that
    takes its place.

    Records are replayed in log order, skipping damaged bytes, and the live
    keys are written to a new file that is renamed over the old one while
    the lock is held. With ``backup`` (the default) the damaged file is kept
    beside it as ``<name>.damaged-<time>``. A key whose delete record was
    damaged comes back with its earlier value; a key whose newest record was
    damaged is lost or comes back older. Returns verify()'s report plus
    ``salvaged_keys`` and ``backup_path``. progress: as for verify().

    Raises:
        InvalidPathError: no file at path, or it is a directory.
        CorruptionError: the file is not a fastkv store at all.
        StoreLockedError: the store is open elsewhere.
        StoreIOError: the new file could not be written.
    """
    p = existing_store_path(path)
    backup_path: Optional[Path] = None
    if backup:
        backup_path = p.with_name(f"{p.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        n = 1
        while backup_path.exists():
            backup_path = p.with_name(f"{p.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
            n += 1
    report: dict[str, Any] = _core.repair(
        str(p), None if backup_path is None else str(backup_path), progress
    )
    report["path"] = str(p)
    report["backup_path"] = None if backup_path is None else str(backup_path)
    return report

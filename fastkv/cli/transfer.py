"""Moving keys out of and into a store as JSON Lines.

One line per live key::

    {"key": "session:9", "value": {"uid": 42}, "expires_at_ms": 1795314635144}

``expires_at_ms`` is the key's deadline in milliseconds since the Unix epoch,
absent for a key that never expires. It is absolute on purpose: a store
imported an hour later keeps every key's expiry to the millisecond, and keys
whose deadline passed in between are skipped, not revived.

An import reads and checks the whole file before it writes anything, so a
bad line (or, by default, a key the store already holds) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any, Callable, Iterable, Optional

import orjson

from fastkv import _core
from fastkv.store_protocol import DeadlineStore
from fastkv.errors import (
    FastKVError,
    InvalidTTLError,
    InvalidValueError,
    KeyExistsError,
    KeyExpiredError,
    KeyNotFoundError,
)

__all__ = [
    "export_jsonl",
    "import_jsonl",
    "read_jsonl",
    "apply_import",
    "ImportEntry",
    "ImportReport",
    "CONFLICT_POLICIES",
]

# What an import does with a key the store already holds.
CONFLICT_POLICIES = ("fail", "skip", "replace")

_FIELDS = frozenset(("key", "value", "expires_at_ms"))

Tick = Optional[Callable[[int], None]]


def export_jsonl(db: DeadlineStore, out: IO[bytes], *, progress: Tick = None) -> int:
    """Write every live key of db to out, sorted by key; returns how many.

    progress, if given, is called with the number of keys written so far.
    Keys that expire or are deleted (by another thread) while the export
    runs are left out.
    """
    written = 0
    dumps = orjson.dumps
    for key in sorted(db.keys()):
        try:
            value, deadline = db.read_with_deadline(key)
        except KeyNotFoundError:  # and KeyExpiredError, its subclass
            continue
        line: dict[str, Any] = {"key": key, "value": value}
        if deadline is not None:
            line["expires_at_ms"] = deadline
        out.write(dumps(line) + b"\n")
        written += 1
        if progress is not None:
            progress(written)
    return written


@dataclass
class ImportReport:
    """What an import did; filled in as it goes, so it is also right when
    a write fails half way (the store full, say)."""

    entries: int = 0           # keys in the file
    imported: int = 0          # created (replaced ones included)
    replaced: int = 0          # held before, deleted and created again
    skipped_existing: int = 0  # held before, left alone (on_conflict="skip")
    skipped_expired: int = 0   # deadline already passed


@dataclass
class ImportEntry:
    """One checked line of an import file."""

    line: int
    key: str
    value: bytes  # compact JSON, already checked
    deadline: Optional[int]


def import_jsonl(
    db: DeadlineStore,
    source: Iterable[bytes],
    *,
    on_conflict: str = "fail",
    progress: Tick = None,
    report: Optional[ImportReport] = None,
) -> ImportReport:
    """Create every key of a JSON Lines file (see export_jsonl) in db.

    on_conflict: "fail" (the default) refuses the import, before writing
    anything, if the store holds any of the keys; "skip" keeps the store's
    value; "replace" puts the file's value in its place in one step.

    Raises:
        InvalidKeyError: a line's key is bad (its number is in the message);
            nothing was written.
        InvalidValueError: a line's value is bad; nothing was written.
        ValueTooLargeError: a line's value is over 16 KiB; nothing was written.
        InvalidTTLError: a line's deadline is bad; nothing was written.
        KeyExistsError: with on_conflict="fail", a key the store holds;
            nothing was written.
        StoreFullError: a write failed; report says how far the import got.
        StoreIOError: a write failed; report says how far the import got.
    """
    return apply_import(db, read_jsonl(source), on_conflict=on_conflict, progress=progress,
                        report=report)


def apply_import(
    db: DeadlineStore,
    entries: list[ImportEntry],
    *,
    on_conflict: str = "fail",
    progress: Tick = None,
    report: Optional[ImportReport] = None,
) -> ImportReport:
    """The writing half of import_jsonl, for entries from read_jsonl (a
    caller that wants to know how many there are before it starts)."""
    if on_conflict not in CONFLICT_POLICIES:
        raise ValueError(f"on_conflict must be one of {', '.join(CONFLICT_POLICIES)}")
    report = ImportReport() if report is None else report
    if on_conflict == "fail":
        for e in entries:
            if e.key in db:
                raise KeyExistsError(
                    f"line {e.line}: key {e.key!r} is already in the store; nothing was imported"
                )
    report.entries = len(entries)
    for done, e in enumerate(entries, 1):
        _import_one(db, e, on_conflict, report)
        if progress is not None:
            progress(done)
    return report


def _import_one(db: DeadlineStore, e: ImportEntry, on_conflict: str,
                report: ImportReport) -> None:
    if e.deadline is not None and e.deadline <= _core._now_ms():
        report.skipped_expired += 1
        return
    held = e.key in db
    if held and on_conflict == "skip":
        report.skipped_existing += 1
        return
    if held and on_conflict == "replace":
        report.replaced += 1
    try:
        # put (replace=True) over a held key: never a moment without it
        db.create_until(e.key, e.value, e.deadline, replace=held)
    except KeyExpiredError:  # the deadline passed between the check and the write
        report.skipped_expired += 1
        return
    report.imported += 1


def read_jsonl(source: Iterable[bytes]) -> list[ImportEntry]:
    """Parse and check every line of an import file; the first bad one
    raises (the class import_jsonl documents), naming its line."""
    entries: list[ImportEntry] = []
    first_seen: dict[str, int] = {}
    for n, raw in enumerate(source, 1):
        if not raw.strip():
            continue
        try:
            entry = _parse_line(n, raw)
        except FastKVError as e:
            raise type(e)(f"line {n}: {e}") from None
        if entry.key in first_seen:
            raise InvalidValueError(
                f"line {n}: key {entry.key!r} is also on line {first_seen[entry.key]}; "
                "an import file holds each key once"
            )
        first_seen[entry.key] = n
        entries.append(entry)
    return entries


def _parse_line(n: int, raw: bytes) -> ImportEntry:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidValueError(f"not valid JSON ({e})") from None
    if not isinstance(obj, dict) or "key" not in obj or "value" not in obj:
        raise InvalidValueError('each line must be an object with "key" and "value"')
    unknown = set(obj) - _FIELDS
    if unknown:
        raise InvalidValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    key = obj["key"]
    _core.check_key(key)
    if not isinstance(obj["value"], dict):  # JSON text in a string is not a value here
        raise InvalidValueError(f"the value of {key!r} must be a JSON object")
    value = _core.encode_value(obj["value"], key)
    deadline = obj.get("expires_at_ms")
    if deadline is not None and (type(deadline) is not int or deadline < 1):
        raise InvalidTTLError(
            f"expires_at_ms of {key!r} must be a positive int (ms since the epoch) or null"
        )
    return ImportEntry(n, key, value, deadline)

"""The exceptions fastkv raises.

Every class derives from `FastKVError` and from the built-in exception
a Python user would catch for the same situation (``KeyError`` for a missing
key, ``ValueError`` for bad input, ``OSError`` for the file), so both
``except fastkv.KeyNotFoundError`` and ``except KeyError`` work.

This module is plain Python so the classes import, pickle and document
without the compiled extension.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing stays unimported at run time (see locations.py)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "FastKVError",
    "InvalidKeyError",
    "InvalidValueError",
    "ValueTooLargeError",
    "InvalidTTLError",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyExpiredError",
    "StoreFullError",
    "StoreLockedError",
    "StoreClosedError",
    "InvalidPathError",
    "ConfigError",
    "CorruptionError",
    "StoreIOError",
    "StoreChangedError",
    "UnauthorizedError",
    "RequestError",
    "StoreUnavailableError",
    "TransactionError",
    "ConflictError",
]


class FastKVError(Exception):
    """Base class of every error fastkv raises."""


def _show(key: object) -> str:
    """repr of a key for a message, cut short if it is long."""
    text = repr(key)
    return text if len(text) <= 44 else text[:40] + "..."


class _KeyMessage:
    """str() of a KeyError is the repr of its argument; fastkv's messages read
    better as plain text. The core raises these with (key, path), as a dict
    raises KeyError(key): the message is only formatted if someone asks,
    so a miss in a hot loop costs no string formatting."""

    _template = "{key}: {path}"
    args: tuple[Any, ...]  # from the exception class this is mixed into

    def __str__(self) -> str:
        args = self.args
        if len(args) == 2 and isinstance(args[1], str):
            return self._template.format(key=_show(args[0]), path=args[1])
        if len(args) == 1:
            return str(args[0])
        return super().__str__()


class InvalidKeyError(FastKVError, ValueError):
    """The key is not a str of 1 to 32 characters encodable as UTF-8."""


class InvalidValueError(FastKVError, ValueError):
    """The value is not a JSON object, or holds something JSON cannot represent."""


class ValueTooLargeError(InvalidValueError):
    """The value's compact JSON encoding is over 16 KiB (16,384 bytes)."""


class InvalidTTLError(FastKVError, ValueError):
    """The ttl is not an int of 1 to 315,360,000 seconds (a bool is refused)."""


class KeyExistsError(_KeyMessage, FastKVError, KeyError):
    """create() was given a key that is live. ``args[0]`` is the key."""

    _template = "key {key} already exists in {path}; delete it first"


class KeyNotFoundError(_KeyMessage, FastKVError, KeyError):
    """read() or delete() was given a key that is not in the store.
    ``args[0]`` is the key."""

    _template = "key {key} not found in {path}"


class KeyExpiredError(KeyNotFoundError):
    """read() or delete() was given a key whose time-to-live has passed."""

    _template = "key {key} has expired (its ttl has passed) in {path}"


class StoreFullError(FastKVError, OSError):
    """The write would push the data file past max_file_size, even after compaction."""


class StoreLockedError(FastKVError, OSError):
    """Another opener (a process, or a DataStore in this process) holds the file."""


class StoreClosedError(FastKVError, ValueError):
    """The store was closed, or is being used in a forked child process."""


class InvalidPathError(FastKVError, OSError):
    """The path is a directory, cannot be opened, or its parent cannot be created."""


class ConfigError(FastKVError, ValueError):
    """An option is out of range (max_file_size, durability, lock_timeout), or a
    location has a URL scheme fastkv does not know."""


class CorruptionError(FastKVError, OSError):
    """The file is not a fastkv store, or a checksum failed outside the torn tail."""


class StoreIOError(FastKVError, OSError):
    """A system call on the data file failed (disk full, file size limit, ...).

    ``errno`` holds the system's error number. The store is left as it was.
    """


class StoreChangedError(FastKVError, RuntimeError):
    """No longer raised: iteration is safe while the store changes. Kept so
    that code catching it still imports."""


class UnauthorizedError(FastKVError, PermissionError):
    """A fastkv server refused the request: its token is missing or wrong."""


class StoreUnavailableError(FastKVError, ConnectionError):
    """A server (Redis, Valkey, or a ``fastkv serve`` behind a Client) could
    not be reached, or did not answer in time. For a write, the message says
    whether it may have happened: a write whose answer was lost is never
    retried by fastkv."""


class RequestError(FastKVError, ValueError):
    """A fastkv server could not take the request as sent (a wrong method,
    content type or length); a Client never sends such a request."""


class TransactionError(FastKVError, RuntimeError):
    """A transaction was misused: nested, used from another thread or after
    its end, grown past ``max_transaction_bytes``, a plain write from the
    thread that holds it, or (on Redis Cluster) keys of several hash slots.
    The store is unchanged by the call that raised it."""


class ConflictError(TransactionError):
    """A transaction on a shared store (``RedisStore``, ``Client``) read a key
    that another client changed before the commit: nothing was written, and
    the caller may run the transaction again. A ``DataStore`` never raises it."""

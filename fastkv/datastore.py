"""DataStore: the public class, a thin layer over the compiled core.

create/read/delete and the other per-call methods are inherited from
``fastkv._core.Store`` and run in C; this module only checks options, and adds
the Python manners (context manager, ``path``, repr).
"""

from __future__ import annotations

import math
import os
import _thread
from pathlib import Path

from fastkv import _core
from fastkv.errors import ConfigError, InvalidPathError
from fastkv.locations import default_path, redact, store_path, url_scheme
from fastkv.transaction import Transaction

TYPE_CHECKING = False  # typing stays unimported at run time (see locations.py)
if TYPE_CHECKING:
    from typing import Any, Optional

    from fastkv.locations import PathArg

__all__ = ["DataStore", "default_path", "DEFAULT_MAX_FILE_SIZE"]

DEFAULT_MAX_FILE_SIZE: int = _core.MAX_FILE_SIZE
DEFAULT_MAX_TRANSACTION_BYTES: int = _core.DEFAULT_MAX_TRANSACTION_BYTES


class DataStore(_core.Store):
    """An embedded key-value store of JSON objects in one file.

    Args:
        path: the data file (str or os.PathLike, ``~`` expanded). Without one,
            ``$FASTKV_PATH`` or a file in the per-user data directory.
            Missing parent directories are created.
        max_file_size: the file never grows past this many bytes
            (4,096 to 1,073,741,824; default 1 GiB).
        durability: ``"process"`` (default): a returned create/delete
            survives the process being killed. ``"fsync"``: it also survives
            power loss, at the cost of a disk flush per write.
        lock_timeout: seconds to wait for another opener to let go of the
            file before giving up (default 0: refuse at once).
        max_transaction_bytes: the most bytes of records one transaction,
            put_many or delete_many may hold (default 16 MiB, at most 1 GiB).

    Raises:
        InvalidPathError: the path is a directory or cannot be created.
        CorruptionError: the file exists but is not a fastkv store, or is damaged.
        StoreLockedError: another process or DataStore holds the file.
        ConfigError: an option is out of range.
    """

    __slots__ = ("_path", "_durability", "__weakref__")

    def __init__(
        self,
        path: Optional[PathArg] = None,
        *,
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
        durability: str = "process",
        lock_timeout: float = 0.0,
        max_transaction_bytes: int = DEFAULT_MAX_TRANSACTION_BYTES,
    ) -> None:
        if type(max_file_size) is not int or not (
            _core.MIN_FILE_SIZE <= max_file_size <= _core.MAX_FILE_SIZE
        ):
            raise ConfigError(
                f"max_file_size must be an int from {_core.MIN_FILE_SIZE:,} to "
                f"{_core.MAX_FILE_SIZE:,} bytes, not {max_file_size!r}"
            )
        if durability not in _core.DURABILITY_MODES:
            raise ConfigError(
                f"durability must be one of {sorted(_core.DURABILITY_MODES)}, "
                f"not {durability!r}"
            )
        if (
            isinstance(lock_timeout, bool)
            or not isinstance(lock_timeout, (int, float))
            or not math.isfinite(lock_timeout)
            or lock_timeout < 0
        ):
            raise ConfigError(
                f"lock_timeout must be a finite number of seconds >= 0, not {lock_timeout!r}"
            )
        if type(max_transaction_bytes) is not int or not (
            1024 <= max_transaction_bytes <= _core.MAX_FILE_SIZE
        ):
            raise ConfigError(
                f"max_transaction_bytes must be an int from 1,024 to "
                f"{_core.MAX_FILE_SIZE:,} bytes, not {max_transaction_bytes!r}"
            )
        if url_scheme(path) is not None:
            raise ConfigError(
                f"{redact(str(path))!r} is a server URL, not a file: open it with fastkv.open() or "
                f"fastkv.RedisStore()")
        self._path = store_path(path)
        self._durability = durability
        self._open(str(self._path), max_file_size, durability, float(lock_timeout),
                   max_transaction_bytes)

    @property
    def path(self) -> Path:
        """The absolute path of the data file."""
        return self._path

    @property
    def durability(self) -> str:
        """The durability mode, "process" or "fsync": what a returned write survives."""
        return self._durability

    @property
    def max_transaction_bytes(self) -> int:
        """The most bytes of records one transaction, put_many or
        delete_many may hold."""
        limit: int = self._max_transaction_bytes()
        return limit

    def stats(self) -> dict[str, Any]:
        """Counters of the store: ``live_keys``, ``file_bytes``, ``dead_bytes``
        (reclaimable by compact()), ``index_bytes`` (memory of the index),
        ``index_bytes_per_key`` and more.

        Raises:
            StoreClosedError: the store is closed.
        """
        st: dict[str, Any] = super().stats()
        st["path"] = str(self._path)
        st["durability"] = self._durability
        return st

    def transaction(self) -> Transaction:
        """Begin a transaction: changes that land together or not at all.

        It holds the store's single writer slot until it ends (as lmdb's
        write transactions do): other writers, plain calls and transactions,
        wait for it; readers go on and see the state before it. Use it from
        the thread that began it::

            with db.transaction() as tx:
                bal = tx.read("acct:1")["balance"]
                tx.put("acct:1", {"balance": bal - 5})
                tx.create("log:77", {"moved": 5}, ttl=86400)

        Leaving the block commits (one group, as durable as a single write);
        an exception inside it discards every change.

        Raises:
            TransactionError: this thread holds an open transaction already.
            StoreClosedError: the store is closed.
        """
        return Transaction(self)

    def backup(self, dest: PathArg, progress: Optional[_core.Progress] = None) -> Path:
        """Write a copy of the store as of one moment to the new file dest,
        while other threads go on writing: it opens as a store with exactly
        the live keys of that moment, from a snapshot of its own. Restoring
        is copying it back (it is a store of its own: writes to it and to
        this store never confuse either's snapshot).

        Args:
            dest: where the copy goes (str or os.PathLike, ``~`` expanded;
                missing parent directories are created). Must not exist.
            progress: a ``fastkv._core.Progress`` whose ``done`` and
                ``total`` count the bytes copied, for another thread to poll.

        Returns:
            The absolute path of the copy.

        Raises:
            InvalidPathError: dest exists (it is left untouched), is this
                store's own file, or its directory cannot be created.
            StoreClosedError: the store is closed.
            StoreIOError: the copy could not be written (disk full...);
                nothing is left at dest.
        """
        target = store_path(dest)
        if target == self._path or os.path.lexists(target):
            raise InvalidPathError(f"{target} exists already; it was left untouched")
        self._backup(str(target), progress)
        return target

    def __enter__(self) -> "DataStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DataStore({str(self._path)!r})"

    def __reduce__(self) -> Any:
        raise TypeError(
            "a DataStore cannot be pickled: it owns an open, locked file; "
            "pass its path and open it again instead"
        )


# ---- module-level shortcuts on the default store ------------------------------

_default_store: Optional[DataStore] = None
_default_lock = _thread.allocate_lock()  # threading.Lock, without importing threading


def _default() -> DataStore:
    global _default_store
    store = _default_store
    if store is None:
        with _default_lock:
            if _default_store is None:
                _default_store = DataStore()
            store = _default_store
    return store


def _close_default() -> None:
    """Close the default store if the shortcuts opened it."""
    global _default_store
    with _default_lock:
        if _default_store is not None:
            _default_store.close()
            _default_store = None

"""fastkv: an embedded key-value store of JSON objects with expiry.

    >>> from fastkv import DataStore
    >>> with DataStore("~/data/users.fkv") as db:
    ...     db.create("user:42", {"name": "Ann"})
    ...     db.read("user:42")
    {'name': 'Ann'}

The module-level ``create``, ``read`` and ``delete`` use a default store,
opened on first use (see ``default_path()``).
"""

from __future__ import annotations

import atexit

from fastkv.errors import (
    ConfigError,
    CorruptionError,
    FastKVError,
    InvalidKeyError,
    InvalidPathError,
    InvalidTTLError,
    InvalidValueError,
    KeyExistsError,
    KeyExpiredError,
    KeyNotFoundError,
    StoreChangedError,
    StoreClosedError,
    StoreFullError,
    StoreIOError,
    StoreLockedError,
    StoreUnavailableError,
    UnauthorizedError,
    RequestError,
    TransactionError,
    ConflictError,
    ValueTooLargeError,
)
from fastkv import _core
from fastkv.datastore import DataStore, default_path, _close_default, _default
from fastkv.locations import url_scheme
from fastkv.recovery import repair, verify
from fastkv.transaction import Transaction

TYPE_CHECKING = False  # typing stays unimported at run time (see locations.py)
if TYPE_CHECKING:
    from typing import Any, Optional

    from fastkv.locations import PathArg
    from fastkv.client import Client
    from fastkv.redis.store import RedisStore
    from fastkv.store_protocol import KeyValueStore

from fastkv._version import __version__ as __version__

KEY_MAX_CHARS: int = _core.KEY_MAX_CHARS
VALUE_MAX_BYTES: int = _core.VALUE_MAX_BYTES
TTL_MAX_SECONDS: int = _core.TTL_MAX_SECONDS
MAX_FILE_SIZE: int = _core.MAX_FILE_SIZE
MAX_DEPTH: int = _core.MAX_DEPTH

__all__ = [
    "DataStore",
    "RedisStore",
    "Client",
    "KeyValueStore",
    "open",
    "create",
    "read",
    "delete",
    "default_path",
    "verify",
    "repair",
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
    "StoreUnavailableError",
    "UnauthorizedError",
    "RequestError",
    "TransactionError",
    "ConflictError",
    "Transaction",
    "KEY_MAX_CHARS",
    "VALUE_MAX_BYTES",
    "TTL_MAX_SECONDS",
    "MAX_FILE_SIZE",
    "MAX_DEPTH",
]


def create(key: str, value: Any, ttl: Optional[int] = None) -> None:
    """create() on the default store (opened on first use)."""
    _default().create(key, value, ttl)


def read(key: str) -> Any:
    """read() on the default store (opened on first use)."""
    return _default().read(key)


def delete(key: str) -> None:
    """delete() on the default store (opened on first use)."""
    _default().delete(key)


def open(location: Optional[PathArg] = None, **options: Any) -> Any:  # noqa: A001
    """Open the store at location: a path (or None: the default file) gives a
    DataStore, a ``redis://``, ``rediss://`` or ``unix://`` URL a RedisStore.
    options go to that class. An unknown URL scheme is a ConfigError."""
    if url_scheme(location) is not None:
        from fastkv.redis.store import RedisStore

        return RedisStore(str(location), **options)
    return DataStore(location, **options)


atexit.register(_close_default)


def __getattr__(name: str) -> Any:
    # the HTTP client pulls in http.client and email: imported when first used
    if name == "Client":
        from fastkv.client import Client

        return Client
    if name == "KeyValueStore":  # typing: not imported by a plain `import fastkv`
        from fastkv.store_protocol import KeyValueStore

        return KeyValueStore
    if name == "RedisStore":  # redis-py: only for those who use it
        from fastkv.redis.store import RedisStore

        return RedisStore
    raise AttributeError(f"module 'fastkv' has no attribute {name!r}")

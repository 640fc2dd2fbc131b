"""KeyValueStore: the calls every fastkv store answers alike.

DataStore (a file), RedisStore (Redis, Valkey, a Redis Cluster) and Client
(a ``fastkv serve`` over HTTP) each have these methods with the same
arguments, results and exception classes, so code written against this
protocol runs on any of them; the test suite's parity module runs one set
of tests against all of them. A ``typing.Protocol``: nothing inherits it,
a type checker (or ``isinstance``, for the names) checks the shape.

DeadlineStore adds the calls with absolute deadlines that export and
import use to keep expiry to the millisecond (DataStore and RedisStore).
What only some stores have stays on them: ``compact``, ``sync``,
``backup`` and ``path`` (DataStore), ``namespace`` and ``client``
(RedisStore), ``health`` (Client).
"""

from __future__ import annotations

from typing import Any, Iterator, Optional, Protocol, runtime_checkable

__all__ = ["KeyValueStore", "DeadlineStore"]


@runtime_checkable
class KeyValueStore(Protocol):
    """A store of JSON objects under string keys, with optional expiry."""

    def create(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        """Store value under a key that is not live (KeyExistsError if it is)."""

    def put(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        """Create the key or replace its value and TTL, in one step."""

    def read(self, key: str) -> Any:
        """The value (KeyNotFoundError, KeyExpiredError)."""

    def get(self, key: str, default: Any = None) -> Any:
        """The value, or default for a missing or expired key."""

    def ttl(self, key: str) -> Optional[float]:
        """Seconds left before the key expires; None if it never does."""

    def touch(self, key: str, ttl: Optional[int]) -> None:
        """A new TTL counted from now (None: no expiry), value unchanged."""

    def delete(self, key: str) -> None:
        """Remove a live key (KeyNotFoundError, KeyExpiredError)."""

    def keys(self, prefix: Optional[str] = None) -> Iterator[str]:
        """An iterator over the live keys, or those starting with prefix."""

    def items(self, prefix: Optional[str] = None) -> Iterator[tuple[str, Any]]:
        """An iterator over (key, value) pairs of the live keys."""

    def stats(self) -> dict[str, Any]:
        """Counters of the store; ``live_keys`` among them."""

    def close(self) -> None:
        """Let go of the store (files, connections); safe to call twice."""

    def __contains__(self, key: object, /) -> bool: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[str]: ...

    def __getitem__(self, key: str, /) -> Any: ...

    def __setitem__(self, key: str, value: Any, /) -> None: ...

    def __delitem__(self, key: str, /) -> None: ...


@runtime_checkable
class DeadlineStore(KeyValueStore, Protocol):
    """A KeyValueStore that reads and writes expiry as absolute deadlines."""

    def read_with_deadline(self, key: str) -> tuple[Any, Optional[int]]:
        """(value, deadline in ms since the Unix epoch, or None)."""

    def create_until(self, key: str, value: Any, deadline_ms: Optional[int],
                     replace: bool = False) -> None:
        """create (put with replace) with an absolute deadline in ms."""

"""The fastkv API in Redis terms, shared by RedisStore and AsyncRedisStore.

A fastkv key ``k`` lives in Redis as the string ``namespace:k`` (or ``k``
with the namespace "": no prefix; no hash tag, so keys spread over a
cluster's slots) holding the same compact JSON
bytes a file store keeps; a TTL is the key's Redis expiry. Each call is one
command, so it is atomic where the file store's call is:

    create  SET ns:k v NX [PX ms | PXAT deadline]     nil -> KeyExistsError
    put     SET ns:k v [PX ms | PXAT deadline]
    read    GET ns:k                                  nil -> KeyNotFoundError
    delete  DEL ns:k                                  0   -> KeyNotFoundError
    ttl     PTTL ns:k                                 -2 -> KeyNotFoundError, -1 -> None
    touch   PEXPIRE ns:k ms | PERSIST ns:k            on a live key only
    in      EXISTS ns:k
    keys    SCAN cursor MATCH <escaped ns:prefix>* COUNT n, on every primary

Keys, values and TTLs are checked by the same code as the file store's
(fastkv._core), so the limits and messages are identical. Everything a
server can answer with is turned into a fastkv exception in translate().
"""

from __future__ import annotations

import re
import time
from typing import Any, Optional

import orjson

from fastkv import _core
from fastkv.errors import (
    ConfigError,
    ConflictError,
    CorruptionError,
    InvalidTTLError,
    KeyExpiredError,
    StoreFullError,
    StoreIOError,
    StoreUnavailableError,
    UnauthorizedError,
    _show,
)
from fastkv.locations import redact

__all__ = ["Mapping", "translate", "client_options", "EXPORT_SCRIPT", "SCAN_COUNT"]

# Keys asked of SCAN per call: fewer round trips than its default of 10,
# while one reply stays small (a few tens of KiB of key names).
SCAN_COUNT = 1000

# GET and PEXPIRETIME (Redis 7.0+) in one step, so an export never pairs a
# value with another write's deadline. A script touches only KEYS[1]: it
# runs on a cluster as on one server.
EXPORT_SCRIPT = "return {redis.call('GET', KEYS[1]), redis.call('PEXPIRETIME', KEYS[1])}"

_GLOB = re.compile(rb"([*?\[\]\\])")
_loads = orjson.loads
_check_key = _core.check_key
_encode = _core.encode_value
_check_ttl = _core.check_ttl


def client_options(timeout: float, asyncio: bool = False) -> dict[str, Any]:
    """redis-py options every client fastkv makes gets: a bounded wait, and
    no retry. A write whose reply was lost may have happened; sending it
    again could turn a successful create into a KeyExistsError, or repeat a
    delete. The caller is told instead (translate())."""
    from redis.backoff import NoBackoff

    if asyncio:
        from redis.asyncio.retry import Retry
    else:
        from redis.retry import Retry  # type: ignore[assignment]

    return {"socket_timeout": timeout, "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0)}


class Mapping:
    """Names, values and replies of one store's namespace."""

    __slots__ = ("namespace", "url", "where", "_prefix", "_cut")

    def __init__(self, namespace: str, url: str) -> None:
        if not isinstance(namespace, str) or ":" in namespace:
            raise ConfigError(f"namespace must be a str without ':', not {namespace!r}")
        self.namespace = namespace
        # "": no prefix, the server's whole keyspace is the store (a database
        # given to it alone, or `fastkv serve`, whose keys are the file's)
        self._prefix = namespace.encode("utf-8") + b":" if namespace else b""
        self._cut = len(self._prefix)
        self.url = redact(url)  # what messages and stats show: no password
        self.where = f"{self.url} (namespace {namespace!r})"

    def name(self, key: Any) -> bytes:
        """The Redis key of a fastkv key; InvalidKeyError for a bad key."""
        _check_key(key)
        encoded: bytes = key.encode("utf-8")
        return self._prefix + encoded

    def value(self, key: Any, value: Any) -> bytes:
        return _encode(value, key)

    def expiry_ms(self, key: Any, ttl: Any) -> Optional[int]:
        """PX for a ttl in seconds (None: no expiry); InvalidTTLError as create()."""
        seconds: int = _check_ttl(ttl, key)
        return seconds * 1000 if seconds else None

    def deadline(self, key: Any, deadline_ms: Any) -> Optional[int]:
        """PXAT for an absolute deadline (import); a past one is KeyExpiredError."""
        if deadline_ms is None or deadline_ms == 0:
            return None
        if type(deadline_ms) is not int or not 0 < deadline_ms < 2**63:
            raise InvalidTTLError(f"deadline for {_show(key)} must be ms since the epoch, "
                             f"not {deadline_ms!r}")
        if deadline_ms <= int(time.time() * 1000):
            raise KeyExpiredError(key, self.where)
        return deadline_ms

    def decode(self, key: Any, raw: Any) -> Any:
        """The dict a GET reply holds; CorruptionError if something other than
        fastkv wrote it."""
        if len(raw) <= _core.VALUE_MAX_BYTES:
            try:
                obj = _loads(raw)
            except orjson.JSONDecodeError:
                obj = None
            if type(obj) is dict:
                return obj
        raise CorruptionError(
            f"{self.where}: the value of {_show(key)} is not a fastkv value (not a JSON "
            f"object of at most {_core.VALUE_MAX_BYTES:,} bytes); something else wrote it")

    def match(self, prefix: Optional[str]) -> bytes:
        """SCAN's MATCH pattern for keys starting with prefix, glob characters
        escaped (a key may hold '*' or '[')."""
        start = self._prefix
        if prefix:
            if not isinstance(prefix, str):
                raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
            start += prefix.encode("utf-8", "surrogatepass")
        return _GLOB.sub(rb"\\\1", start) + b"*"

    def new_keys(self, names: list[Any], seen: set[str]) -> list[str]:
        """The fastkv keys of a SCAN reply not in seen (which takes them in).
        SCAN repeats a key when a server resizes its table mid-walk; the
        keys of one walk are remembered so that none comes twice. Names that
        cannot be keys (written by something else) are left out."""
        cut, most = self._cut, _core.KEY_MAX_CHARS
        try:  # the common case: bytes, valid UTF-8, behind the prefix MATCH asked for
            keys = [n[cut:].decode() for n in names]
        except (UnicodeDecodeError, AttributeError):
            keys = [k for k in map(self.key_of, names) if k is not None]
        if not keys:
            return keys
        lengths = list(map(len, keys))
        if max(lengths) > most or min(lengths) == 0:
            keys = [k for k in keys if 0 < len(k) <= most]
        if seen.isdisjoint(keys):
            before = len(seen)
            seen.update(keys)
            if len(seen) - before == len(keys):
                return keys
            seen.difference_update(keys)
        fresh = [k for k in dict.fromkeys(keys) if k not in seen]  # the rare case
        seen.update(fresh)
        return fresh

    def key_of(self, name: Any) -> Optional[str]:
        """The fastkv key of a Redis key SCAN found, None if it cannot be one
        (written by something else under the namespace)."""
        raw = name.encode("utf-8", "surrogateescape") if isinstance(name, str) else bytes(name)
        if not raw.startswith(self._prefix):
            return None
        try:
            key = raw[self._cut:].decode("utf-8")
        except UnicodeDecodeError:
            return None
        return key if 0 < len(key) <= _core.KEY_MAX_CHARS else None


# Replies that mean "the cluster or server cannot serve now", whatever the
# class redis-py gave them (its classes differ between versions).
_UNAVAILABLE_PREFIXES = ("CLUSTERDOWN", "TRYAGAIN", "LOADING", "MASTERDOWN", "READONLY")
_AUTH_PREFIXES = ("NOAUTH", "WRONGPASS", "NOPERM", "invalid password", "invalid username")


def translate(exc: BaseException, where: str, key: Any = None,
              write: bool = False) -> BaseException:
    """The fastkv exception for an error redis-py raised (the error itself if
    it is not one of redis-py's)."""
    from redis import exceptions as rx

    msg = str(exc).strip().rstrip(".") or type(exc).__name__
    about = f" ({_show(key)})" if key is not None else ""
    if isinstance(exc, rx.WatchError):  # EXEC refused: a watched key changed
        return ConflictError(
            f"{where}: another client changed a key this transaction read, so its EXEC "
            f"was refused and nothing was written; run the transaction again")
    if isinstance(exc, (rx.AuthenticationError, rx.AuthorizationError, rx.NoPermissionError)) \
            or msg.startswith(_AUTH_PREFIXES):
        return UnauthorizedError(f"{where} refused the request{about}: {msg}")
    if isinstance(exc, rx.OutOfMemoryError) or msg.startswith("OOM"):
        return StoreFullError(
            f"{where} is out of memory (its maxmemory is reached), so the write{about} "
            f"was refused: {msg}")
    if msg.startswith("WRONGTYPE"):
        return CorruptionError(
            f"{where}: {_show(key)} holds a Redis value that is not a fastkv value "
            f"(something else wrote it)")
    if isinstance(exc, (rx.ConnectionError, rx.TimeoutError, rx.ClusterError,
                        rx.RedisClusterException)) or msg.startswith(_UNAVAILABLE_PREFIXES):
        outcome = ""
        never_sent = ("connecting", "Connection refused", "Too many connections",
                      "No connection available")
        if write and not any(s in msg for s in never_sent):
            outcome = (" The write was sent and its answer lost: it may or may not have "
                       "happened (fastkv never sends it again); read the key to know.")
        return StoreUnavailableError(f"{where} did not answer{about}: {msg}.{outcome}")
    if isinstance(exc, rx.RedisError):
        return StoreIOError(f"{where} refused the command{about}: {msg}")
    return exc

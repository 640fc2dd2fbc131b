"""One adapter per store, all with the same semantics, for the harness.

Every adapter stores JSON objects encoded with orjson, refuses create on a
live key and read/delete of a missing or expired key (raising KeyError),
and keeps a per-key time-to-live: natively where the store has one
(fastkv, diskcache), else as an 8-byte deadline header in front of the
value, checked on read. Settings survive a crash of the process, not power
loss, for every store:

- fastkv: durability="process" (writes reach the page cache before returning).
- sqlite3: WAL journal, synchronous=OFF (each commit's WAL frames are written
  to the file before returning, not synced).
- lmdb: sync=False, metasync=False (pages written, not synced).
- dbm: whatever backend the interpreter has (gdbm, ndbm or dumb), no sync;
  sh benchmarks/gdbm_module.sh adds gdbm to an interpreter built without it.
- diskcache: its defaults (SQLite in WAL mode, synchronous=NORMAL).
- rocksdict (RocksDB): write-ahead log on, no sync.
- plyvel (LevelDB): sync=False (log written, not synced).
- naive: the usual answer to the brief, one JSON file of everything,
  rewritten (temp file + rename) on every create and delete.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import threading
import time
from typing import Any, Callable, Optional

import orjson

# gdbm for an interpreter built without it (gdbm_module.sh fetches Debian's)
_GDBM = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".gdbm")
if os.path.isdir(_GDBM):
    import sys

    sys.path.append(_GDBM)

dumps, loads = orjson.dumps, orjson.loads
_HDR = struct.Struct(">Q")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _wrap(value: Any, ttl: Optional[int]) -> bytes:
    deadline = _now_ms() + ttl * 1000 if ttl else 0
    return _HDR.pack(deadline) + dumps(value)


def _live(blob: Optional[bytes]) -> bool:
    if blob is None:
        return False
    deadline = _HDR.unpack_from(blob)[0]
    return deadline == 0 or _now_ms() < deadline


def _unwrap(blob: Optional[bytes], key: str) -> Any:
    if not _live(blob):
        raise KeyError(key)
    return loads(memoryview(blob)[8:])  # type: ignore[index]


class Store:
    name = "?"
    module = ""            # import needed, for skipping when missing
    threads_ok = True      # may several threads share the handle
    max_keys: Optional[int] = None  # beyond this N the store is not run
    note = ""

    def __init__(self, path: str) -> None:
        self.path = path

    def open(self) -> None: ...
    def close(self) -> None: ...
    def create(self, key: str, value: Any, ttl: Optional[int]) -> None: ...
    def read(self, key: str) -> Any: ...
    def delete(self, key: str) -> None: ...

    def reader(self) -> Callable[[str], Any]:
        """A read function for one extra thread."""
        return self.read

    @classmethod
    def available(cls) -> bool:
        return not cls.module or importlib.util.find_spec(cls.module) is not None


class FastKV(Store):
    name = "fastkv"
    module = "fastkv"

    def open(self) -> None:
        import fastkv

        self.db = fastkv.DataStore(os.path.join(self.path, "store.fkv"))
        # bind the C methods directly: what a user's hot loop would do
        self.create = self.db.create  # type: ignore[method-assign]
        self.read = self.db.read  # type: ignore[method-assign]
        self.delete = self.db.delete  # type: ignore[method-assign]

    def close(self) -> None:
        self.db.close()


class SQLite(Store):
    name = "sqlite3"
    module = "sqlite3"

    def _connect(self) -> Any:
        import sqlite3

        con = sqlite3.connect(os.path.join(self.path, "store.db"), isolation_level=None,
                              check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=OFF")
        return con

    def open(self) -> None:
        import sqlite3

        self.con = self._connect()
        self.con.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID")
        self.integrity = sqlite3.IntegrityError
        self._local = threading.local()

    def close(self) -> None:
        self.con.close()

    def create(self, key: str, value: Any, ttl: Optional[int]) -> None:
        blob = _wrap(value, ttl)
        try:
            self.con.execute("INSERT INTO kv VALUES (?, ?)", (key, blob))
        except self.integrity:
            row = self.con.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
            if _live(row[0]):
                raise KeyError(key) from None
            self.con.execute("UPDATE kv SET v = ? WHERE k = ?", (blob, key))

    def read(self, key: str) -> Any:
        row = self.con.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return _unwrap(row[0] if row else None, key)

    def delete(self, key: str) -> None:
        row = self.con.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        if not _live(row[0] if row else None):
            raise KeyError(key)
        self.con.execute("DELETE FROM kv WHERE k = ?", (key,))

    def reader(self) -> Callable[[str], Any]:
        con = self._connect()  # a connection per thread, as sqlite3 wants

        def read(key: str) -> Any:
            row = con.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
            return _unwrap(row[0] if row else None, key)

        return read


class LMDB(Store):
    name = "lmdb"
    module = "lmdb"

    def open(self) -> None:
        import lmdb

        self.env = lmdb.open(os.path.join(self.path, "store.lmdb"), map_size=1 << 34,
                             sync=False, metasync=False)

    def close(self) -> None:
        self.env.close()

    def create(self, key: str, value: Any, ttl: Optional[int]) -> None:
        k = key.encode()
        with self.env.begin(write=True) as txn:
            if not txn.put(k, _wrap(value, ttl), overwrite=False):
                if _live(txn.get(k)):
                    raise KeyError(key)
                txn.put(k, _wrap(value, ttl))

    def read(self, key: str) -> Any:
        with self.env.begin(buffers=True) as txn:
            return _unwrap(txn.get(key.encode()), key)

    def delete(self, key: str) -> None:
        k = key.encode()
        with self.env.begin(write=True) as txn:
            if not _live(txn.get(k)):
                raise KeyError(key)
            txn.delete(k)


class _BytesKV(Store):
    """Stores with a plain get/put/delete on bytes keys and no TTL of their
    own: the deadline header and the create/read/delete rules live here."""

    def _get(self, k: bytes) -> Optional[bytes]: ...
    def _put(self, k: bytes, v: bytes) -> None: ...
    def _drop(self, k: bytes) -> None: ...

    def create(self, key: str, value: Any, ttl: Optional[int]) -> None:
        k = key.encode()
        if _live(self._get(k)):
            raise KeyError(key)
        self._put(k, _wrap(value, ttl))

    def read(self, key: str) -> Any:
        return _unwrap(self._get(key.encode()), key)

    def delete(self, key: str) -> None:
        k = key.encode()
        if not _live(self._get(k)):
            raise KeyError(key)
        self._drop(k)


class DBM(_BytesKV):
    name = "dbm"
    module = "dbm"
    threads_ok = False

    @classmethod
    def backend(cls) -> str:
        for mod in ("_gdbm", "_dbm"):
            if importlib.util.find_spec(mod):
                return {"_gdbm": "dbm.gnu", "_dbm": "dbm.ndbm"}[mod]
        return "dbm.dumb"

    def open(self) -> None:
        import dbm

        self.db = dbm.open(os.path.join(self.path, "store.dbm"), "c")
        self._get, self._put, self._drop = self.db.get, self.db.__setitem__, self.db.__delitem__

    def close(self) -> None:
        self.db.close()


DBM.note = f"dbm runs as {DBM.backend()}"
if DBM.backend() == "dbm.dumb":
    DBM.max_keys = 5_000
    DBM.note = "dbm.dumb (the only dbm this interpreter has): pure Python (its delete rewrites its index file), run at 5,000 keys at most"


class DiskCache(Store):
    name = "diskcache"
    module = "diskcache"

    def open(self) -> None:
        import diskcache

        self.cache = diskcache.Cache(os.path.join(self.path, "dc"))

    def close(self) -> None:
        self.cache.close()

    def create(self, key: str, value: Any, ttl: Optional[int]) -> None:
        if not self.cache.add(key, dumps(value), expire=ttl):
            raise KeyError(key)

    def read(self, key: str) -> Any:
        blob = self.cache.get(key)
        if blob is None:
            raise KeyError(key)
        return loads(blob)

    def delete(self, key: str) -> None:
        if not self.cache.delete(key):
            raise KeyError(key)


class RocksDict(_BytesKV):
    name = "rocksdict"
    module = "rocksdict"

    def open(self) -> None:
        import rocksdict

        opts = rocksdict.Options(raw_mode=True)
        self.db = rocksdict.Rdict(os.path.join(self.path, "rocks"), options=opts)
        self._get, self._put, self._drop = self.db.get, self.db.__setitem__, self.db.__delitem__

    def close(self) -> None:
        self.db.close()


class Plyvel(_BytesKV):
    name = "plyvel"
    module = "plyvel"

    def open(self) -> None:
        import plyvel

        self.db = plyvel.DB(os.path.join(self.path, "level"), create_if_missing=True)
        self._get, self._put, self._drop = self.db.get, self.db.put, self.db.delete

    def close(self) -> None:
        self.db.close()


class NaiveJSON(Store):
    name = "naive-json"
    threads_ok = False
    max_keys = 2_000
    note = "naive-json rewrites the whole file per write: run at 2,000 keys at most"

    def open(self) -> None:
        self.file = os.path.join(self.path, "store.json")
        try:
            with open(self.file, "rb") as f:
                self.data = json.loads(f.read())
        except FileNotFoundError:
            self.data = {}

    def _save(self) -> None:
        tmp = self.file + ".tmp"
        with open(tmp, "wb") as f:
            f.write(dumps(self.data))
        os.replace(tmp, self.file)

    def _live(self, key: str) -> bool:
        entry = self.data.get(key)
        return entry is not None and (entry[1] == 0 or _now_ms() < entry[1])

    def create(self, key: str, value: Any, ttl: Optional[int]) -> None:
        if self._live(key):
            raise KeyError(key)
        self.data[key] = [value, _now_ms() + ttl * 1000 if ttl else 0]
        self._save()

    def read(self, key: str) -> Any:
        if not self._live(key):
            raise KeyError(key)
        return loads(dumps(self.data[key][0]))  # a new object, as the others return

    def delete(self, key: str) -> None:
        if not self._live(key):
            raise KeyError(key)
        del self.data[key]
        self._save()


# What an InMemoryDict holds per path: it survives close(), so that the
# reopen phase finds its keys (a reopen costs a dict nothing).
_HELD: dict[str, dict[str, bytes]] = {}


class InMemoryDict(Store):
    """The anchor no disk store reaches: a dict of str keys to the same
    orjson bytes behind the same 8-byte deadline, checked the same way, and
    a lock around each write (check and change), as a thread-safe store
    needs. Each call is written out in full, as lean as a dict allows."""

    name = "dict"
    note = "in memory: nothing survives the process"

    def open(self) -> None:
        self.data = _HELD.setdefault(self.path, {})
        self.lock = threading.Lock()

    def create(self, key: str, value: Any, ttl: Optional[int]) -> None:
        blob = _HDR.pack(time.time_ns() // 1_000_000 + ttl * 1000 if ttl else 0) + dumps(value)
        with self.lock:
            old = self.data.get(key)
            if old is not None:
                deadline = _HDR.unpack_from(old)[0]
                if deadline == 0 or time.time_ns() // 1_000_000 < deadline:
                    raise KeyError(key)
            self.data[key] = blob

    def read(self, key: str) -> Any:
        blob = self.data.get(key)
        if blob is None:
            raise KeyError(key)
        deadline = _HDR.unpack_from(blob)[0]
        if deadline and time.time_ns() // 1_000_000 >= deadline:
            raise KeyError(key)
        return loads(memoryview(blob)[8:])

    def delete(self, key: str) -> None:
        with self.lock:
            blob = self.data.get(key)
            if blob is None:
                raise KeyError(key)
            deadline = _HDR.unpack_from(blob)[0]
            if deadline and time.time_ns() // 1_000_000 >= deadline:
                raise KeyError(key)
            del self.data[key]


ALL: dict[str, type[Store]] = {
    cls.name: cls
    for cls in (FastKV, InMemoryDict, LMDB, SQLite, DBM, DiskCache, RocksDict, Plyvel, NaiveJSON)
}

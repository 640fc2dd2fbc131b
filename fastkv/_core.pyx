# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Binding of the C core (src_c/) to Python.

Each method has three steps: convert its inputs while holding the GIL (the
key to UTF-8, the value to compact JSON), make one C call inside
``with nogil:``, then turn the status into an exception through ``_raise``
(_statuses.pxi).
The C core takes its own mutex, so threads never wait on it with the GIL.
Reads first try a variant that never waits (fkv_try_read) with the GIL
held, and fall back to the nogil call only if it would have had to wait.

JSON values are checked here, in one walk at C speed, because orjson alone
would alter some inputs silently (NaN and infinities become null, UUIDs and
enums become strings, ints up to 2**64 pass).

Why the servers' fast path (_serving.pxi) and the RESP framing it parses
with (_resp.pxi) are parts of this module and not an extension of their
own: the fast path calls the C core directly (fkv_try_read, fkv_put_batch)
on the Store's handle, without a Python frame per request. Another
extension module would link its own copy of src_c/, and the core keeps
state that must be one per process: the per-thread details of the last
failure (status.c: an errno or offset set in one copy is not seen by the
other), the fork generation every store checks, and the test hooks. The
framing parser is called from the fast path as a C function (_resp_next),
so it goes where the fast path goes. Each concern is a file of its own
(included below: statuses, values, groups, iteration, recovery, test hooks,
serving, RESP framing), so the module is one unit to the linker and several
to a reader.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.buffer cimport PyBUF_READ
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from libc.math cimport isfinite
from libc.stdint cimport int64_t, uint8_t, uint64_t

import json as _json
import os as _os
import re as _re

import orjson as _orjson

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
    StoreClosedError,
    StoreFullError,
    StoreIOError,
    StoreLockedError,
    TransactionError,
    ValueTooLargeError,
    _show,
)

_dumps = _orjson.dumps
_loads = _orjson.loads
_JSONDecodeError = _orjson.JSONDecodeError
_JSONEncodeError = _orjson.JSONEncodeError

KEY_MAX_CHARS = FKV_KEY_MAX_CHARS
VALUE_MAX_BYTES = FKV_VALUE_MAX
TTL_MAX_SECONDS = FKV_TTL_MAX_S
MAX_FILE_SIZE = FKV_MAX_FILE_SIZE
MIN_FILE_SIZE = FKV_MIN_FILE_SIZE
DEFAULT_MAX_TRANSACTION_BYTES = 16 * 1024 * 1024
DURABILITY_MODES = {"process": FKV_DURABLE_PROCESS, "fsync": FKV_DURABLE_FSYNC}

# What the _try_ methods answer when only a call that may wait could.
WOULD_WAIT = object()


include "_statuses.pxi"
include "_values.pxi"


# ---- the store ---------------------------------------------------------------

cdef class Store:
    """One open data file. DataStore (datastore.py) is the public face."""

    cdef fkv_store *_s
    cdef str _where
    cdef uint64_t _max_file_size
    cdef uint64_t _max_txn_bytes

    def __cinit__(self, *args, **kwargs):
        self._s = NULL
        self._where = "<not open>"

    def __dealloc__(self):
        if self._s != NULL:
            fkv_free(self._s)
            self._s = NULL

    def _open(self, str path, uint64_t max_file_size, str durability,
              double lock_timeout, uint64_t max_transaction_bytes=DEFAULT_MAX_TRANSACTION_BYTES):
        """Open the file at an absolute path; called once by DataStore."""
        cdef fkv_options opt
        cdef int rc
        cdef fkv_store *s = NULL
        if self._s != NULL:
            raise StoreClosedError(f"store {self._where} is already open")
        self._where = path
        self._max_file_size = max_file_size
        self._max_txn_bytes = max_transaction_bytes
        opt.max_file_size = max_file_size
        opt.durability = DURABILITY_MODES[durability]
        # capped (at ~31,700 years) so that the core's microsecond arithmetic cannot overflow
        opt.lock_timeout_ms = <uint64_t>(min(lock_timeout, 1e12) * 1000.0 + 0.5)
        encoded = _os.fsencode(path)
        cdef const char *p = encoded
        with nogil:
            rc = fkv_open(p, &opt, &s)
        if rc != FKV_OK:
            _raise(self, rc, None)
        self._s = s

    cdef inline int _live(self) except -1:
        if self._s == NULL:
            raise StoreClosedError(f"store {self._where} is not open")
        return 0

    def create(self, key, value, ttl=None):
        """Store value under key, optionally expiring ttl seconds from now.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            InvalidValueError: the value is not a JSON object, or holds something JSON cannot.
            ValueTooLargeError: the encoded value is over 16 KiB.
            InvalidTTLError: ttl is not None or an int from 1 to 315,360,000.
            KeyExistsError: the key is live already.
            StoreFullError: the write would take the file past max_file_size.
            StoreClosedError: the store is closed, or this is a forked child.
            StoreIOError: a system call on the file failed, or an earlier flush did.
        """
        self._append(key, value, <uint64_t>_ttl_seconds(ttl, key), True, False)

    def put(self, key, value, ttl=None):
        """Store value under key, creating the key or replacing its value and
        its expiry in one step: a reader sees the old value or the new one,
        and a kill -9 leaves one of them, never neither.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            InvalidValueError: the value is not a JSON object, or holds something JSON cannot.
            ValueTooLargeError: the encoded value is over 16 KiB.
            InvalidTTLError: ttl is not None or an int from 1 to 315,360,000.
            StoreFullError: the write would take the file past max_file_size (the old value stays).
            StoreClosedError: the store is closed, or this is a forked child.
            StoreIOError: a system call on the file failed, or an earlier flush did.
        """
        self._append(key, value, <uint64_t>_ttl_seconds(ttl, key), True, True)

    def __setitem__(self, key, value):
        self._append(key, value, 0, True, True)

    def create_until(self, key, value, deadline_ms, replace=False):
        """create() (put() with replace) with an absolute deadline in ms since
        the Unix epoch (None or 0: none), so that an import keeps expiry to
        the millisecond.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            InvalidValueError: the value is not a JSON object, or holds something JSON cannot.
            ValueTooLargeError: the encoded value is over 16 KiB.
            InvalidTTLError: deadline_ms is not an int of milliseconds.
            KeyExpiredError: the deadline has passed.
            KeyExistsError: the key is live already (without replace).
            StoreFullError: the write would take the file past max_file_size.
            StoreClosedError: the store is closed, or this is a forked child.
            StoreIOError: a system call on the file failed, or an earlier flush did.
        """
        if deadline_ms is None:
            deadline_ms = 0
        if type(deadline_ms) is not int or not 0 <= deadline_ms < 2 ** 63:
            raise InvalidTTLError(f"deadline for {_show(key)} must be ms since the epoch, "
                                  f"not {deadline_ms!r}")
        self._append(key, value, <uint64_t>deadline_ms, False, bool(replace))

    cdef int _append(self, key, value, uint64_t t, bint relative, bint replace) except -1:
        cdef Py_ssize_t n
        cdef const char *k = _key_utf8(key, &n)
        cdef bytes data = _encode(value, key)
        cdef const uint8_t *v = <const uint8_t *>PyBytes_AS_STRING(data)
        cdef size_t vlen = <size_t>PyBytes_GET_SIZE(data)
        cdef int rc
        self._live()
        with nogil:
            if replace:
                if relative:
                    rc = fkv_put(self._s, k, <size_t>n, v, vlen, t)
                else:
                    rc = fkv_put_until(self._s, k, <size_t>n, v, vlen, t)
            elif relative:
                rc = fkv_create(self._s, k, <size_t>n, v, vlen, t)
            else:
                rc = fkv_create_until(self._s, k, <size_t>n, v, vlen, t)
        if rc != FKV_OK:
            _raise(self, rc, key)
        return 0

    def touch(self, key, ttl):
        """Give a live key a new time-to-live of ttl seconds from now, or
        no expiry with ttl=None; its value is kept. One step, like put().

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            InvalidTTLError: ttl is not None or an int from 1 to 315,360,000.
            KeyNotFoundError: the key is not in the store.
            KeyExpiredError: the key's time-to-live has passed.
            StoreFullError: the write would take the file past max_file_size.
            StoreClosedError: the store is closed, or this is a forked child.
            StoreIOError: a system call on the file failed, or an earlier flush did.
        """
        cdef Py_ssize_t n
        cdef const char *k = _key_utf8(key, &n)
        cdef uint64_t t = <uint64_t>_ttl_seconds(ttl, key)
        cdef int rc
        self._live()
        with nogil:
            rc = fkv_touch(self._s, k, <size_t>n, t)
        if rc != FKV_OK:
            _raise(self, rc, key)

    def read(self, key):
        """Return the value stored under key, as a new dict.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            KeyNotFoundError: the key is not in the store.
            KeyExpiredError: the key's time-to-live has passed.
            CorruptionError: a record read failed its checksum.
            StoreClosedError: the store is closed, or this is a forked child.
            StoreIOError: a system call on the file failed, or an earlier flush did.
        """
        cdef Py_ssize_t n
        cdef const char *k = _key_utf8(key, &n)
        cdef uint8_t buf[FKV_REC_MAX]
        cdef size_t voff = 0, vlen = 0
        self._live()
        cdef int rc = self._fetch(k, n, buf, &voff, &vlen)
        if rc != FKV_OK:
            # raised here, not in a helper: one traceback level less on a miss
            if rc == FKV_ENOTFOUND:
                raise KeyNotFoundError(key, self._where)
            _raise(self, rc, key)
        return self._parse(key, buf, voff, vlen)

    def get(self, key, default=None):
        """read(key), or default for a key that is missing or expired.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            CorruptionError: a record read failed its checksum.
            StoreClosedError: the store is closed, or this is a forked child.
            StoreIOError: a system call on the file failed, or an earlier flush did.
        """
        cdef Py_ssize_t n
        cdef const char *k = _key_utf8(key, &n)
        cdef uint8_t buf[FKV_REC_MAX]
        cdef size_t voff = 0, vlen = 0
        self._live()
        cdef int rc = self._fetch(k, n, buf, &voff, &vlen)
        if rc != FKV_OK:
            if rc == FKV_ENOTFOUND or rc == FKV_EEXPIRED:
                return default
            _raise(self, rc, key)
        return self._parse(key, buf, voff, vlen)

    def __getitem__(self, key):
        return self.read(key)

    def __delitem__(self, key):
        self.delete(key)

    def ttl(self, key):
        """Seconds left before key expires (a float), or None if it never
        does.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            KeyNotFoundError: the key is not in the store.
            KeyExpiredError: the key's time-to-live has passed.
            CorruptionError: a record read failed its checksum.
            StoreClosedError: the store is closed, or this is a forked child.
            StoreIOError: a system call on the file failed, or an earlier flush did.
        """
        cdef Py_ssize_t n
        cdef const char *k = _key_utf8(key, &n)
        cdef uint8_t buf[FKV_REC_MAX]
        cdef size_t voff = 0, vlen = 0
        self._live()
        cdef int rc = self._fetch(k, n, buf, &voff, &vlen)
        if rc != FKV_OK:
            _raise(self, rc, key)
        return _left(buf)

    def _try_read(self, key, default=WOULD_WAIT):
        """read(key) (get(key, default) when default is given) if the answer
        is in memory and no other thread holds the store, else WOULD_WAIT;
        never waits. For an event loop (fastkv.aio)."""
        cdef Py_ssize_t n
        cdef const char *k = _key_utf8(key, &n)
        cdef uint8_t buf[FKV_REC_MAX]
        cdef size_t voff = 0, vlen = 0
        self._live()
        cdef int rc = fkv_try_read(self._s, k, <size_t>n, buf, &voff, &vlen)
        if rc == FKV_EAGAIN:
            return WOULD_WAIT
        if rc != FKV_OK:
            if default is not WOULD_WAIT and (rc == FKV_ENOTFOUND or rc == FKV_EEXPIRED):
                return default
            _raise(self, rc, key)
        return self._parse(key, buf, voff, vlen)

    def _try_ttl(self, key):
        """ttl(key) if it needs no wait, else WOULD_WAIT."""
        cdef Py_ssize_t n
        cdef const char *k = _key_utf8(key, &n)
        cdef uint8_t buf[FKV_REC_MAX]
        cdef size_t voff = 0, vlen = 0
        self._live()
        cdef int rc = fkv_try_read(self._s, k, <size_t>n, buf, &voff, &vlen)
        if rc == FKV_EAGAIN:
            return WOULD_WAIT
        if rc != FKV_OK:
            _raise(self, rc, key)
        return _left(buf)

    def _try_contains(self, key):
        """key in self if that needs no wait, else WOULD_WAIT."""
        cdef Py_ssize_t n
        cdef const char *k
        cdef int found = 0, rc
        try:
            k = _key_utf8(key, &n)
        except InvalidKeyError:
            return False
        self._live()
        rc = fkv_try_contains(self._s, k, <size_t>n, &found)
        if rc == FKV_EAGAIN:
            return WOULD_WAIT
        if rc != FKV_OK:
            _raise(self, rc, key)
        return found != 0

    def read_with_deadline(self, key):
        """(value, deadline in ms since the Unix epoch, or None for a key that
        never expires): what an export keeps. Raises as read()."""
        cdef Py_ssize_t n
        cdef const char *k = _key_utf8(key, &n)
        cdef uint8_t buf[FKV_REC_MAX]
        cdef size_t voff = 0, vlen = 0
        cdef fkv_rec_header h
        self._live()
        cdef int rc = self._fetch(k, n, buf, &voff, &vlen)
        if rc != FKV_OK:
            _raise(self, rc, key)
        fkv_record_header_decode(buf, &h)  # checked by the read already
        return self._parse(key, buf, voff, vlen), (h.deadline_ms or None)

    cdef inline int _fetch(self, const char *k, Py_ssize_t n, uint8_t *buf, size_t *voff,
                           size_t *vlen) noexcept:
        # From memory with the GIL held, if the record is cached and no other
        # thread holds the store: cheaper than two GIL hand-offs. Else wait
        # (for the mutex or the disk) without the GIL.
        cdef int rc = fkv_try_read(self._s, k, <size_t>n, buf, voff, vlen)
        if rc == FKV_EAGAIN:
            with nogil:
                rc = fkv_read(self._s, k, <size_t>n, buf, voff, vlen)
        return rc

    cdef inline object _parse(self, key, uint8_t *buf, size_t voff, size_t vlen):
        # orjson parses straight from the stack buffer, without a copy into a
        # bytes. The view must not outlive this call: orjson keeps no
        # reference to it, and a decode error (only a crafted file can hold
        # invalid JSON under a valid checksum) is replaced below, outside the
        # except block, so that nothing chains the failed input along.
        try:
            return _loads(PyMemoryView_FromMemory(<char *>buf + voff, <Py_ssize_t>vlen, PyBUF_READ))
        except _JSONDecodeError:
            pass
        raise CorruptionError(f"store {self._where}: the value of {_show(key)} is not valid JSON")

    def delete(self, key):
        """Remove key.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            KeyNotFoundError: the key is not in the store.
            KeyExpiredError: the key's time-to-live has passed.
            StoreClosedError: the store is closed, or this is a forked child.
            StoreIOError: a system call on the file failed, or an earlier flush did.
        """
        cdef Py_ssize_t n
        cdef const char *k = _key_utf8(key, &n)
        cdef int rc
        self._live()
        with nogil:
            rc = fkv_delete(self._s, k, <size_t>n)
        if rc != FKV_OK:
            _raise(self, rc, key)

    def get_many(self, keys):
        """A dict of the live keys among keys and their values; missing and
        expired keys are left out.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            StoreClosedError: the store is closed, or this is a forked child.
            StoreIOError: a system call on the file failed, or an earlier flush did.
            CorruptionError: a record read failed its checksum.
        """
        return _get_many(self, keys)

    def put_many(self, items, ttl=None):
        """put() of every (key, value) pair of a mapping or iterable, as one
        atomic group: readers and a crash see all of them or none. A key
        given twice keeps its last value; one refused pair means nothing is
        written. At most max_transaction_bytes of records.

        Raises:
            InvalidKeyError: a key is not a str of 1 to 32 characters.
            InvalidValueError: a value is not a JSON object, or holds something JSON cannot.
            ValueTooLargeError: an encoded value is over 16 KiB.
            InvalidTTLError: ttl is not None or an int from 1 to 315,360,000.
            StoreFullError: the writes would take the file past max_file_size.
            TransactionError: past max_transaction_bytes, or called from the
                thread that holds an open transaction.
            StoreClosedError: the store is closed, or this is a forked child.
            StoreIOError: a system call on the file failed, or an earlier flush did.
        """
        _put_many(self, items, ttl)

    def delete_many(self, keys):
        """Delete the live keys among keys as one atomic group; returns how
        many it deleted (a key named twice counts once).

        Raises:
            InvalidKeyError: a key is not a str of 1 to 32 characters.
            TransactionError: past max_transaction_bytes, or called from the
                thread that holds an open transaction.
            StoreClosedError: the store is closed, or this is a forked child.
            StoreIOError: a system call on the file failed, or an earlier flush did.
        """
        return _delete_many(self, keys)

    def _txn_begin(self, uint64_t token=0):
        """Take the writer slot (token 0: for this thread)."""
        cdef int rc
        self._live()
        with nogil:
            rc = fkv_txn_begin(self._s, token)
        if rc == FKV_ETXN:
            raise TransactionError(
                f"this thread already holds an open transaction on store {self._where}: "
                f"transactions do not nest")
        if rc != FKV_OK:
            _raise(self, rc, None)

    def _txn_end(self, uint64_t token, bint commit, list changes):
        """End the transaction begun with token (a thread's: its ident),
        writing changes if commit; the number of deletes written."""
        return _write_changes(self, changes, True, token, commit)

    def _versions(self, keys):
        """Each key's version as of one moment, for WATCH: (compactions,
        its record's offset) for a live key, (compactions, -1) for one that
        is not. Any write to a key changes it."""
        return _versions(self, keys)

    def _read_record(self, key):
        return _read_record(self, key)

    def _max_transaction_bytes(self):
        return self._max_txn_bytes

    def __contains__(self, key):
        cdef Py_ssize_t n
        cdef const char *k
        cdef int found = 0, rc
        try:
            k = _key_utf8(key, &n)
        except InvalidKeyError:
            return False  # no such key can be stored, so it is not here
        self._live()
        rc = fkv_try_contains(self._s, k, <size_t>n, &found)
        if rc == FKV_EAGAIN:
            with nogil:
                rc = fkv_contains(self._s, k, <size_t>n, &found)
        if rc != FKV_OK:
            _raise(self, rc, key)
        return found != 0

    def __len__(self):
        cdef uint64_t count = 0
        cdef int rc
        self._live()
        with nogil:
            rc = fkv_count(self._s, &count)
        if rc != FKV_OK:
            _raise(self, rc, None)
        return count

    def __iter__(self):
        """The live keys, in no particular order (see keys())."""
        self._live()
        return _KeyIterator(self, None)

    def keys(self, prefix=None):
        """An iterator over the live keys, or those that start with prefix.

        Safe while other threads write and while the store compacts: every
        key live for the whole iteration comes exactly once, none twice;
        keys created or deleted meanwhile may or may not come. Holds one
        batch of keys in memory, and no lock between batches.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters (a prefix that is not a str).
            StoreClosedError: the store is closed, or this is a forked child.
            CorruptionError: a record read failed its checksum.
            StoreIOError: a system call on the file failed, or an earlier flush did.
        """
        if prefix is not None and not isinstance(prefix, str):
            raise InvalidKeyError(f"prefix must be a str, not {type(prefix).__name__}")
        self._live()
        return _KeyIterator(self, prefix)

    def _scan(self, cursor, prefix=None):
        """One batch of a resumable walk over the live keys: (next cursor,
        keys). Cursor 0 starts a walk and a next cursor of 0 ends it; the
        cursor is a position in hash order, so a walk needs no state on the
        server and keeps keys()'s promises (for the RESP server's SCAN)."""
        if type(cursor) is not int or not FKV_ITER_START <= cursor < FKV_ITER_END:
            raise ValueError(f"invalid cursor {cursor!r}")
        if prefix is not None and not isinstance(prefix, str):
            raise InvalidKeyError(f"prefix must be a str, not {type(prefix).__name__}")
        self._live()
        cdef _KeyIterator it = _KeyIterator(self, prefix)
        it._cursor = cursor
        it._fill()
        return (0 if it._cursor >= FKV_ITER_END else it._cursor), it._batch

    def items(self, prefix=None):
        """An iterator over (key, value) pairs of the live keys, or of those
        that start with prefix, with the promises of keys(). A key deleted
        or expired between its batch and its read is left out.

        Raises:
            InvalidKeyError: the prefix is not a str.
            CorruptionError: a record read failed its checksum.
            StoreClosedError: the store is closed, or this is a forked child.
            StoreIOError: a system call on the file failed, or an earlier flush did.
        """
        for key in self.keys(prefix):
            try:
                value = self.read(key)
            except KeyNotFoundError:
                continue
            yield key, value

    def compact(self, Progress progress=None):
        """Rewrite the data file with only the live records. A Progress,
        if given, counts the bytes read so far (poll it from another thread).

        Raises:
            StoreClosedError: the store is closed, or this is a forked child.
            StoreIOError: a system call on the file failed, or an earlier flush did.
            CorruptionError: a record read failed its checksum.
        """
        cdef int rc
        cdef fkv_progress *p = NULL if progress is None else &progress._p
        self._live()
        with nogil:
            rc = fkv_compact(self._s, p)
        if rc != FKV_OK:
            _raise(self, rc, None)

    def _backup(self, str dest, Progress progress=None):
        """Copy the store as of one moment to the new file dest (absolute),
        with a snapshot beside it; other calls go on meanwhile. A Progress,
        if given, counts the bytes of log copied.

        Raises:
            InvalidPathError: the path cannot be used (dest exists).
            StoreClosedError: the store is closed, or this is a forked child.
            StoreIOError: a system call on the file failed, or an earlier flush did.
        """
        cdef int rc
        cdef fkv_progress *p = NULL if progress is None else &progress._p
        self._live()
        encoded = _os.fsencode(dest)
        cdef const char *d = encoded
        with nogil:
            rc = fkv_backup(self._s, d, p)
        if rc != FKV_OK:
            _raise(self, rc, dest)

    def sync(self):
        """Flush written records to stable storage (survives power loss).

        Raises:
            StoreClosedError: the store is closed, or this is a forked child.
            StoreIOError: a system call on the file failed, or an earlier flush did.
        """
        cdef int rc
        self._live()
        with nogil:
            rc = fkv_sync(self._s)
        if rc != FKV_OK:
            _raise(self, rc, None)

    def stats(self):
        """A dict of counters: live keys, file, live and dead bytes, index size."""
        cdef fkv_stats st
        cdef int rc
        self._live()
        with nogil:
            rc = fkv_get_stats(self._s, &st)
        if rc != FKV_OK:
            _raise(self, rc, None)
        return {
            "live_keys": st.live_keys,
            "held_keys": st.held_keys,
            "file_bytes": st.file_bytes,
            "live_bytes": st.live_bytes,
            "dead_bytes": st.dead_bytes,
            "index_bytes": st.index_bytes,
            "index_slots": st.index_slots,
            "index_bytes_per_key": (<double>st.index_bytes / st.held_keys) if st.held_keys else 0.0,
            "max_file_size": st.max_file_size,
            "torn_bytes_dropped": st.torn_bytes_dropped,
            "compactions": st.compactions,
            "flushes": st.flushes,
            "flush_failed": st.flush_errno != 0,
            # 1: SNAP_LOADED (src_c/snapshot_format.h)
            "open_path": "snapshot" if st.snapshot_status == 1 else "scan",
            "snapshot": fkv_snapshot_status_name(st.snapshot_status).decode(),
            "open_scanned_bytes": st.open_scanned_bytes,
            "open_hinted_records": st.open_hinted_records,
            "snapshots_written": st.snapshots_written,
            "snapshot_table_bytes": st.snapshot_table_bytes,
        }

    def close(self):
        """Close the store; waits for calls in flight. Safe to call twice."""
        if self._s != NULL:
            with nogil:
                fkv_close(self._s)


cdef object _left(const uint8_t *rec):
    """Seconds left before the deadline of a record read (and checked) in
    rec, or None without one."""
    cdef fkv_rec_header h
    fkv_record_header_decode(rec, &h)
    if h.deadline_ms == 0:
        return None
    cdef uint64_t now = fkv_now_ms()
    return (<double>(h.deadline_ms - now) / 1000.0) if h.deadline_ms > now else 0.0

include "_groups.pxi"


include "_iteration.pxi"


include "_recovery.pxi"


include "_testhooks.pxi"


include "_serving.pxi"


include "_resp.pxi"

# Part of _core.pyx: several keys at once, and the transaction's calls into
# the core. A group of changes is a list of (key, value, deadline_ms)
# tuples, value the compact JSON bytes of a put or None for a delete; the
# key's UTF-8 is cached inside the str, so the list keeps every byte the C
# call reads alive.

from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.mem cimport PyMem_Free, PyMem_Malloc


cdef inline uint64_t _deadline_of(object ttl, object key) except? 0:
    """Absolute deadline (ms since the epoch) of a ttl given now, 0 for None."""
    cdef int64_t t = _ttl_seconds(ttl, key)
    return fkv_now_ms() + <uint64_t>t * 1000u if t else 0


cdef inline Py_ssize_t _record_bytes(object key, object value) except -1:
    """What a change adds to a group: its record's length."""
    cdef Py_ssize_t n
    _key_utf8(key, &n)
    return FKV_REC_HEADER_SIZE + n + (PyBytes_GET_SIZE(value) if value is not None else 0)


cdef size_t _write_changes(Store store, list changes, bint txn, uint64_t token,
                           bint commit) except? 0xFFFFFFFF:
    """Write changes as one group (or end a transaction with them): the
    number of deletes written."""
    cdef Py_ssize_t n = len(changes), i, klen
    cdef fkv_change *c = <fkv_change *>PyMem_Malloc((n if n else 1) * sizeof(fkv_change))
    cdef size_t deleted = 0
    cdef int rc
    cdef tuple t
    if c == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            t = <tuple>changes[i]
            c[i].key = _key_utf8(t[0], &klen)
            c[i].klen = <size_t>klen
            if t[1] is None:
                c[i].op = FKV_CHANGE_DELETE
                c[i].val = NULL
                c[i].vlen = 0
                c[i].deadline_ms = 0
            else:
                c[i].op = FKV_CHANGE_PUT
                c[i].val = <const uint8_t *>PyBytes_AS_STRING(t[1])
                c[i].vlen = <size_t>PyBytes_GET_SIZE(t[1])
                c[i].deadline_ms = <uint64_t>t[2]
        store._live()
        with nogil:
            if txn:
                rc = fkv_txn_end(store._s, token, commit, c, <size_t>n, &deleted)
            else:
                rc = fkv_write_group(store._s, c, <size_t>n, &deleted)
    finally:
        PyMem_Free(c)
    if rc != FKV_OK:
        _raise(store, rc, None)
    return deleted


cdef int _within_limit(Store store, Py_ssize_t total) except -1:
    if <uint64_t>total > store._max_txn_bytes:
        raise TransactionError(
            f"these changes need {total:,} bytes of records, over max_transaction_bytes "
            f"{store._max_txn_bytes:,} of store {store._where}; nothing was written")
    return 0


# _put_group's answer for changes past max_transaction_bytes (not a core result)
cdef enum:
    _OVER_LIMIT = -1000


cdef int _put_group(Store store, list keys, list values, uint64_t deadline) except? -1:
    """Put keys[i] = values[i] (compact JSON bytes, keys checked already or
    checked here) as one group, every one with deadline: the core's result
    (FKV_EDUPLICATE for a key given twice), or _OVER_LIMIT past
    max_transaction_bytes, nothing written then."""
    cdef Py_ssize_t n = len(keys), i, klen
    cdef uint64_t total = 0
    cdef size_t deleted = 0
    cdef int rc
    cdef fkv_change *c = <fkv_change *>PyMem_Malloc((n if n else 1) * sizeof(fkv_change))
    if c == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            c[i].key = _key_utf8(keys[i], &klen)
            c[i].klen = <size_t>klen
            c[i].op = FKV_CHANGE_PUT
            c[i].val = <const uint8_t *>PyBytes_AS_STRING(values[i])
            c[i].vlen = <size_t>PyBytes_GET_SIZE(values[i])
            c[i].deadline_ms = deadline
            total += FKV_REC_HEADER_SIZE + c[i].klen + c[i].vlen
        if total > store._max_txn_bytes:
            return _OVER_LIMIT
        store._live()
        with nogil:
            rc = fkv_write_group(store._s, c, <size_t>n, &deleted)
        return rc
    finally:
        PyMem_Free(c)


cdef object _put_many(Store store, object items, object ttl):
    """Every pair checked (key, then the ttl once, then the value) before
    anything is written, then one group; a key given twice keeps its last
    value (found by the core, which refuses a group naming a key twice)."""
    cdef list keys = [], values = []
    cdef Py_ssize_t n
    cdef uint64_t deadline = 0
    cdef bint first = True
    pairs = items.items() if hasattr(items, "items") else items
    for key, value in pairs:
        _key_utf8(key, &n)
        if first:
            deadline = _deadline_of(ttl, key)  # one deadline for all, ttl checked once
            first = False
        values.append(_encode(value, key))
        keys.append(key)
    if first:
        if ttl is not None:
            _ttl_seconds(ttl, None)
        return None
    cdef int rc = _put_group(store, keys, values, deadline)
    if rc == FKV_EDUPLICATE:
        last = dict(zip(keys, values))
        keys, values = list(last), list(last.values())
        rc = _put_group(store, keys, values, deadline)
    if rc == _OVER_LIMIT:
        total = sum(_record_bytes(k, v) for k, v in zip(keys, values))
        _within_limit(store, total)
    if rc != FKV_OK:
        _raise(store, rc, None)
    return None


cdef Py_ssize_t _delete_many(Store store, object keys) except -1:
    cdef Py_ssize_t n, total = 0
    cdef dict staged = {}
    for key in keys:
        _key_utf8(key, &n)
        if key not in staged:
            staged[key] = (key, None, 0)
            total += FKV_REC_HEADER_SIZE + n
    _within_limit(store, total)
    if not staged:
        return 0
    return <Py_ssize_t>_write_changes(store, list(staged.values()), False, 0, False)


# Buffers for get_many, reused (taken and given back with the GIL held): a
# fresh 100 KiB each call cost new pages every time.
cdef list _spare_buffers = []


cdef dict _get_many(Store store, object keys):
    cdef list ks = keys if type(keys) is list else list(keys)
    cdef Py_ssize_t n = len(ks), i, klen
    cdef fkv_many *m = <fkv_many *>PyMem_Malloc((n if n else 1) * sizeof(fkv_many))
    cdef bytearray space = _spare_buffers.pop() if _spare_buffers else bytearray(64 * 1024)
    cdef uint8_t *buf
    cdef size_t cap, need = 0
    cdef dict out = {}
    cdef int rc
    if m == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            m[i].key = _key_utf8(ks[i], &klen)
            m[i].klen = <size_t>klen
        store._live()
        while True:
            buf = <uint8_t *>PyByteArray_AS_STRING(space)
            cap = <size_t>len(space)
            with nogil:
                rc = fkv_read_many(store._s, m, <size_t>n, buf, cap, &need)
            if rc != FKV_ENOMEM or need <= cap:
                break
            space = bytearray(need + need // 4)
        if rc != FKV_OK:
            _raise(store, rc, None)
        for i in range(n):
            if m[i].status == FKV_OK:
                key = ks[i]
                out[key] = store._parse(key, buf, m[i].voff, m[i].vlen)
    finally:
        PyMem_Free(m)
        if len(_spare_buffers) < 4 and len(space) <= 4 * 1024 * 1024:
            _spare_buffers.append(space)
    return out


cdef list _versions(Store store, list keys):
    cdef Py_ssize_t n = len(keys), i, klen
    cdef fkv_many *m = <fkv_many *>PyMem_Malloc((n if n else 1) * sizeof(fkv_many))
    cdef uint64_t epoch = 0
    cdef int rc
    if m == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            m[i].key = _key_utf8(keys[i], &klen)
            m[i].klen = <size_t>klen
        store._live()
        with nogil:
            rc = fkv_versions(store._s, m, <size_t>n, &epoch)
        if rc != FKV_OK:
            _raise(store, rc, None)
        return [(epoch, m[i].at if m[i].status == FKV_OK else -1) for i in range(n)]
    finally:
        PyMem_Free(m)


cdef tuple _read_record(Store store, object key):
    """(value bytes, deadline ms or 0) of a live key; raises as read()."""
    cdef Py_ssize_t n
    cdef const char *k = _key_utf8(key, &n)
    cdef uint8_t buf[FKV_REC_MAX]
    cdef size_t voff = 0, vlen = 0
    cdef fkv_rec_header h
    store._live()
    cdef int rc = store._fetch(k, n, buf, &voff, &vlen)
    if rc != FKV_OK:
        _raise(store, rc, key)
    fkv_record_header_decode(buf, &h)
    return PyBytes_FromStringAndSize(<char *>buf + voff, <Py_ssize_t>vlen), h.deadline_ms


def txn_put(Store store, dict changes, key, value, ttl, Py_ssize_t total):
    """A transaction's put staged in changes (key -> (key, value bytes,
    deadline)), checked as put() checks it (key, value, ttl): the
    transaction's new total of record bytes. Past max_transaction_bytes,
    TransactionError and nothing staged. One call on the path of every
    tx.put, so in C."""
    cdef Py_ssize_t n
    _key_utf8(key, &n)
    cdef bytes data = _encode(value, key)
    cdef uint64_t deadline = _deadline_of(ttl, key)
    cdef Py_ssize_t size = FKV_REC_HEADER_SIZE + n + PyBytes_GET_SIZE(data)
    old = changes.get(key)
    if old is not None:
        size -= _record_bytes(key, (<tuple>old)[1])
    if <uint64_t>(total + size) > store._max_txn_bytes:
        raise TransactionError(
            f"this transaction would hold {total + size:,} bytes of records, over "
            f"max_transaction_bytes {store._max_txn_bytes:,} of store {store._where}; the "
            f"call changed nothing and the transaction goes on")
    changes[key] = (key, data, deadline)
    return total + size


def deadline_of(ttl, key):
    """The deadline (ms since the epoch, 0 for None) of a ttl given now,
    checked as create() checks it."""
    return _deadline_of(ttl, key)


def now_ms():
    """The core's clock: ms since the Unix epoch."""
    return fkv_now_ms()


def record_bytes(key, value):
    """Bytes of the record a change of key to value (bytes, or None for a
    delete) adds to a group."""
    return _record_bytes(key, value)

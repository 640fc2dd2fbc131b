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


cdef dict _staged_puts(Store store, object items, object ttl):
    """key -> (key, value bytes, deadline) for put_many: every pair checked
    before anything is written; a key given twice keeps its last value."""
    cdef dict out = {}
    cdef Py_ssize_t n
    cdef uint64_t deadline = 0
    cdef bint first = True
    pairs = items.items() if hasattr(items, "items") else items
    for pair in pairs:
        key, value = pair
        _key_utf8(key, &n)
        if first:
            deadline = _deadline_of(ttl, key)  # one deadline for all, ttl checked once
            first = False
        out[key] = (key, _encode(value, key), deadline)
    if first and ttl is not None:
        _ttl_seconds(ttl, None)
    return out


cdef object _put_many(Store store, object items, object ttl):
    cdef dict staged = _staged_puts(store, items, ttl)
    cdef Py_ssize_t total = 0
    for t in staged.values():
        total += _record_bytes(t[0], t[1])
    _within_limit(store, total)
    if staged:
        _write_changes(store, list(staged.values()), False, 0, False)
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

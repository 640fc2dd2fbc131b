# Part of _core.pyx: several keys at once, and the transaction's calls into
# the core. A group of changes is a list of (key, value, deadline_ms)
# tuples, value the compact JSON bytes of a put or None for a delete; the
# key's UTF-8 is cached inside the str, so the list keeps every byte the C
# call reads alive.

from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.dict cimport PyDict_Next
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.ref cimport PyObject
from libc.string cimport memcpy


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


# _Puts.write's answer for changes past max_transaction_bytes (not a core result)
cdef enum:
    _OVER_LIMIT = -1000


cdef class _Puts:
    """Puts gathered for one group, each key checked and each value encoded
    as it is added (its JSON packed into one buffer: orjson's own bytes,
    a thousand kept alive at once, would cost a fresh page each). write()
    sends them to the core as one group."""
    cdef fkv_change *c
    cdef Py_ssize_t n, cap
    cdef list keys  # keeps every key's cached UTF-8 alive
    cdef bytearray packed
    cdef uint64_t total  # bytes of records the group takes

    def __cinit__(self):
        self.keys = []
        self.packed = bytearray()

    def __dealloc__(self):
        PyMem_Free(self.c)

    cdef int add(self, object key, object value) except -1:
        """key = value (a dict or JSON text), both checked, the value encoded."""
        cdef Py_ssize_t klen
        cdef const char *k = _key_utf8(key, &klen)
        cdef bytes data = _encode(value, key)
        cdef fkv_change *grown
        if self.n == self.cap:
            self.cap = self.cap * 2 if self.cap else 64
            grown = <fkv_change *>PyMem_Realloc(self.c, <size_t>self.cap * sizeof(fkv_change))
            if grown == NULL:
                raise MemoryError()
            self.c = grown
        self.packed += data
        self.keys.append(key)
        self.c[self.n].key = k
        self.c[self.n].klen = <size_t>klen
        self.c[self.n].op = FKV_CHANGE_PUT
        self.c[self.n].vlen = <size_t>PyBytes_GET_SIZE(data)
        self.n += 1
        self.total += FKV_REC_HEADER_SIZE + <size_t>klen + <size_t>PyBytes_GET_SIZE(data)
        return 0

    cdef int _keep_last(self) except -1:
        """Drop every put of a key but its last (the core refuses a group
        naming a key twice): 1 if any was dropped."""
        cdef dict last = {}
        cdef Py_ssize_t i, kept = 0
        for i in range(self.n):
            last[self.keys[i]] = i
        if len(last) == self.n:
            return 0
        self.total = 0
        for i in range(self.n):
            if last[self.keys[i]] == i:
                self.c[kept] = self.c[i]
                self.keys[kept] = self.keys[i]
                self.total += FKV_REC_HEADER_SIZE + self.c[kept].klen + self.c[kept].vlen
                kept += 1
        self.n = kept
        del self.keys[kept:]
        return 1

    cdef int write(self, Store store, uint64_t deadline) except? -1:
        """The puts as one group, every one with deadline: the core's result,
        or _OVER_LIMIT past max_transaction_bytes (self.total says by how
        much), nothing written then."""
        cdef size_t deleted = 0
        cdef int rc
        self._point(deadline)  # before _keep_last moves changes about
        if self.total > store._max_txn_bytes and not (self._keep_last() and
                                                      self.total <= store._max_txn_bytes):
            return _OVER_LIMIT
        store._live()
        with nogil:
            rc = fkv_write_group(store._s, self.c, <size_t>self.n, &deleted)
        if rc == FKV_EDUPLICATE and self._keep_last():
            with nogil:
                rc = fkv_write_group(store._s, self.c, <size_t>self.n, &deleted)
        return rc

    cdef void _point(self, uint64_t deadline):
        """Each change's value inside packed, once it has stopped growing."""
        cdef const uint8_t *at = <const uint8_t *>PyByteArray_AS_STRING(self.packed)
        cdef Py_ssize_t i
        for i in range(self.n):
            self.c[i].val = at
            self.c[i].deadline_ms = deadline
            at += self.c[i].vlen


cdef object _put_many(Store store, object items, object ttl):
    """Every pair checked (key, then the ttl once, then the value) before
    anything is written, then one group; a key given twice keeps its last
    value."""
    cdef _Puts puts = _Puts()
    cdef Py_ssize_t pos = 0, klen
    cdef uint64_t deadline = 0
    cdef PyObject *k
    cdef PyObject *v
    if type(items) is dict:  # the common case, walked without a tuple per pair
        while PyDict_Next(items, &pos, &k, &v):
            key = <object>k  # owned from here: the checks below may run user code
            value = <object>v
            if puts.n == 0:
                _key_utf8(key, &klen)  # the key before the ttl, as put() checks
                deadline = _deadline_of(ttl, key)  # one deadline for all, ttl checked once
            puts.add(key, value)
    else:
        for key, value in (items.items() if hasattr(items, "items") else items):
            if puts.n == 0:
                _key_utf8(key, &klen)
                deadline = _deadline_of(ttl, key)
            puts.add(key, value)
    if puts.n == 0:
        if ttl is not None:
            _ttl_seconds(ttl, None)
        return None
    cdef int rc = puts.write(store, deadline)
    if rc == _OVER_LIMIT:
        _within_limit(store, <Py_ssize_t>puts.total)
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
        _parse_many(store, ks, m, n, buf, out)
    finally:
        PyMem_Free(m)
        if len(_spare_buffers) < 4 and len(space) <= 4 * 1024 * 1024:
            _spare_buffers.append(space)
    return out


cdef int _parse_many(Store store, list ks, fkv_many *m, Py_ssize_t n, uint8_t *buf,
                     dict out) except -1:
    """out[key] = the parsed value of every live key, all parsed by one
    orjson call over the values joined as a JSON array: per value, a call
    and a view cost as much as the parse (a third of get_many). A file
    crafted to hold values that are not one JSON text each fails that parse
    or its count, and then each is parsed alone, naming the key at fault."""
    cdef Py_ssize_t i, live = 0
    cdef size_t size = 2, at = 1
    for i in range(n):
        if m[i].status == FKV_OK:
            live += 1
            size += m[i].vlen + 1
    if live == 0:
        return 0
    cdef char *joined = <char *>PyMem_Malloc(size)
    if joined == NULL:
        raise MemoryError()
    values = None
    try:
        joined[0] = b'['
        for i in range(n):
            if m[i].status == FKV_OK:
                memcpy(joined + at, buf + m[i].voff, m[i].vlen)
                at += m[i].vlen
                joined[at] = b','
                at += 1
        joined[at - 1] = b']'
        try:
            values = _loads(PyMemoryView_FromMemory(joined, <Py_ssize_t>at, PyBUF_READ))
        except _JSONDecodeError:
            pass
    finally:
        PyMem_Free(joined)
    if type(values) is not list or len(<list>values) != live:
        for i in range(n):
            if m[i].status == FKV_OK:
                key = ks[i]
                out[key] = store._parse(key, buf, m[i].voff, m[i].vlen)
        return 0
    live = 0
    for i in range(n):
        if m[i].status == FKV_OK:
            out[ks[i]] = (<list>values)[live]
            live += 1
    return 0


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
    cdef bytes data = _encode_kept(value, key)
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

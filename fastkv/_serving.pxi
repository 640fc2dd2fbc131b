# Reads for the servers: the stored JSON bytes as they are, no dict made.
# Included by _core.pyx (one module: these share its C declarations).

def value_bytes(Store store, key, bint may_wait=False):
    """The compact JSON bytes stored under key, or None if it is missing or
    expired. With may_wait false, WOULD_WAIT when only a call that waits
    (for the disk, or for another thread in the store) could answer: an
    event loop calls it that way, and again with may_wait in a thread."""
    cdef Py_ssize_t n
    cdef const char *k = _key_utf8(key, &n)
    cdef uint8_t buf[FKV_REC_MAX]
    cdef size_t voff = 0, vlen = 0
    store._live()
    cdef int rc = fkv_try_read(store._s, k, <size_t>n, buf, &voff, &vlen)
    if rc == FKV_EAGAIN:
        if not may_wait:
            return WOULD_WAIT
        with nogil:
            rc = fkv_read(store._s, k, <size_t>n, buf, &voff, &vlen)
    if rc == FKV_ENOTFOUND or rc == FKV_EEXPIRED:
        return None
    if rc != FKV_OK:
        _raise(store, rc, key)
    return PyBytes_FromStringAndSize(<char *>buf + voff, <Py_ssize_t>vlen)

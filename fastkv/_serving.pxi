# The servers' hot path in C: stored JSON bytes handed out as they are (no
# dict made), and the Redis protocol's plainest GET and SET answered
# without a Python frame per request.
# Included by _core.pyx (one module: these share its C declarations).

from libc.stdio cimport snprintf
from libc.string cimport memcpy

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


def resp_batch(Store store, bytearray buf, Py_ssize_t pos, list out, Py_ssize_t budget,
               bint resp3, Py_ssize_t max_args, Py_ssize_t max_bulk):
    """Answer the requests in buf from pos while each is a plain `GET key`
    or `SET key value` that needs no wait and meets no error, appending the
    replies to out, until they add up to budget bytes. Returns (pos, bytes
    added, requests answered, request, end): request is the one at pos this
    left for the general path (a list of bytes, RESP_INLINE or None, as
    resp_next gives it, which ends at end). Raises RespProtocolError."""
    cdef Py_ssize_t size = 0, answered = 0, end = pos
    cdef object request = None
    while size < budget:
        request, end = _resp_next(buf, pos, max_args, max_bulk)
        if type(request) is not list:
            break
        reply = _resp_plain(store, <list>request, resp3)
        if reply is None:
            break
        out.append(reply)
        size += PyBytes_GET_SIZE(reply)
        answered += 1
        pos = end
        request = None
    return pos, size, answered, request, end


cdef inline bint _is_word(bytes word, const char *upper, Py_ssize_t n):
    """word is upper in any case (upper: capital ASCII letters)."""
    if PyBytes_GET_SIZE(word) != n:
        return False
    cdef const char *w = PyBytes_AS_STRING(word)
    cdef Py_ssize_t i
    for i in range(n):
        if (w[i] & 0xDF) != upper[i]:
            return False
    return True


cdef object _resp_plain(Store store, list request, bint resp3):
    """The reply to a plain GET or SET, or None to leave it to the general
    path: other commands, options, a read that would wait, and every
    error. A failed write changed nothing, so the general path runs it
    again and words the error from the one table."""
    cdef Py_ssize_t argc = len(request)
    if argc == 2 and _is_word(<bytes>request[0], b"GET", 3):
        return _plain_get(store, <bytes>request[1], resp3)
    if argc == 3 and _is_word(<bytes>request[0], b"SET", 3):
        key = _plain_key(<bytes>request[1])
        if key is None or store._s == NULL:
            return None
        try:
            store._append(key, <bytes>request[2], 0, True, True)
        except Exception:
            return None
        return b"+OK\r\n"
    return None


cdef object _plain_key(bytes raw):
    try:
        return PyUnicode_DecodeUTF8(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), NULL)
    except UnicodeDecodeError:
        return None


cdef object _plain_get(Store store, bytes raw, bint resp3):
    cdef Py_ssize_t n
    cdef const char *k
    cdef uint8_t buf[FKV_REC_MAX]
    cdef size_t voff = 0, vlen = 0
    key = _plain_key(raw)
    if key is None or store._s == NULL:
        return None
    try:
        k = _key_utf8(key, &n)
    except Exception:  # an invalid key
        return None
    cdef int rc = fkv_try_read(store._s, k, <size_t>n, buf, &voff, &vlen)
    if rc == FKV_ENOTFOUND or rc == FKV_EEXPIRED:
        return b"_\r\n" if resp3 else b"$-1\r\n"
    if rc != FKV_OK:
        return None
    cdef char head[24]
    cdef int h = snprintf(head, sizeof(head), "$%zu\r\n", vlen)
    reply = PyBytes_FromStringAndSize(NULL, h + <Py_ssize_t>vlen + 2)
    cdef char *r = PyBytes_AS_STRING(reply)
    memcpy(r, head, <size_t>h)
    memcpy(r + h, buf + voff, vlen)
    r[h + vlen] = 13
    r[h + vlen + 1] = 10
    return reply

# The servers' hot path in C: stored JSON bytes handed out as they are (no
# dict made), and the Redis protocol's plainest GET and SET answered
# without a Python frame per request.
# Included by _core.pyx (one module: these share its C declarations).

from cpython.bytearray cimport PyByteArray_Resize
from libc.stdio cimport snprintf
from libc.string cimport memcmp, memcpy

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


def values_many(Store store, list keys, bint may_wait=False):
    """The compact JSON bytes stored under each of keys (bytes, as a client
    sent them), all as of one moment: None for a key that is missing,
    expired or could not be one. WOULD_WAIT as value_bytes gives it."""
    cdef Py_ssize_t n = len(keys), i
    cdef fkv_many *m = <fkv_many *>PyMem_Malloc((n if n else 1) * sizeof(fkv_many))
    cdef bytearray space = _spare_buffers.pop() if _spare_buffers else bytearray(64 * 1024)
    cdef uint8_t *buf
    cdef size_t cap, need = 0
    cdef int rc
    if m == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            if type(keys[i]) is not bytes:
                raise TypeError("values_many takes keys as bytes")
            m[i].key = PyBytes_AS_STRING(keys[i])
            m[i].klen = <size_t>PyBytes_GET_SIZE(keys[i])
        store._live()
        while True:
            buf = <uint8_t *>PyByteArray_AS_STRING(space)
            cap = <size_t>len(space)
            if may_wait:
                with nogil:
                    rc = fkv_read_many(store._s, m, <size_t>n, buf, cap, &need)
            else:
                rc = fkv_try_read_many(store._s, m, <size_t>n, buf, cap, &need)
                if rc == FKV_EAGAIN:
                    return WOULD_WAIT
            if rc != FKV_ENOMEM or need <= cap:
                break
            space = bytearray(need + need // 4)
        if rc != FKV_OK:
            _raise(store, rc, None)
        return [PyBytes_FromStringAndSize(<char *>buf + m[i].voff, <Py_ssize_t>m[i].vlen)
                if m[i].status == FKV_OK else None for i in range(n)]
    finally:
        PyMem_Free(m)
        if len(_spare_buffers) < 4 and len(space) <= 4 * 1024 * 1024:
            _spare_buffers.append(space)


def resp_batch(Store store, bytearray buf, Py_ssize_t pos, list out, Py_ssize_t budget,
               bint resp3, Py_ssize_t max_args, Py_ssize_t max_bulk, bint multi_ok=False):
    """Answer the requests in buf from pos while each is a plain `GET key`
    or `SET key value` that needs no wait and meets no error, appending the
    replies to out (as one bytearray), until they add up to budget bytes.
    Consecutive SETs are put in one append (fkv_put_batch). With multi_ok
    (the connection WATCHes nothing), a whole `MULTI`, plain SETs, `EXEC`
    block is one group write (what redis-py's pipeline() of SETs sends).
    Returns (pos, bytes added, requests answered, request, end): request
    is the one at pos this left for the general path (a list of bytes,
    RESP_INLINE or None, as resp_next gives it, which ends at end). Raises
    RespProtocolError."""
    cdef bytearray acc = bytearray()
    try:
        return _resp_batch(store, buf, pos, acc, budget, resp3, max_args, max_bulk, multi_ok)
    finally:
        if PyByteArray_GET_SIZE(acc):
            out.append(acc)


cdef tuple _resp_batch(Store store, bytearray buf, Py_ssize_t pos, bytearray acc,
                       Py_ssize_t budget, bint resp3, Py_ssize_t max_args, Py_ssize_t max_bulk,
                       bint multi_ok):
    cdef _Sets sets
    sets.n = 0
    sets.answered = 0
    sets.size = 0
    cdef list held = []  # what the pending items parsed by _stage_set point into
    cdef object request = None, reply
    cdef Py_ssize_t end = pos, added
    while sets.size < budget:
        if sets.n == 0:
            added = _raw_get(store, buf, pos, acc, resp3, &end)
            if added > 0:
                sets.size += added
                sets.answered += 1
                pos = end
                continue
        if sets.n < FKV_BATCH_MAX and _raw_set(store, buf, pos, &sets, &end):
            pos = end
            continue
        request, end = _resp_next(buf, pos, max_args, max_bulk)
        if type(request) is list and sets.n < FKV_BATCH_MAX and _stage_set(
                store, <list>request, &sets, held, pos, end):
            pos = end
            continue
        if sets.n:
            failed = _put_staged(store, &sets, held, acc, buf, max_args, max_bulk)
            if failed is not None:  # the general path runs it and words the error
                return failed[0], sets.size, sets.answered, failed[1], failed[2]
            continue  # request is parsed again, now with nothing staged
        if type(request) is not list:
            break
        if multi_ok and len(<list>request) == 1 and _is_word(<bytes>(<list>request)[0],
                                                             b"MULTI", 5):
            block = _multi_block(store, buf, end, max_args, max_bulk)
            if block is None:
                break
            pos, count = block
            reply = _multi_replies(count)
            acc += <bytes>reply
            sets.size += PyBytes_GET_SIZE(reply)
            sets.answered += count + 2
            request = None
            continue
        reply = _resp_plain_get(store, <list>request, resp3)
        if reply is None:
            break
        acc += <bytes>reply
        sets.size += PyBytes_GET_SIZE(reply)
        sets.answered += 1
        pos = end
        request = None
    # nothing is staged here: staging adds no bytes, so the loop ends only
    # after a reply or a flush
    return pos, sets.size, sets.answered, request, end


cdef object _multi_block(Store store, bytearray buf, Py_ssize_t pos, Py_ssize_t max_args,
                         Py_ssize_t max_bulk):
    """After a MULTI, plain SETs and then EXEC, all in buf from pos: the
    SETs written as one group (a key set twice keeps its last value, as the
    transaction would). (position after EXEC, number of SETs), or None if
    the block is anything else, not all here yet, over
    max_transaction_bytes, or its write failed: nothing is then written,
    and the general path runs it command by command and words any error."""
    cdef _Puts puts = _Puts()
    cdef object request
    cdef Py_ssize_t count = 0
    while True:
        try:
            request, end = _resp_next(buf, pos, max_args, max_bulk)
        except RespProtocolError:
            return None
        if type(request) is not list:
            return None
        if len(<list>request) == 1 and _is_word(<bytes>(<list>request)[0], b"EXEC", 4):
            break
        if len(<list>request) != 3 or not _is_word(<bytes>(<list>request)[0], b"SET", 3):
            return None
        key = _plain_key(<bytes>(<list>request)[1])
        if key is None:
            return None
        try:
            puts.add(key, (<list>request)[2])
        except FastKVError:
            return None
        count += 1
        pos = end
    # a key set twice keeps its last value, as the transaction would
    return (end, count) if puts.write(store, 0) == FKV_OK else None


cdef char *_acc_grow(bytearray acc, Py_ssize_t more) except NULL:
    """Room for more bytes at the end of acc (a bytearray over-allocates as
    it grows, so a run of small replies costs few reallocations)."""
    cdef Py_ssize_t at = PyByteArray_GET_SIZE(acc)
    PyByteArray_Resize(acc, at + more)
    return PyByteArray_AS_STRING(acc) + at


cdef Py_ssize_t _raw_get(Store store, bytearray buf, Py_ssize_t pos, bytearray acc, bint resp3,
                         Py_ssize_t *after) except -1:
    """A `GET key` at pos in the array form redis clients send, its key 1 to
    32 ASCII bytes, answered into acc straight from buf: no list, no bytes,
    no str made (a pipeline of GETs had spent most of its time making them).
    The bytes added, with *after where the request ends; 0 to leave the
    request to the parser (anything else, a read that would wait, an error)."""
    cdef Py_ssize_t n = PyByteArray_GET_SIZE(buf), p = pos + 14, k, klen, i
    cdef const unsigned char *b = <const unsigned char *>PyByteArray_AS_STRING(buf)
    if n - pos < 20 or store._s == NULL:
        return 0
    if (memcmp(b + pos, b"*2\r\n$3\r\n", 8) != 0 or (b[pos + 8] & 0xDF) != 71  # G
            or (b[pos + 9] & 0xDF) != 69 or (b[pos + 10] & 0xDF) != 84  # E, T
            or memcmp(b + pos + 11, b"\r\n$", 3) != 0):
        return 0
    if b[p] < 49 or b[p] > 57:  # a leading zero or a sign: the parser's
        return 0
    klen = b[p] - 48
    p += 1
    if 48 <= b[p] <= 57:
        klen = klen * 10 + b[p] - 48
        p += 1
    k = p + 2
    if klen > FKV_KEY_MAX_CHARS or k + klen + 2 > n or b[p] != 13 or b[p + 1] != 10:
        return 0
    if b[k + klen] != 13 or b[k + klen + 1] != 10:
        return 0
    for i in range(klen):
        if b[k + i] & 0x80:  # not ASCII: UTF-8 to check, the parser's
            return 0
    cdef uint8_t val[FKV_REC_MAX]
    cdef size_t voff = 0, vlen = 0
    cdef int rc = fkv_try_read(store._s, <const char *>b + k, <size_t>klen, val, &voff, &vlen)
    cdef char *w
    after[0] = k + klen + 2
    if rc == FKV_ENOTFOUND or rc == FKV_EEXPIRED:
        if resp3:
            memcpy(_acc_grow(acc, 3), b"_\r\n", 3)
            return 3
        memcpy(_acc_grow(acc, 5), b"$-1\r\n", 5)
        return 5
    if rc != FKV_OK:
        return 0
    cdef char head[24]
    cdef Py_ssize_t h = snprintf(head, sizeof(head), "$%zu\r\n", vlen)
    w = _acc_grow(acc, h + <Py_ssize_t>vlen + 2)
    memcpy(w, head, <size_t>h)
    memcpy(w + h, val + voff, vlen)
    w[h + vlen] = 13
    w[h + vlen + 1] = 10
    return h + <Py_ssize_t>vlen + 2


cdef bytes _multi_replies(Py_ssize_t count):
    """MULTI's +OK, a +QUEUED per SET, and EXEC's array of +OK."""
    return (b"+OK\r\n" + b"+QUEUED\r\n" * count + b"*%d\r\n" % count
            + b"+OK\r\n" * count)


cdef struct _Sets:
    fkv_put_item items[FKV_BATCH_MAX]
    Py_ssize_t start[FKV_BATCH_MAX]  # where each item's request is in buf
    Py_ssize_t n, answered, size


cdef inline Py_ssize_t _raw_length(const unsigned char *b, Py_ssize_t *p, Py_ssize_t n,
                                   int digits):
    """The decimal at b[*p] (1 to digits digits, no leading zero) and its
    CRLF, *p moved past them; -1 for anything else."""
    cdef Py_ssize_t at = p[0], value = 0
    if at >= n or b[at] < 49 or b[at] > 57:
        return -1
    while at < n and 48 <= b[at] <= 57:
        if at - p[0] == digits:
            return -1
        value = value * 10 + b[at] - 48
        at += 1
    if at + 1 >= n or b[at] != 13 or b[at + 1] != 10:
        return -1
    p[0] = at + 2
    return value


cdef bint _raw_set(Store store, bytearray buf, Py_ssize_t pos, _Sets *sets,
                   Py_ssize_t *after):
    """A `SET key value` at pos in the array form clients send, its key 1 to
    32 ASCII bytes and its value JSON text that is stored as it came
    (json_compact.h), staged pointing into buf, which stays as it is until
    the batch is put: no list, no bytes, no str made (they were most of a
    pipelined SET's time in Python). False leaves the request to the parser
    (anything else, and every error, which the general path words)."""
    cdef Py_ssize_t n = PyByteArray_GET_SIZE(buf), p = pos + 14, k, klen, v, vlen, i
    cdef const unsigned char *b = <const unsigned char *>PyByteArray_AS_STRING(buf)
    if n - pos < 24 or store._s == NULL:
        return False
    if (memcmp(b + pos, b"*3\r\n$3\r\n", 8) != 0 or (b[pos + 8] & 0xDF) != 83  # S
            or (b[pos + 9] & 0xDF) != 69 or (b[pos + 10] & 0xDF) != 84  # E, T
            or memcmp(b + pos + 11, b"\r\n$", 3) != 0):
        return False
    klen = _raw_length(b, &p, n, 2)
    k = p
    if klen < 1 or klen > FKV_KEY_MAX_CHARS or k + klen + 3 > n:
        return False
    if b[k + klen] != 13 or b[k + klen + 1] != 10 or b[k + klen + 2] != 36:  # CR LF $
        return False
    for i in range(klen):
        if b[k + i] & 0x80:  # not ASCII: UTF-8 to check, the parser's
            return False
    p = k + klen + 3
    vlen = _raw_length(b, &p, n, 5)
    v = p
    if vlen < 1 or vlen > FKV_VALUE_MAX or v + vlen + 2 > n:
        return False
    if b[v + vlen] != 13 or b[v + vlen + 1] != 10:
        return False
    if not fkv_json_is_compact(<const uint8_t *>b + v, <size_t>vlen, FKV_VALUE_MAX):
        return False
    cdef fkv_put_item *it = &sets.items[sets.n]
    it.key = <const char *>b + k
    it.klen = <size_t>klen
    it.val = <const uint8_t *>b + v
    it.vlen = <size_t>vlen
    sets.start[sets.n] = pos
    sets.n += 1
    after[0] = v + vlen + 2
    return True


cdef bint _stage_set(Store store, list request, _Sets *sets, list held, Py_ssize_t start,
                     Py_ssize_t end) except -1:
    """Add a plain SET to the batch; False if request is anything else or
    would fail (the general path then answers it)."""
    if len(request) != 3 or not _is_word(<bytes>request[0], b"SET", 3) or store._s == NULL:
        return False
    key = _plain_key(<bytes>request[1])
    if key is None:
        return False
    cdef Py_ssize_t klen
    cdef const char *k
    cdef bytes data
    try:
        k = _key_utf8(key, &klen)
        data = _encode(<bytes>request[2], key)
    except Exception:
        return False
    cdef fkv_put_item *it = &sets.items[sets.n]
    it.key = k
    it.klen = <size_t>klen
    it.val = <const uint8_t *>PyBytes_AS_STRING(data)
    it.vlen = <size_t>PyBytes_GET_SIZE(data)
    held.append((key, data))
    sets.start[sets.n] = start
    sets.n += 1
    return True


cdef object _put_staged(Store store, _Sets *sets, list held, bytearray acc, bytearray buf,
                        Py_ssize_t max_args, Py_ssize_t max_bulk):
    """Put the staged SETs, replying +OK to each; None, or for the first one
    that failed (start, request, end), to be run by the general path."""
    cdef size_t i = 0, n = <size_t>sets.n, done = 0
    cdef int rc = FKV_OK
    with nogil:
        while i < n:
            rc = fkv_put_batch(store._s, &sets.items[i], n - i, &done)
            if rc == FKV_OK and done == 0:  # this one needs the one-by-one put
                rc = fkv_put(store._s, sets.items[i].key, sets.items[i].klen,
                             sets.items[i].val, sets.items[i].vlen, 0)
                done = 1
            if rc != FKV_OK:
                break
            i += done
    cdef char *w = _acc_grow(acc, 5 * <Py_ssize_t>i)
    for _ in range(i):
        memcpy(w, b"+OK\r\n", 5)
        w += 5
    sets.size += 5 * <Py_ssize_t>i
    sets.answered += <Py_ssize_t>i
    sets.n = 0
    failed = None
    if rc != FKV_OK:
        request, end = _resp_next(buf, sets.start[i], max_args, max_bulk)
        failed = (sets.start[i], request, end)
    del held[:]
    return failed


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


cdef object _plain_key(bytes raw):
    try:
        return PyUnicode_DecodeUTF8(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), NULL)
    except UnicodeDecodeError:
        return None


cdef object _resp_plain_get(Store store, list request, bint resp3):
    """The reply to a plain GET, or None to leave it to the general path:
    other commands, a read that would wait, and every error."""
    cdef Py_ssize_t n
    cdef const char *k
    cdef uint8_t buf[FKV_REC_MAX]
    cdef size_t voff = 0, vlen = 0
    if len(request) != 2 or not _is_word(<bytes>request[0], b"GET", 3) or store._s == NULL:
        return None
    key = _plain_key(<bytes>request[1])
    if key is None:
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

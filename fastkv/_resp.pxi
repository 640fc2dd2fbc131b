# The Redis protocol's request framing, at C speed: the server's profile
# had the Python parser at half the time of a pipelined GET.
# Included by _core.pyx; fastkv/serving/resp_codec.py holds the limits, the
# inline form and the replies.

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from libc.string cimport memchr


class RespProtocolError(ValueError):
    """The bytes are not a Redis-protocol request."""


# resp_next's answer for a request in the inline form (a text line)
RESP_INLINE = object()

cdef enum:
    _RESP_HEADER = 24  # "*<count>\r\n" or "$<len>\r\n": a sign, digits, CRLF


cdef Py_ssize_t _resp_length(const unsigned char *b, Py_ssize_t start, Py_ssize_t end,
                             Py_ssize_t most, bint bulk) except -2:
    """The number between start and end (a CR): digits only, or -N. Past
    most is an error; a negative count is -1 (an empty request for '*')."""
    cdef Py_ssize_t i = start, value = 0
    cdef bint negative = False
    if i < end and b[i] == 45:  # '-'
        negative = True
        i += 1
    if i == end:
        raise RespProtocolError("invalid bulk length" if bulk else "invalid multibulk length")
    while i < end:
        if b[i] < 48 or b[i] > 57:
            raise RespProtocolError("invalid bulk length" if bulk else "invalid multibulk length")
        value = value * 10 + (b[i] - 48)
        if value > most:
            raise RespProtocolError("invalid bulk length" if bulk else "invalid multibulk length")
        i += 1
    return -1 if negative else value


cdef Py_ssize_t _resp_line_end(const unsigned char *b, Py_ssize_t at, Py_ssize_t n,
                               bint bulk) except -2:
    """Where the CR of the header line starting at at is; -1 if not there yet."""
    cdef Py_ssize_t span = n - at
    if span > _RESP_HEADER:
        span = _RESP_HEADER
    cdef const unsigned char *cr = <const unsigned char *>memchr(b + at, 13, <size_t>span)
    if cr == NULL or cr + 1 >= b + n:
        if n - at >= _RESP_HEADER:
            raise RespProtocolError("invalid bulk length" if bulk else "invalid multibulk length")
        return -1
    if cr[1] != 10:
        raise RespProtocolError("a header line does not end with CRLF")
    return cr - b


def resp_next(bytearray buf, Py_ssize_t pos, Py_ssize_t max_args, Py_ssize_t max_bulk):
    """The next request in buf from pos, as (list of bytes, position after
    it); (None, pos) if it is not all there yet; (RESP_INLINE, pos) if it is
    a text line. Raises RespProtocolError."""
    return _resp_next(buf, pos, max_args, max_bulk)


cdef tuple _resp_next(bytearray buf, Py_ssize_t pos, Py_ssize_t max_args, Py_ssize_t max_bulk):
    cdef Py_ssize_t n = PyByteArray_GET_SIZE(buf)
    if pos >= n:
        return None, pos
    cdef const unsigned char *b = <const unsigned char *>PyByteArray_AS_STRING(buf)
    if b[pos] != 42:  # '*'
        return RESP_INLINE, pos
    cdef Py_ssize_t end = _resp_line_end(b, pos + 1, n, False)
    if end < 0:
        return None, pos
    cdef Py_ssize_t count = _resp_length(b, pos + 1, end, max_args, False)
    cdef Py_ssize_t p = end + 2, size, i
    cdef list args = []
    if count < 0:
        count = 0
    for i in range(count):
        if p >= n:
            return None, pos
        if b[p] != 36:  # '$'
            raise RespProtocolError(f"expected '$', got {chr(b[p])!r}")
        end = _resp_line_end(b, p + 1, n, True)
        if end < 0:
            return None, pos
        size = _resp_length(b, p + 1, end, max_bulk, True)
        if size < 0:
            raise RespProtocolError("invalid bulk length")
        p = end + 2
        if p + size + 2 > n:
            return None, pos
        if b[p + size] != 13 or b[p + size + 1] != 10:
            raise RespProtocolError("a bulk string does not end with CRLF")
        args.append(PyBytes_FromStringAndSize(<const char *>b + p, size))
        p += size + 2
    return args, p

"""The Redis protocol's framing (RESP2 and RESP3): requests parsed strictly
within fixed bounds, replies encoded.

A request is an array of bulk strings (``*2\\r\\n$3\\r\\nGET\\r\\n$1\\r\\nk\\r\\n``)
or an inline line (``GET k\\r\\n``, for telnet). Anything else, or a length
past a bound, is a ProtocolError: the server answers it and closes the
connection, as redis-server does. Nothing here reads more than
MAX_REQUEST_BYTES for one request.

Written here rather than taken from a library: redis-py and hiredis parse
replies (the client side); a server needs the request side, bounded, and
it is a few dozen lines.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

__all__ = [
    "ProtocolError", "parse", "MAX_ARGS", "MAX_BULK_BYTES", "MAX_INLINE_BYTES",
    "MAX_REQUEST_BYTES", "OK", "PONG", "simple", "error", "integer", "bulk", "null",
    "array", "mapping",
]

MAX_ARGS = 65_536            # arguments of one command (MGET of many keys)
MAX_BULK_BYTES = 1 << 20     # one argument: a 16 KiB value sent with spaces fits
MAX_INLINE_BYTES = 64 << 10  # one inline command line
MAX_REQUEST_BYTES = 4 << 20  # one whole request, however it is split
_MAX_HEADER = 24             # "*<count>\r\n" / "$<len>\r\n": digits, not text

Command = list[bytes]


class ProtocolError(Exception):
    """The bytes are not a request: the connection is answered and closed."""


def _length(buf: bytearray, start: int, end: int, what: str, most: int) -> int:
    digits = bytes(buf[start:end])
    if not digits.isdigit():  # no sign, space or underscore that int() would take
        if digits == b"-1" or (digits[:1] == b"-" and digits[1:].isdigit()):
            return 0 if what == "multibulk" else -1
        raise ProtocolError(f"invalid {what} length")
    n = int(digits)
    if n > most:
        raise ProtocolError(f"invalid {what} length")
    return n


def parse(buf: bytearray, pos: int) -> tuple[Optional[Command], int]:
    """The next command in buf from pos and the position after it;
    (None, pos) when it is not all there yet. An empty command (``*0``, or
    an empty inline line) comes back as []. Raises ProtocolError."""
    n = len(buf)
    if pos >= n:
        return None, pos
    if buf[pos] != 42:  # '*'
        return _inline(buf, pos)
    end = buf.find(b"\r\n", pos, pos + _MAX_HEADER)
    if end < 0:
        if n - pos >= _MAX_HEADER:
            raise ProtocolError("invalid multibulk length")
        return None, pos
    count = _length(buf, pos + 1, end, "multibulk", MAX_ARGS)
    p = end + 2
    args: Command = []
    for _ in range(count):
        if p >= n:
            return None, pos
        if buf[p] != 36:  # '$'
            raise ProtocolError(f"expected '$', got {chr(buf[p])!r}")
        e = buf.find(b"\r\n", p, p + _MAX_HEADER)
        if e < 0:
            if n - p >= _MAX_HEADER:
                raise ProtocolError("invalid bulk length")
            return None, pos
        size = _length(buf, p + 1, e, "bulk", MAX_BULK_BYTES)
        if size < 0:
            raise ProtocolError("invalid bulk length")
        start = e + 2
        stop = start + size
        if stop + 2 > n:
            return None, pos
        if buf[stop] != 13 or buf[stop + 1] != 10:
            raise ProtocolError("a bulk string does not end with CRLF")
        args.append(bytes(buf[start:stop]))
        p = stop + 2
    return args, p


def _inline(buf: bytearray, pos: int) -> tuple[Optional[Command], int]:
    end = buf.find(b"\n", pos, pos + MAX_INLINE_BYTES + 1)
    if end < 0:
        if len(buf) - pos > MAX_INLINE_BYTES:
            raise ProtocolError("too big inline request")
        return None, pos
    line = bytes(buf[pos:end]).rstrip(b"\r")
    if b"\x00" in line:
        raise ProtocolError("a NUL byte in an inline request")
    return line.split(), end + 1


# ---- replies ----------------------------------------------------------------------

OK = b"+OK\r\n"
PONG = b"+PONG\r\n"


def simple(text: str) -> bytes:
    return b"+" + _one_line(text) + b"\r\n"


def error(text: str) -> bytes:
    """An error reply; text starts with its code (ERR, NOAUTH, WRONGPASS...)."""
    return b"-" + _one_line(text) + b"\r\n"


def integer(n: int) -> bytes:
    return b":%d\r\n" % n


def bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def null(resp3: bool) -> bytes:
    return b"_\r\n" if resp3 else b"$-1\r\n"


def array(items: Iterable[bytes], count: int) -> bytes:
    """An array of count replies, each already encoded."""
    return b"*%d\r\n" % count + b"".join(items)


def mapping(pairs: dict[str, Any], resp3: bool) -> bytes:
    """A map (RESP3), or the flat array of keys and values RESP2 uses."""
    out = [b"%%%d\r\n" % len(pairs) if resp3 else b"*%d\r\n" % (2 * len(pairs))]
    for k, v in pairs.items():
        out.append(bulk(k.encode()))
        out.append(_value(v, resp3))
    return b"".join(out)


def _value(v: Any, resp3: bool) -> bytes:
    if isinstance(v, bool) or isinstance(v, int):
        return integer(int(v))
    if isinstance(v, (list, tuple)):
        return array((_value(x, resp3) for x in v), len(v))
    if isinstance(v, dict):
        return mapping(v, resp3)
    if v is None:
        return null(resp3)
    return bulk(str(v).encode())


def _one_line(text: str) -> bytes:
    return " ".join(text.split()).encode("utf-8", "replace")

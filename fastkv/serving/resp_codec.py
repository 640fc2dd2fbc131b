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

import re
from typing import Any, Callable, Iterable, Optional

from fastkv import _core

__all__ = [
    "ProtocolError", "parse_inline", "MAX_ARGS", "MAX_BULK_BYTES", "MAX_INLINE_BYTES",
    "MAX_REQUEST_BYTES", "OK", "PONG", "error", "integer", "bulk", "null",
    "array", "mapping", "glob_test",
]

MAX_ARGS = 65_536            # arguments of one command (MGET of many keys)
MAX_BULK_BYTES = 1 << 20     # one argument: a 16 KiB value sent with spaces fits
MAX_INLINE_BYTES = 64 << 10  # one inline command line
MAX_REQUEST_BYTES = 4 << 20  # one whole request, however it is split

Command = list[bytes]


# The class and the array form's parser are compiled (fastkv/_resp.pxi).
ProtocolError = _core.RespProtocolError


def parse_inline(buf: bytearray, pos: int) -> tuple[Optional[Command], int]:
    """The inline command at pos (the compiled parser hands it over) and the
    position after it; (None, pos) when its line is not all there yet."""
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


# ---- SCAN's MATCH patterns ----------------------------------------------------------

_GLOB = re.compile(rb"[*?\[\\]")


def glob_test(pattern: Optional[bytes]) -> tuple[Optional[str], Optional[Callable[[bytes], bool]]]:
    """A prefix for the core, and a test for the rest of a Redis glob."""
    if pattern is None or pattern == b"*":
        return None, None
    m = _GLOB.search(pattern)
    literal = pattern if m is None else pattern[:m.start()]
    prefix = literal.decode("utf-8", "replace") or None
    if m is not None and m.group() == b"*" and m.start() == len(pattern) - 1:
        return prefix, None  # "prefix*": the core does it all
    regex = re.compile(_glob_to_regex(pattern), re.DOTALL)
    return prefix, lambda k: regex.fullmatch(k) is not None


def _glob_to_regex(p: bytes) -> bytes:
    out, i = [], 0
    while i < len(p):
        ch = p[i:i + 1]
        if ch == b"\\" and i + 1 < len(p):
            out.append(re.escape(p[i + 1:i + 2]))
            i += 2
            continue
        if ch == b"*":
            out.append(b".*")
        elif ch == b"?":
            out.append(b".")
        elif ch == b"[":
            end = p.find(b"]", i + 1)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = p[i + 1:end]
                neg = body[:1] == b"^"
                body = body[1:] if neg else body
                out.append(b"[" + (b"^" if neg else b"") + re.sub(rb"([\\\]\[^])", rb"\\\1", body)
                           .replace(b"\\-", b"-") + b"]")
                i = end + 1
                continue
        else:
            out.append(re.escape(ch))
        i += 1
    return b"".join(out)

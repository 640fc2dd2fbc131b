"""``fastkv serve --resp-port``: the store over the Redis protocol, so that
redis-cli, redis-py, redis-benchmark and the Redis clients of other
languages work against a fastkv file.

Served on the event loop of loop.py. A command runs on the loop when it
cannot wait (a read answered from the page cache, a write in the default
durability mode); one that may wait for the disk (a read the page cache
cannot answer, SCAN, DBSIZE, INFO) goes to a worker thread, and that
connection's later commands wait for it, so replies keep the order of a
pipeline. The framing is parsed in C (fastkv/_resp.pxi, with the limits in
resp_codec.py): in Python it was half the time of a pipelined GET.

Redis's own replies where Redis has one (GET of a missing key is nil, SET NX
on a live key is nil, DEL counts); a fastkv refusal (a bad key, value or
TTL, a full store) is ``-ERR <fastkv class>: <message>``.
"""

from __future__ import annotations

import hmac
import os
import re
import time
from typing import Any, Callable, Optional, Union

from fastkv import _core
from fastkv._version import __version__
from fastkv.datastore import DataStore
from fastkv.errors import (
    FastKVError,
    InvalidKeyError,
    InvalidTTLError,
    KeyExistsError,
    KeyNotFoundError,
)
from fastkv.serving import resp_codec as rc
from fastkv.serving.limits import Limits
from fastkv.serving.loop import Connection, Later, ServingLoop
from fastkv.wire import resp_error

__all__ = ["RespService"]

_WOULD_WAIT = _core.WOULD_WAIT
_value_bytes = _core.value_bytes
_next, _INLINE = _core.resp_next, _core.RESP_INLINE
_MAX_ARGS, _MAX_BULK = rc.MAX_ARGS, rc.MAX_BULK_BYTES
# The protocol level clients are told (INFO redis_version, HELLO version):
# the commands here behave as Redis 7.0's do.
REDIS_LEVEL = "7.0.0"


class _Usage(Exception):
    """A command's arguments are wrong: answered as Redis words it."""


Reply = Union[bytes, Later]


# ---- one connection -----------------------------------------------------------------


class _Conn(Connection):
    refusal = b"-ERR max number of clients reached\r\n"

    def __init__(self, service: "RespService") -> None:
        super().__init__(service.home)
        self.service = service
        self.buf = bytearray()
        self.authed = service.token is None
        self.resp3 = False
        self.name = b""

    def on_data(self, data: bytes) -> None:
        self.buf += data
        if not self.waiting and not self.paused:
            self._run()

    def proceed(self) -> None:
        if self.buf:
            self._run()

    def _run(self) -> None:
        """Answer the complete commands in buf, in order, a bounded amount of
        replies at a time: past max_output_bytes the replies are written, and
        the rest waits until the client has read them (resume_writing)."""
        buf, execute = self.buf, self.service.execute
        budget = self.home.limits.max_output_bytes
        while True:
            pos, out, size, more = 0, [], 0, False
            try:
                while not self.closing:
                    cmd, pos = _next(buf, pos, _MAX_ARGS, _MAX_BULK)
                    if cmd is _INLINE:
                        cmd, pos = rc.parse_inline(buf, pos)
                    if cmd is None:
                        if len(buf) - pos > rc.MAX_REQUEST_BYTES:
                            raise rc.ProtocolError("request too large")
                        break
                    if not cmd:
                        continue
                    reply = execute(self, cmd)
                    if type(reply) is not bytes:
                        self.later(reply)  # type: ignore[arg-type]
                        break
                    out.append(reply)
                    size += len(reply)
                    if size >= budget:
                        more = True
                        break
            except rc.ProtocolError as e:
                out.append(rc.error(f"ERR Protocol error: {e}"))
                self.closing = True
            if pos:
                del buf[:pos]
            self.partial = bool(buf)
            if out and self.transport is not None:
                self.transport.write(b"".join(out))  # may call pause_writing
            if self.closing:
                if self.transport is not None:
                    self.transport.close()
                return
            if not more or self.paused or self.waiting:
                return


# ---- the service ----------------------------------------------------------------------


class RespService:
    """The Redis protocol for one DataStore, on a ServingLoop."""

    def __init__(self, db: DataStore, token: Optional[str], home: ServingLoop) -> None:
        self.db, self.token, self.home = db, token, home
        self.port = 0
        self.commands_processed = 0
        self.started = time.time()
        self._table = _commands()

    def factory(self) -> _Conn:
        return _Conn(self)

    @property
    def limits(self) -> Limits:
        return self.home.limits

    @property
    def conns(self) -> set[Connection]:
        return self.home.conns

    def execute(self, conn: _Conn, cmd: list[bytes]) -> Reply:
        self.commands_processed += 1
        name = cmd[0].upper()
        entry = self._table.get(name)
        if entry is None:
            return _unknown(cmd)
        handler, least, most = entry
        if not conn.authed and name not in (b"AUTH", b"HELLO", b"QUIT"):
            return b"-NOAUTH Authentication required.\r\n"
        argc = len(cmd) - 1
        if argc < least or (most >= 0 and argc > most):
            return rc.error(f"ERR wrong number of arguments for '{name.decode().lower()}' "
                            f"command")
        try:
            return handler(self, conn, cmd)
        except FastKVError as e:
            return rc.error(resp_error(e))
        except _Usage as e:
            return rc.error(str(e))

    def check_token(self, given: bytes) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given, self.token.encode())


def _unknown(cmd: list[bytes]) -> bytes:
    shown = " ".join(f"'{a.decode('utf-8', 'replace')[:40]}'" for a in cmd[1:4])
    return rc.error(f"ERR unknown command '{cmd[0].decode('utf-8', 'replace')[:40]}', "
                    f"with args beginning with: {shown}")


def _key(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidKeyError(f"key {raw[:40]!r} is not UTF-8 text") from None


def _int(raw: bytes) -> int:
    if not raw.lstrip(b"-").isdigit() or len(raw) > 20:
        raise _Usage("ERR value is not an integer or out of range")
    return int(raw)


# ---- handlers: (server, connection, the command with its name) -> reply ---------------


def _get(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    key = _key(cmd[1])
    data = _value_bytes(srv.db, key)
    if data is _WOULD_WAIT:
        return Later(lambda: _value_bytes(srv.db, key, True),
                      lambda r: _bulk_or_null(r, c.resp3))
    return rc.bulk(data) if data is not None else rc.null(c.resp3)


def _bulk_or_null(result: Any, resp3: bool) -> bytes:
    if isinstance(result, FastKVError):
        return rc.error(resp_error(result))
    return rc.null(resp3) if result is None else rc.bulk(result)


def _mget(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    keys = cmd[1:]
    out = []
    for raw in keys:
        try:
            data = _value_bytes(srv.db, _key(raw))
        except InvalidKeyError:
            data = None  # Redis answers nil for a key that cannot be there
        if data is _WOULD_WAIT:
            return Later(lambda: [_mget_one(srv, k) for k in keys],
                          lambda r: _array_of(r, c.resp3))
        out.append(data)
    return _array_of(out, c.resp3)


def _mget_one(srv: RespService, raw: bytes) -> Optional[bytes]:
    try:
        data: Optional[bytes] = _value_bytes(srv.db, _key(raw), True)
        return data
    except InvalidKeyError:
        return None


def _array_of(values: Any, resp3: bool) -> bytes:
    if isinstance(values, FastKVError):
        return rc.error(resp_error(values))
    return rc.array((rc.null(resp3) if v is None else rc.bulk(v) for v in values), len(values))


_SET_USAGE = "ERR syntax error: fastkv takes SET key value [NX] [EX s | PX ms | EXAT s | PXAT ms]"


def _set(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    key, value = _key(cmd[1]), cmd[2]
    nx = False
    unit: Optional[bytes] = None
    amount = 0
    i = 3
    while i < len(cmd):
        opt = cmd[i].upper()
        if opt == b"NX" and not nx:
            nx = True
        elif opt in (b"EX", b"PX", b"EXAT", b"PXAT") and unit is None and i + 1 < len(cmd):
            unit, amount = opt, _int(cmd[i + 1])
            i += 1
        else:
            raise _Usage(_SET_USAGE)
        i += 1
    db = srv.db
    if unit is None or unit == b"EX":
        if unit == b"EX" and amount < 1:
            raise _Usage("ERR invalid expire time in 'set' command")
        ttl = amount if unit else None
        if not nx:
            db.put(key, value, ttl)
            return rc.OK
        try:
            db.create(key, value, ttl)
        except KeyExistsError:  # Redis answers nil
            return rc.null(c.resp3)
        return rc.OK
    deadline = _deadline_ms(unit, amount)
    try:
        db._create_until(key, value, deadline, replace=not nx)
    except KeyExistsError:
        return rc.null(c.resp3)
    return rc.OK  # (a deadline already past is KeyExpiredError: an error reply)


def _deadline_ms(unit: bytes, amount: int) -> int:
    if amount < 1:
        raise _Usage("ERR invalid expire time in 'set' command")
    now = int(time.time() * 1000)
    return {b"PX": now + amount, b"EXAT": amount * 1000, b"PXAT": amount}[unit]


def _del(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    gone = 0
    for raw in cmd[1:]:
        try:
            srv.db.delete(_key(raw))
            gone += 1
        except (KeyNotFoundError, InvalidKeyError):
            pass
    return rc.integer(gone)


def _exists(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    keys = [k for k in (_maybe_key(raw) for raw in cmd[1:]) if k is not None]
    found = 0
    for k in keys:
        hit = srv.db._try_contains(k)
        if hit is _WOULD_WAIT:
            return Later(lambda: sum(k in srv.db for k in keys), _count_reply)
        found += bool(hit)
    return rc.integer(found)


def _count_reply(result: Any) -> bytes:
    return rc.error(resp_error(result)) if isinstance(result, FastKVError) else \
        rc.integer(result)


def _maybe_key(raw: bytes) -> Optional[str]:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _ttl_cmd(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    key = _key(cmd[1])
    in_ms = cmd[0].upper() == b"PTTL"

    def reply(left: Any) -> bytes:
        if isinstance(left, KeyNotFoundError):
            return rc.integer(-2)
        if isinstance(left, FastKVError):
            return rc.error(resp_error(left))
        if left is None:
            return rc.integer(-1)
        return rc.integer(round(left * 1000) if in_ms else int(left + 0.5))

    try:
        left = srv.db._try_ttl(key)
    except KeyNotFoundError as e:
        return reply(e)
    if left is _WOULD_WAIT:
        return Later(lambda: srv.db.ttl(key), reply)
    return reply(left)


def _expire(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    if len(cmd) > 3:
        raise _Usage("ERR fastkv takes EXPIRE key seconds (no NX, XX, GT or LT)")
    key, amount = _key(cmd[1]), _int(cmd[2])
    if cmd[0].upper() == b"PEXPIRE":
        if amount % 1000:
            raise InvalidTTLError(f"ttl for {key!r} must be whole seconds in fastkv; "
                                  f"PEXPIRE {amount} is not a multiple of 1000 ms")
        amount //= 1000
    try:
        srv.db.touch(key, amount)
    except KeyNotFoundError:
        return rc.integer(0)
    return rc.integer(1)


def _persist(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    key = _key(cmd[1])
    try:
        if srv.db.ttl(key) is None:
            return rc.integer(0)
        srv.db.touch(key, None)
    except KeyNotFoundError:
        return rc.integer(0)
    return rc.integer(1)


_GLOB = re.compile(rb"[*?\[\\]")


def _scan(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    cursor = _int(cmd[1])
    if not 0 <= cursor < (1 << 27):
        raise _Usage("ERR invalid cursor")
    pattern: Optional[bytes] = None
    count = 10
    i = 2
    while i < len(cmd):
        opt = cmd[i].upper()
        if opt == b"MATCH" and i + 1 < len(cmd):
            pattern = cmd[i + 1]
        elif opt == b"COUNT" and i + 1 < len(cmd):
            count = _int(cmd[i + 1])
            if count < 1:
                raise _Usage("ERR syntax error")
        elif opt == b"TYPE" and i + 1 < len(cmd):
            if cmd[i + 1].lower() != b"string":
                return _scan_reply((0, []), c.resp3)  # fastkv holds strings only
        else:
            raise _Usage("ERR syntax error")
        i += 2
    prefix, test = _match(pattern)
    db = srv.db

    def walk() -> tuple[int, list[str]]:
        at, found = cursor, []
        while True:  # COUNT is a hint, as in Redis: at least one batch
            at, keys = db._scan(at, prefix)
            found += [k for k in keys if test is None or test(k.encode())]
            if at == 0 or len(found) >= count:
                return at, found

    return Later(walk, lambda r: _scan_reply(r, c.resp3))


def _scan_reply(result: Any, resp3: bool) -> bytes:
    if isinstance(result, FastKVError):
        return rc.error(resp_error(result))
    at, keys = result
    return rc.array([rc.bulk(str(at).encode()),
                     rc.array((rc.bulk(k.encode()) for k in keys), len(keys))], 2)


def _match(pattern: Optional[bytes]) -> tuple[Optional[str], Optional[Callable[[bytes], bool]]]:
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


def _dbsize(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    return Later(lambda: len(srv.db), _count_reply)


def _ping(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    return rc.bulk(cmd[1]) if len(cmd) > 1 else rc.PONG


def _echo(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    return rc.bulk(cmd[1])


def _auth(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    if srv.token is None:
        return rc.error("ERR AUTH <password> called without any password configured for "
                        "the default user. Are you sure your configuration is correct?")
    given = cmd[-1]
    user_ok = len(cmd) == 2 or cmd[1] == b"default"
    if user_ok and srv.check_token(given):
        c.authed = True
        return rc.OK
    return rc.error("WRONGPASS invalid username-password pair or user is disabled.")


def _hello(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    i = 1
    proto = 2 if not c.resp3 else 3
    if len(cmd) > 1:
        proto = _int(cmd[1]) if cmd[1].isdigit() else -1
        if proto not in (2, 3):
            return rc.error("NOPROTO unsupported protocol version")
        i = 2
    while i < len(cmd):
        opt = cmd[i].upper()
        if opt == b"AUTH" and i + 2 < len(cmd):
            reply = _auth(srv, c, [b"AUTH", cmd[i + 1], cmd[i + 2]])
            if reply != rc.OK:
                return reply
            i += 3
        elif opt == b"SETNAME" and i + 1 < len(cmd):
            c.name = cmd[i + 1]
            i += 2
        else:
            return rc.error("ERR syntax error in HELLO")
    if not c.authed:
        return b"-NOAUTH HELLO must be called with the client already authenticated, or " \
               b"with AUTH <user> <pass>\r\n"
    c.resp3 = proto == 3
    return rc.mapping({"server": "fastkv", "version": REDIS_LEVEL, "proto": proto,
                       "id": id(c) & 0xFFFFFFFF, "mode": "standalone", "role": "master",
                       "modules": []}, c.resp3)


def _select(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    if _int(cmd[1]) != 0:
        return rc.error("ERR DB index is out of range (a fastkv store is database 0)")
    return rc.OK


def _quit(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    c.closing = True
    return rc.OK


def _command(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    sub = cmd[1].upper() if len(cmd) > 1 else b""
    if sub == b"COUNT":
        return rc.integer(len(srv._table))
    if sub == b"DOCS":
        return rc.mapping({}, c.resp3)
    return rc.array([], 0)  # no command table: clients fall back to their own


def _client(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    sub = cmd[1].upper()
    if sub == b"SETNAME" and len(cmd) == 3:
        c.name = cmd[2]
        return rc.OK
    if sub == b"GETNAME":
        return rc.bulk(c.name) if c.name else rc.null(c.resp3)
    if sub == b"ID":
        return rc.integer(id(c) & 0xFFFFFFFF)
    if sub == b"SETINFO":
        return rc.OK
    return rc.error(f"ERR unknown subcommand '{sub.decode('utf-8', 'replace')[:40]}'")


def _config(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    if cmd[1].upper() == b"GET":
        return rc.mapping({}, c.resp3)  # no Redis settings to show
    return rc.error("ERR fastkv serve has no CONFIG SET; see 'fastkv serve --help'")


def _info(srv: RespService, c: _Conn, cmd: list[bytes]) -> Reply:
    def text() -> bytes:
        st = srv.db.stats()
        lines = [
            "# Server", f"redis_version:{REDIS_LEVEL}", "server_name:fastkv",
            f"fastkv_version:{__version__}", f"process_id:{os.getpid()}",
            f"tcp_port:{srv.port}", f"uptime_in_seconds:{int(time.time() - srv.started)}",
            "", "# Clients", f"connected_clients:{len(srv.conns)}",
            f"maxclients:{srv.limits.max_connections}",
            "", "# Stats", f"total_commands_processed:{srv.commands_processed}",
            "", "# Persistence", "aof_enabled:0", "rdb_changes_since_last_save:0",
            "", "# fastkv",
            *[f"{k}:{v}" for k, v in st.items() if not isinstance(v, (dict, list))],
            "", "# Keyspace", f"db0:keys={st['live_keys']},expires=0,avg_ttl=0", "",
        ]
        return "\r\n".join(lines).encode()

    return Later(text, lambda r: rc.error(resp_error(r)) if isinstance(r, FastKVError)
                  else rc.bulk(r))


Handler = Callable[[RespService, _Conn, list[bytes]], Reply]


def _commands() -> dict[bytes, tuple[Handler, int, int]]:
    """name -> (handler, least arguments, most arguments or -1)."""
    return {
        b"GET": (_get, 1, 1), b"MGET": (_mget, 1, -1), b"SET": (_set, 2, -1),
        b"DEL": (_del, 1, -1), b"UNLINK": (_del, 1, -1), b"EXISTS": (_exists, 1, -1),
        b"TTL": (_ttl_cmd, 1, 1), b"PTTL": (_ttl_cmd, 1, 1),
        b"EXPIRE": (_expire, 2, -1), b"PEXPIRE": (_expire, 2, -1),
        b"PERSIST": (_persist, 1, 1), b"SCAN": (_scan, 1, -1), b"DBSIZE": (_dbsize, 0, 0),
        b"PING": (_ping, 0, 1), b"ECHO": (_echo, 1, 1), b"HELLO": (_hello, 0, -1),
        b"AUTH": (_auth, 1, 2), b"SELECT": (_select, 1, 1), b"QUIT": (_quit, 0, -1),
        b"COMMAND": (_command, 0, -1), b"CLIENT": (_client, 1, -1),
        b"CONFIG": (_config, 1, -1), b"INFO": (_info, 0, -1),
    }

"""The commands of the Redis protocol, each a function of (server, session,
command) -> reply bytes, or Later for one that may wait for the disk
(loop.py runs it in a worker thread). resp.py frames and dispatches; what
a command may use of the server and of the connection is the two small
interfaces below, so this module does not know resp.py's classes.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Optional, Protocol, Union

from fastkv import _core
from fastkv._version import __version__
from fastkv.datastore import DataStore
from fastkv.errors import (
    FastKVError,
    InvalidKeyError,
    InvalidTTLError,
    KeyExistsError,
    KeyNotFoundError,
    UnauthorizedError,
)
from fastkv.serving import resp_codec as rc
from fastkv.serving.limits import Limits
from fastkv.serving.loop import Later
from fastkv.wire import resp_error

__all__ = ["COMMANDS", "Reply", "Usage", "unknown", "refused", "REDIS_LEVEL", "Server",
           "Session", "Handler", "key_of", "parse_set", "deadline_ms", "expire_args", "WRITES",
           "in_worker"]

_WOULD_WAIT = _core.WOULD_WAIT
_value_bytes, _values_many = _core.value_bytes, _core.values_many
# The protocol level clients are told (INFO redis_version, HELLO version):
# the commands here behave as Redis 7.0's do.
REDIS_LEVEL = "7.0.0"

Reply = Union[bytes, Later]


class Server(Protocol):
    """What a command may use of the server it runs in."""

    db: DataStore
    token: Optional[str]
    port: int
    started: float
    commands_processed: int

    @property
    def limits(self) -> Limits: ...

    @property
    def connections(self) -> int: ...

    def check_token(self, given: bytes) -> bool: ...


class Session(Protocol):
    """What a command may know and change of the connection it came on."""

    authed: bool
    resp3: bool
    name: bytes
    closing: bool
    # MULTI/EXEC (resp_transactions.py): the queue after MULTI (None
    # outside one), whether a queued command was refused, the bytes queued,
    # and the WATCHed keys with their versions
    queue: Optional[list[list[bytes]]]
    queue_failed: bool
    queue_bytes: int
    watched: dict[str, tuple[int, int]]


def refused(exc: FastKVError) -> bytes:
    """The error reply for a refusal of the store (wire.py words it)."""
    return rc.error(resp_error(exc))


def _later(call: Callable[[], Any], finish: Callable[[Any], bytes]) -> Later:
    return Later(call, finish, refused)


class Usage(Exception):
    """A command's arguments are wrong: answered as Redis words it."""


def unknown(cmd: list[bytes]) -> bytes:
    shown = " ".join(f"'{a.decode('utf-8', 'replace')[:40]}'" for a in cmd[1:4])
    return rc.error(f"ERR unknown command '{cmd[0].decode('utf-8', 'replace')[:40]}', "
                    f"with args beginning with: {shown}")


def key_of(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidKeyError(f"key {raw[:40]!r} is not UTF-8 text") from None


def _int(raw: bytes) -> int:
    if not raw.lstrip(b"-").isdigit() or len(raw) > 20:
        raise Usage("ERR value is not an integer or out of range")
    return int(raw)


# ---- handlers: (server, connection, the command with its name) -> reply ---------------


def _get(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    key = key_of(cmd[1])
    data = _value_bytes(srv.db, key)
    if data is _WOULD_WAIT:
        return _later(lambda: _value_bytes(srv.db, key, True),
                      lambda r: _bulk_or_null(r, c.resp3))
    return rc.bulk(data) if data is not None else rc.null(c.resp3)


def _bulk_or_null(result: Optional[bytes], resp3: bool) -> bytes:
    return rc.null(resp3) if result is None else rc.bulk(result)


def _mget(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    keys = cmd[1:]  # all read as of one moment (a key that cannot be one is nil)
    values = _values_many(srv.db, keys)
    if values is _WOULD_WAIT:
        return _later(lambda: _values_many(srv.db, keys, True),
                      lambda r: _array_of(r, c.resp3))
    return _array_of(values, c.resp3)


def _mset(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    if len(cmd) % 2 == 0:
        raise Usage("ERR wrong number of arguments for 'mset' command")
    srv.db.put_many([(key_of(cmd[i]), cmd[i + 1]) for i in range(1, len(cmd), 2)])
    return rc.OK


def _array_of(values: list[Optional[bytes]], resp3: bool) -> bytes:
    return rc.array((rc.null(resp3) if v is None else rc.bulk(v) for v in values), len(values))


_SET_USAGE = "ERR syntax error: fastkv takes SET key value [NX] [EX s | PX ms | EXAT s | PXAT ms]"


def parse_set(cmd: list[bytes]) -> tuple[str, bytes, bool, Optional[bytes], int]:
    """SET's arguments: key, value, NX, the expiry's unit (None, EX, PX,
    EXAT or PXAT) and amount. Raises Usage or InvalidKeyError."""
    key, value = key_of(cmd[1]), cmd[2]
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
            raise Usage(_SET_USAGE)
        i += 1
    if unit == b"EX" and amount < 1:
        raise Usage("ERR invalid expire time in 'set' command")
    return key, value, nx, unit, amount


def _set(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    key, value, nx, unit, amount = parse_set(cmd)
    db = srv.db
    if unit is None or unit == b"EX":
        ttl = amount if unit else None
        if not nx:
            db.put(key, value, ttl)
            return rc.OK
        try:
            db.create(key, value, ttl)
        except KeyExistsError:  # Redis answers nil
            return rc.null(c.resp3)
        return rc.OK
    try:
        db.create_until(key, value, deadline_ms(unit, amount), replace=not nx)
    except KeyExistsError:
        return rc.null(c.resp3)
    return rc.OK  # (a deadline already past is KeyExpiredError: an error reply)


def deadline_ms(unit: bytes, amount: int) -> int:
    """The deadline (ms since the epoch) of SET's PX, EXAT or PXAT amount."""
    if amount < 1:
        raise Usage("ERR invalid expire time in 'set' command")
    now = int(time.time() * 1000)
    return {b"PX": now + amount, b"EXAT": amount * 1000, b"PXAT": amount}[unit]


def _del(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    gone = 0
    for raw in cmd[1:]:
        try:
            srv.db.delete(key_of(raw))
            gone += 1
        except (KeyNotFoundError, InvalidKeyError):
            pass
    return rc.integer(gone)


def _exists(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    keys = [k for k in (_maybekey_of(raw) for raw in cmd[1:]) if k is not None]
    found = 0
    for k in keys:
        hit = srv.db._try_contains(k)
        if hit is _WOULD_WAIT:
            return _later(lambda: sum(k in srv.db for k in keys), rc.integer)
        found += bool(hit)
    return rc.integer(found)


def _maybekey_of(raw: bytes) -> Optional[str]:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _ttl_cmd(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    key = key_of(cmd[1])
    in_ms = cmd[0].upper() == b"PTTL"

    def reply(left: Optional[float]) -> bytes:
        if left is None:
            return rc.integer(-1)
        return rc.integer(round(left * 1000) if in_ms else int(left + 0.5))

    def gone(exc: FastKVError) -> bytes:  # Redis answers -2 for a key that is not there
        return rc.integer(-2) if isinstance(exc, KeyNotFoundError) else refused(exc)

    try:
        left = srv.db._try_ttl(key)
    except KeyNotFoundError as e:
        return gone(e)
    if left is _WOULD_WAIT:
        return Later(lambda: srv.db.ttl(key), reply, gone)
    return reply(left)


def expire_args(cmd: list[bytes]) -> tuple[str, int]:
    """EXPIRE's (PEXPIRE's) key and seconds. Raises Usage, InvalidKeyError,
    InvalidTTLError."""
    if len(cmd) > 3:
        raise Usage("ERR fastkv takes EXPIRE key seconds (no NX, XX, GT or LT)")
    key, amount = key_of(cmd[1]), _int(cmd[2])
    if cmd[0].upper() == b"PEXPIRE":
        if amount % 1000:
            raise InvalidTTLError(f"ttl for {key!r} must be whole seconds in fastkv; "
                                  f"PEXPIRE {amount} is not a multiple of 1000 ms")
        amount //= 1000
    return key, amount


def _expire(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    key, amount = expire_args(cmd)
    try:
        srv.db.touch(key, amount)
    except KeyNotFoundError:
        return rc.integer(0)
    return rc.integer(1)


def _persist(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    key = key_of(cmd[1])
    try:
        if srv.db.ttl(key) is None:
            return rc.integer(0)
        srv.db.touch(key, None)
    except KeyNotFoundError:
        return rc.integer(0)
    return rc.integer(1)


def _scan(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    cursor = _int(cmd[1])
    if not 0 <= cursor < (1 << 27):
        raise Usage("ERR invalid cursor")
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
                raise Usage("ERR syntax error")
        elif opt == b"TYPE" and i + 1 < len(cmd):
            if cmd[i + 1].lower() != b"string":
                return _scan_reply((0, []), c.resp3)  # fastkv holds strings only
        else:
            raise Usage("ERR syntax error")
        i += 2
    prefix, test = rc.glob_test(pattern)
    db = srv.db

    def walk() -> tuple[int, list[str]]:
        at, found = cursor, []
        while True:  # COUNT is a hint, as in Redis: at least one batch
            at, keys = db._scan(at, prefix)
            found += [k for k in keys if test is None or test(k.encode())]
            if at == 0 or len(found) >= count:
                return at, found

    return _later(walk, lambda r: _scan_reply(r, c.resp3))


def _scan_reply(result: tuple[int, list[str]], resp3: bool) -> bytes:
    at, keys = result
    return rc.array([rc.bulk(str(at).encode()),
                     rc.array((rc.bulk(k.encode()) for k in keys), len(keys))], 2)



def _dbsize(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    return _later(lambda: len(srv.db), rc.integer)


def _ping(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    return rc.bulk(cmd[1]) if len(cmd) > 1 else rc.PONG


def _echo(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    return rc.bulk(cmd[1])


def _auth(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    if srv.token is None:
        return rc.error("ERR AUTH <password> called without any password configured for "
                        "the default user. Are you sure your configuration is correct?")
    given = cmd[-1]
    user_ok = len(cmd) == 2 or cmd[1] == b"default"
    if user_ok and srv.check_token(given):
        c.authed = True
        return rc.OK
    return rc.error("WRONGPASS invalid username-password pair or user is disabled.")


def _hello(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
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
        return refused(UnauthorizedError("HELLO must be called with the client already "
                                          "authenticated, or with AUTH <user> <pass>"))
    c.resp3 = proto == 3
    return rc.mapping({"server": "fastkv", "version": REDIS_LEVEL, "proto": proto,
                       "id": id(c) & 0xFFFFFFFF, "mode": "standalone", "role": "master",
                       "modules": []}, c.resp3)


def _select(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    if _int(cmd[1]) != 0:
        return rc.error("ERR DB index is out of range (a fastkv store is database 0)")
    return rc.OK


def _quit(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    c.closing = True
    return rc.OK


def _command(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    sub = cmd[1].upper() if len(cmd) > 1 else b""
    if sub == b"COUNT":
        return rc.integer(len(COMMANDS))
    if sub == b"DOCS":
        return rc.mapping({}, c.resp3)
    return rc.array([], 0)  # no command table: clients fall back to their own


def _client(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
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


def _config(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    if cmd[1].upper() == b"GET":
        return rc.mapping({}, c.resp3)  # no Redis settings to show
    return rc.error("ERR fastkv serve has no CONFIG SET; see 'fastkv serve --help'")


def _info(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    def text() -> bytes:
        st = srv.db.stats()
        lines = [
            "# Server", f"redis_version:{REDIS_LEVEL}", "server_name:fastkv",
            f"fastkv_version:{__version__}", f"process_id:{os.getpid()}",
            f"tcp_port:{srv.port}", f"uptime_in_seconds:{int(time.time() - srv.started)}",
            "", "# Clients", f"connected_clients:{srv.connections}",
            f"maxclients:{srv.limits.max_connections}",
            "", "# Stats", f"total_commands_processed:{srv.commands_processed}",
            "", "# Persistence", "aof_enabled:0", "rdb_changes_since_last_save:0",
            "", "# fastkv",
            *[f"{k}:{v}" for k, v in st.items() if not isinstance(v, (dict, list))],
            "", "# Keyspace", f"db0:keys={st['live_keys']},expires=0,avg_ttl=0", "",
        ]
        return "\r\n".join(lines).encode()

    return _later(text, rc.bulk)


Handler = Callable[[Server, Session, list[bytes]], Reply]

# The commands that write (EXEC runs in a worker thread already): in fsync
# mode each runs in a worker thread, where it waits for its flush.
WRITES = frozenset((b"SET", b"MSET", b"DEL", b"UNLINK", b"EXPIRE", b"PEXPIRE", b"PERSIST"))


def in_worker(srv: Server, c: Session, cmd: list[bytes], handler: Handler) -> bytes:
    """A write's reply, made in a worker thread (a FastKVError raised
    becomes the Later's refusal)."""
    try:
        reply = handler(srv, c, cmd)
    except Usage as e:
        return rc.error(str(e))
    if isinstance(reply, Later):
        try:
            return reply.finish(reply.call())
        except FastKVError as e:
            return reply.refused(e)
    return reply

# name -> (handler, least arguments, most arguments or -1)
COMMANDS: dict[bytes, tuple[Handler, int, int]] = {
        b"GET": (_get, 1, 1), b"MGET": (_mget, 1, -1), b"SET": (_set, 2, -1),
        b"MSET": (_mset, 2, -1),
        b"DEL": (_del, 1, -1), b"UNLINK": (_del, 1, -1), b"EXISTS": (_exists, 1, -1),
        b"TTL": (_ttl_cmd, 1, 1), b"PTTL": (_ttl_cmd, 1, 1),
        b"EXPIRE": (_expire, 2, -1), b"PEXPIRE": (_expire, 2, -1),
        b"PERSIST": (_persist, 1, 1), b"SCAN": (_scan, 1, -1), b"DBSIZE": (_dbsize, 0, 0),
        b"PING": (_ping, 0, 1), b"ECHO": (_echo, 1, 1), b"HELLO": (_hello, 0, -1),
        b"AUTH": (_auth, 1, 2), b"SELECT": (_select, 1, 1), b"QUIT": (_quit, 0, -1),
        b"COMMAND": (_command, 0, -1), b"CLIENT": (_client, 1, -1),
        b"CONFIG": (_config, 1, -1), b"INFO": (_info, 0, -1),
}

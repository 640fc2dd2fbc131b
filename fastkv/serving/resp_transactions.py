"""MULTI/EXEC/DISCARD/WATCH/UNWATCH: a connection's commands queued and run
as one fastkv transaction.

Redis's model on fastkv's transactions. After MULTI each command is checked
(name, arguments, key, value, TTL) and queued, answered +QUEUED; one refused
there marks the queue, and EXEC answers EXECABORT and writes nothing (Redis
does this for syntax errors; fastkv checks values too, so a bad value never
stops a transaction half-way). EXEC runs the queue in a worker thread inside
DataStore.transaction(): the writer slot is held from the WATCH check to
the commit, so nothing else writes between them. Inside EXEC each command
answers as it would alone (SET NX on a live key is nil; a refused call is
its error reply and the others go on, as in Redis); a commit the store
refuses (StoreFullError), or a queue past max_transaction_bytes, answers
EXEC with the error and writes nothing.

WATCH keeps each key's version: the store's compaction count and the
offset of the record the key points to. The log only grows between
compactions, so every write to the key changes it, and so does an expiry
(the key is then not live). A compaction between WATCH and EXEC changes
every version: EXEC then answers nil though nothing changed, which a
client retries as any conflict.
"""

from __future__ import annotations

from typing import Callable, Optional

from fastkv import _core
from fastkv.errors import (
    FastKVError,
    InvalidKeyError,
    KeyExistsError,
    KeyNotFoundError,
    TransactionError,
)
from fastkv.serving import resp_codec as rc
from fastkv.serving.loop import Later
from fastkv.serving.resp_commands import (
    Handler,
    Reply,
    Server,
    Session,
    Usage,
    deadline_ms,
    expire_args,
    key_of,
    parse_set,
    refused,
    unknown,
)
from fastkv.transaction import Transaction

__all__ = ["TRANSACTION_COMMANDS", "IMMEDIATE", "enqueue"]

# Run at once even inside MULTI; every other command is queued.
IMMEDIATE = frozenset((b"EXEC", b"DISCARD", b"MULTI", b"WATCH", b"QUIT"))
# Keys one connection may WATCH at once (each costs a dict entry).
MAX_WATCHED = 1 << 16
_EXECABORT = b"-EXECABORT Transaction discarded because of previous errors.\r\n"


def _reset(c: Session) -> None:
    c.queue, c.queue_failed, c.queue_bytes = None, False, 0
    c.watched = {}


# ---- the commands that run at once ----------------------------------------------------


def _multi(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    if c.queue is not None:
        return rc.error("ERR MULTI calls can not be nested")
    c.queue, c.queue_failed, c.queue_bytes = [], False, 0
    return rc.OK


def _discard(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    if c.queue is None:
        return rc.error("ERR DISCARD without MULTI")
    _reset(c)
    return rc.OK


def _watch(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    if c.queue is not None:
        return rc.error("ERR WATCH inside MULTI is not allowed")
    keys = []
    for raw in cmd[1:]:
        try:
            key = key_of(raw)
            _core.check_key(key)
        except InvalidKeyError:
            continue  # a key that cannot be there never changes
        if key not in c.watched:
            keys.append(key)
    if len(c.watched) + len(keys) > MAX_WATCHED:
        return rc.error(f"ERR a connection may WATCH at most {MAX_WATCHED} keys")
    if keys:
        for key, version in zip(keys, srv.db._versions(keys)):
            c.watched.setdefault(key, version)
    return rc.OK


def _unwatch(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    c.watched = {}
    return rc.OK


def _exec(srv: Server, c: Session, cmd: list[bytes]) -> Reply:
    if c.queue is None:
        return rc.error("ERR EXEC without MULTI")
    queue, failed, watched = c.queue, c.queue_failed, c.watched
    _reset(c)
    if failed:
        return _EXECABORT
    db, resp3 = srv.db, c.resp3

    def run() -> Optional[list[bytes]]:
        tx = Transaction(db)  # waits for the writer slot, in this worker thread
        try:
            if watched and db._versions(list(watched)) != list(watched.values()):
                tx.rollback()
                return None
            replies = [_run_one(tx, cmd, resp3) for cmd in queue]
            tx.commit()
            return replies
        finally:
            if tx.active:
                tx.rollback()

    def finish(replies: Optional[list[bytes]]) -> bytes:
        if replies is None:
            return b"_\r\n" if resp3 else b"*-1\r\n"
        return rc.array(replies, len(replies))

    return Later(run, finish, refused)


# ---- queueing ---------------------------------------------------------------------------


def enqueue(srv: Server, c: Session, cmd: list[bytes], name: bytes,
            entry: Optional[tuple[Handler, int, int]]) -> bytes:
    """Check cmd and queue it (+QUEUED), or answer its error and mark the
    queue so that EXEC refuses it."""
    reply = _refusal(srv, cmd, name, entry)
    if reply is not None:
        c.queue_failed = True
        c.queue = []  # what was queued is dropped now, not held until EXEC
        return reply
    assert c.queue is not None
    c.queue_bytes += sum(len(a) for a in cmd)
    limit = srv.db.max_transaction_bytes
    if c.queue_bytes > limit:
        c.queue_failed, c.queue = True, []
        return refused(TransactionError(
            f"the queued commands pass max_transaction_bytes ({limit:,} bytes) of the "
            f"store; EXEC will refuse this transaction"))
    c.queue.append(cmd)
    return b"+QUEUED\r\n"


def _refusal(srv: Server, cmd: list[bytes], name: bytes,
             entry: Optional[tuple[Handler, int, int]]) -> Optional[bytes]:
    if entry is None:
        return unknown(cmd)
    _, least, most = entry
    argc = len(cmd) - 1
    if argc < least or (most >= 0 and argc > most):
        return rc.error(f"ERR wrong number of arguments for '{name.decode().lower()}' command")
    check = _CHECKS.get(name)
    if check is None:
        return rc.error(f"ERR {name.decode()} is not allowed inside a fastkv transaction")
    try:
        check(cmd)
    except FastKVError as e:
        return refused(e)
    except Usage as e:
        return rc.error(str(e))
    return None


def _check_set(cmd: list[bytes]) -> None:
    key, value, _, unit, amount = parse_set(cmd)
    _core.check_key(key)
    _core.encode_value(value, key)
    if unit is not None and unit != b"EX":
        deadline_ms(unit, amount)


def _check_mset(cmd: list[bytes]) -> None:
    if len(cmd) % 2 == 0:
        raise Usage("ERR wrong number of arguments for 'mset' command")
    for i in range(1, len(cmd), 2):
        key = key_of(cmd[i])
        _core.check_key(key)
        _core.encode_value(cmd[i + 1], key)


def _check_key(cmd: list[bytes]) -> None:
    _core.check_key(key_of(cmd[1]))


def _check_expire(cmd: list[bytes]) -> None:
    key, seconds = expire_args(cmd)
    _core.check_key(key)
    _core.check_ttl(seconds, key)


def _check_nothing(cmd: list[bytes]) -> None:
    pass


_CHECKS: dict[bytes, Callable[[list[bytes]], None]] = {
    b"SET": _check_set, b"MSET": _check_mset, b"GET": _check_key, b"TTL": _check_key,
    b"PTTL": _check_key, b"PERSIST": _check_key, b"EXPIRE": _check_expire,
    b"PEXPIRE": _check_expire, b"MGET": _check_nothing, b"DEL": _check_nothing,
    b"UNLINK": _check_nothing, b"EXISTS": _check_nothing, b"PING": _check_nothing,
    b"ECHO": _check_nothing, b"UNWATCH": _check_nothing,
}


# ---- the queue run inside the transaction ---------------------------------------------


def _run_one(tx: Transaction, cmd: list[bytes], resp3: bool) -> bytes:
    try:
        return _RUN[cmd[0].upper()](tx, cmd, resp3)
    except TransactionError:
        raise  # past max_transaction_bytes: the whole EXEC is refused
    except FastKVError as e:
        return refused(e)
    except Usage as e:
        return rc.error(str(e))


def _value(tx: Transaction, raw: bytes) -> Optional[bytes]:
    try:
        return tx._value_bytes(key_of(raw))
    except InvalidKeyError:
        return None


def _tx_get(tx: Transaction, cmd: list[bytes], resp3: bool) -> bytes:
    data = tx._value_bytes(key_of(cmd[1]))
    return rc.null(resp3) if data is None else rc.bulk(data)


def _tx_mget(tx: Transaction, cmd: list[bytes], resp3: bool) -> bytes:
    values = [_value(tx, raw) for raw in cmd[1:]]
    return rc.array((rc.null(resp3) if v is None else rc.bulk(v) for v in values), len(values))


def _tx_set(tx: Transaction, cmd: list[bytes], resp3: bool) -> bytes:
    key, value, nx, unit, amount = parse_set(cmd)
    try:
        if unit is None or unit == b"EX":
            (tx.create if nx else tx.put)(key, value, amount if unit else None)
        else:
            tx._put_until(key, value, deadline_ms(unit, amount), replace=not nx)
    except KeyExistsError:
        return rc.null(resp3)
    return rc.OK


def _tx_mset(tx: Transaction, cmd: list[bytes], resp3: bool) -> bytes:
    tx.put_many([(key_of(cmd[i]), cmd[i + 1]) for i in range(1, len(cmd), 2)])
    return rc.OK


def _tx_del(tx: Transaction, cmd: list[bytes], resp3: bool) -> bytes:
    gone = 0
    for raw in cmd[1:]:
        try:
            tx.delete(key_of(raw))
            gone += 1
        except (KeyNotFoundError, InvalidKeyError):
            pass
    return rc.integer(gone)


def _tx_exists(tx: Transaction, cmd: list[bytes], resp3: bool) -> bytes:
    return rc.integer(sum(_value(tx, raw) is not None for raw in cmd[1:]))


def _tx_ttl(tx: Transaction, cmd: list[bytes], resp3: bool) -> bytes:
    try:
        left = tx.ttl(key_of(cmd[1]))
    except KeyNotFoundError:
        return rc.integer(-2)
    if left is None:
        return rc.integer(-1)
    return rc.integer(round(left * 1000) if cmd[0].upper() == b"PTTL" else int(left + 0.5))


def _tx_expire(tx: Transaction, cmd: list[bytes], resp3: bool) -> bytes:
    key, seconds = expire_args(cmd)
    try:
        tx.touch(key, seconds)
    except KeyNotFoundError:
        return rc.integer(0)
    return rc.integer(1)


def _tx_persist(tx: Transaction, cmd: list[bytes], resp3: bool) -> bytes:
    key = key_of(cmd[1])
    try:
        if tx.ttl(key) is None:
            return rc.integer(0)
        tx.touch(key, None)
    except KeyNotFoundError:
        return rc.integer(0)
    return rc.integer(1)


def _tx_ping(tx: Transaction, cmd: list[bytes], resp3: bool) -> bytes:
    return rc.bulk(cmd[1]) if len(cmd) > 1 else rc.PONG


def _tx_echo(tx: Transaction, cmd: list[bytes], resp3: bool) -> bytes:
    return rc.bulk(cmd[1])


def _tx_unwatch(tx: Transaction, cmd: list[bytes], resp3: bool) -> bytes:
    return rc.OK  # EXEC forgets the watched keys anyway


_RUN: dict[bytes, Callable[[Transaction, list[bytes], bool], bytes]] = {
    b"GET": _tx_get, b"MGET": _tx_mget, b"SET": _tx_set, b"MSET": _tx_mset,
    b"DEL": _tx_del, b"UNLINK": _tx_del, b"EXISTS": _tx_exists, b"TTL": _tx_ttl,
    b"PTTL": _tx_ttl, b"EXPIRE": _tx_expire, b"PEXPIRE": _tx_expire,
    b"PERSIST": _tx_persist, b"PING": _tx_ping, b"ECHO": _tx_echo, b"UNWATCH": _tx_unwatch,
}

TRANSACTION_COMMANDS: dict[bytes, tuple[Handler, int, int]] = {
    b"MULTI": (_multi, 0, 0), b"EXEC": (_exec, 0, 0), b"DISCARD": (_discard, 0, 0),
    b"WATCH": (_watch, 1, -1), b"UNWATCH": (_unwatch, 0, 0),
}

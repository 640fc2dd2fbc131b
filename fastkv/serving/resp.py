"""``fastkv serve --resp-port``: the store over the Redis protocol, so that
redis-cli, redis-py, redis-benchmark and the Redis clients of other
languages work against a fastkv file.

Served on the event loop of loop.py. A command runs on the loop when it
cannot wait (a read answered from the page cache, a write in the default
durability mode); one that may wait for the disk (a read the page cache
cannot answer, SCAN, DBSIZE, INFO, EXEC, and every write in fsync mode,
which waits for its flush there) goes to a worker thread, and that
connection's later commands wait for it, so replies keep the order of a
pipeline. The framing is parsed in C (fastkv/_resp.pxi, with the limits in
resp_codec.py): in Python it was half the time of a pipelined GET.

The commands are in resp_commands.py. Redis's own replies where Redis has one (GET of a missing key is nil, SET NX
on a live key is nil, DEL counts); a fastkv refusal (a bad key, value or
TTL, a full store) is ``-ERR <fastkv class>: <message>``.
"""

from __future__ import annotations

import hmac
import time
from typing import Optional

from fastkv import _core
from fastkv.datastore import DataStore
from fastkv.errors import FastKVError, UnauthorizedError
from fastkv.serving import resp_codec as rc
from fastkv.serving.limits import Limits
from fastkv.serving.loop import Connection, Later, ServingLoop, as_is
from fastkv.serving.resp_commands import (COMMANDS, WRITES, Reply, Usage, in_worker, refused,
                                          unknown)
from fastkv.serving.resp_transactions import IMMEDIATE, TRANSACTION_COMMANDS, enqueue

__all__ = ["RespService"]

_next, _batch, _INLINE = _core.resp_next, _core.resp_batch, _core.RESP_INLINE
_MAX_ARGS, _MAX_BULK = rc.MAX_ARGS, rc.MAX_BULK_BYTES
_NOAUTH = refused(UnauthorizedError("Authentication required."))


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
        self.queue: Optional[list[list[bytes]]] = None  # after MULTI
        self.queue_failed = False
        self.queue_bytes = 0
        self.watched: dict[str, tuple[int, int]] = {}

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
        service = self.service
        buf, execute, db = self.buf, service.execute, service.db
        budget = self.home.limits.max_output_bytes
        while True:
            out: list[bytes] = []
            pos, size, more = 0, 0, False
            try:
                while not self.closing:
                    if self.authed and self.queue is None and not service.writes_later:
                        # plain GETs and SETs answered in C, the rest below
                        pos, added, answered, cmd, end = _batch(
                            db, buf, pos, out, budget - size, self.resp3, _MAX_ARGS, _MAX_BULK,
                            not self.watched)
                        size += added
                        service.commands_processed += answered
                        if size >= budget:
                            more = True
                            break
                    else:
                        cmd, end = _next(buf, pos, _MAX_ARGS, _MAX_BULK)
                    if cmd is _INLINE:
                        cmd, end = rc.parse_inline(buf, pos)
                    if cmd is None:
                        if len(buf) - pos > rc.MAX_REQUEST_BYTES:
                            raise rc.ProtocolError("request too large")
                        break
                    pos = end
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
        self._table = {**COMMANDS, **TRANSACTION_COMMANDS}
        # fsync mode: writes wait for their flush in worker threads, never on
        # the loop (the C fast path, which writes on the loop, is left out)
        self.writes_later = db.durability == "fsync"

    def factory(self) -> _Conn:
        return _Conn(self)

    @property
    def limits(self) -> Limits:
        return self.home.limits

    @property
    def connections(self) -> int:
        return len(self.home.conns)

    def execute(self, conn: _Conn, cmd: list[bytes]) -> Reply:
        self.commands_processed += 1
        name = cmd[0].upper()
        entry = self._table.get(name)
        if entry is None and conn.queue is None:
            return unknown(cmd)
        if not conn.authed and name not in (b"AUTH", b"HELLO", b"QUIT"):
            return _NOAUTH
        if conn.queue is not None and name not in IMMEDIATE:
            return enqueue(self, conn, cmd, name, entry)
        if entry is None:
            return unknown(cmd)
        handler, least, most = entry
        argc = len(cmd) - 1
        if argc < least or (most >= 0 and argc > most):
            return rc.error(f"ERR wrong number of arguments for '{name.decode().lower()}' "
                            f"command")
        if self.writes_later and name in WRITES:
            return Later(lambda: in_worker(self, conn, cmd, handler), as_is, refused)
        try:
            return handler(self, conn, cmd)
        except FastKVError as e:
            return refused(e)
        except Usage as e:
            return rc.error(str(e))

    def check_token(self, given: bytes) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given, self.token.encode())

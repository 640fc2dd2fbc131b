"""The event loop both protocols are served on, in a thread of its own, and
what every connection shares: the connection limit, the idle timeout, the
bound on replies queued for a client that does not read, and commands that
may wait running in a worker thread without reordering a connection's
replies.

uvloop where it is installed (Linux and macOS), asyncio's own loop
otherwise: the same code runs on both.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Optional

from fastkv.errors import FastKVError
from fastkv.serving import accept
from fastkv.serving.limits import Limits

__all__ = ["ServingLoop", "Connection", "Later", "as_is"]


@dataclass
class Later:
    """Work that may wait (for the disk): call runs in a worker thread;
    finish turns what it returned into the bytes of the reply, refused
    turns the FastKVError it raised into them."""

    call: Callable[[], Any]
    finish: Callable[[Any], bytes]
    refused: Callable[[FastKVError], bytes]


def as_is(reply: bytes) -> bytes:
    """The finish of a Later whose call makes the reply's bytes itself."""
    return reply


class Connection(asyncio.Protocol):
    """The manners every served connection has; a protocol adds what it
    does with the bytes (on_data) and how it says "too many" (refusal)."""

    refusal = b""

    def __init__(self, home: "ServingLoop") -> None:
        self.home = home
        self.transport: Any = None
        self.waiting = False   # a command is in a worker thread
        self.paused = False    # the client is not reading its replies
        self.closing = False
        self.partial = False   # part of a request has come, the rest has not
        self.last = time.monotonic()

    @property
    def busy(self) -> bool:
        """A shutdown lets this connection finish its request first."""
        return self.waiting or self.partial

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        home = self.home
        if len(home.conns) >= home.limits.max_connections or home.stopping:
            transport.write(self.refusal)
            transport.close()
            self.closing = True
            return
        home.conns.add(self)
        transport.set_write_buffer_limits(high=home.limits.max_output_bytes)

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.home.conns.discard(self)
        self.closing = True

    def pause_writing(self) -> None:
        self.transport.pause_reading()
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if not self.waiting:
            self.transport.resume_reading()
            self.proceed()

    def data_received(self, data: bytes) -> None:
        self.last = time.monotonic()
        self.on_data(data)

    def on_data(self, data: bytes) -> None:
        raise NotImplementedError

    def proceed(self) -> None:
        """Go on with requests held back (by a command in a thread, or by
        a client that did not read)."""

    def later(self, job: Later) -> None:
        """Run job in a worker thread; nothing else of this connection runs
        until its reply is written."""
        self.waiting = True
        self.transport.pause_reading()
        fut = asyncio.get_running_loop().run_in_executor(None, job.call)
        fut.add_done_callback(lambda f: self._done(job, f))

    def _done(self, job: Later, fut: "asyncio.Future[Any]") -> None:
        self.waiting = False
        if self.transport is None or self.transport.is_closing() or fut.cancelled():
            return
        exc = fut.exception()
        if exc is None:
            reply = job.finish(fut.result())
        elif isinstance(exc, FastKVError):
            reply = job.refused(exc)
        else:
            self.transport.close()  # a bug: asyncio's handler reports it
            raise exc
        self.transport.write(reply)
        if not self.paused:
            self.transport.resume_reading()
            self.proceed()


class ServingLoop:
    """One event loop in a thread, with the listeners added to it."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.conns: set[Connection] = set()
        self.stopping = False
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._servers: list[Any] = []

    def start(self) -> None:
        ready: Future[asyncio.AbstractEventLoop] = Future()
        self._thread = threading.Thread(target=self._main, args=(ready,), name="fastkv-serve",
                                        daemon=True)
        self._thread.start()
        self._loop = ready.result()

    def listen(self, factory: Callable[[], Connection], host: str, port: int) -> int:
        """Accept connections on host:port (0: a free one); the port. OSError
        if it cannot be bound."""
        assert self._loop is not None

        async def bind() -> int:
            assert self._loop is not None
            server: Any
            if sys.platform == "win32":  # the Proactor loop's accept dies with one reset
                server = await accept.listen(self._loop, factory, host, port, backlog=1024)
            else:
                server = await self._loop.create_server(factory, host, port, backlog=1024,
                                                        reuse_address=True)
            self._servers.append(server)
            bound: int = server.sockets[0].getsockname()[1]
            return bound

        return asyncio.run_coroutine_threadsafe(bind(), self._loop).result()

    def call(self, fn: Callable[[], Any]) -> Any:
        """fn() run on the loop, from another thread; its result."""
        assert self._loop is not None

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    def stop(self, drain_timeout: float) -> None:
        """Stop accepting, let commands in flight answer (up to
        drain_timeout), close every connection, end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(drain_timeout), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._loop = None

    def _main(self, ready: "Future[asyncio.AbstractEventLoop]") -> None:
        loop = _new_loop()
        asyncio.set_event_loop(loop)
        sweep = loop.create_task(self._sweep())
        ready.set_result(loop)
        try:
            loop.run_forever()
        finally:
            sweep.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    async def _sweep(self) -> None:
        """Close connections idle past the limit (a half-sent request too)."""
        idle = self.limits.idle_timeout_s
        while True:
            await asyncio.sleep(min(1.0, idle / 4))
            cutoff = time.monotonic() - idle
            for c in [c for c in self.conns if c.last < cutoff and not c.waiting]:
                c.transport.close()

    async def _shutdown(self, drain_timeout: float) -> None:
        self.stopping = True
        for server in self._servers:
            server.close()
        deadline = time.monotonic() + drain_timeout
        while True:  # idle connections close now, busy ones once they answer
            for c in [c for c in self.conns if not c.busy]:
                c.transport.close()  # what is already written still goes out
            if not self.conns or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.01)
        for c in list(self.conns):
            c.transport.close()
        await asyncio.sleep(0.05)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop

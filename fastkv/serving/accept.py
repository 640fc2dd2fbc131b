"""A listener whose accept loop outlives any one failed accept, for the
loops whose own does not.

asyncio's Proactor loop (the default on Windows) closes its listening
socket when one accept fails, and an accept fails when a client resets its
connection before it is taken (WinError 64 or 10054; 10057 under Wine):
one such client and the server accepts nothing more while the process
lives. Here the socket is ours (socket.create_server, which on Windows does
not set SO_REUSEADDR, so a port in use is refused as in use rather than
shared), connections are taken with loop.sock_accept and handed to the
protocol with loop.connect_accepted_socket (both public asyncio calls), and
a failed accept is counted and skipped. On Linux and macOS the loop's own
create_server is used (uvloop's accept path): this one is only for
Windows.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Callable

__all__ = ["Listener", "listen"]

# after this many failed accepts in a row, wait a little before the next:
# a listener that fails every time (the system out of sockets) must not spin
PAUSE_AFTER = 10
PAUSE_S = 0.1


class Listener:
    """A listening socket and the task that accepts on it; close() stops it."""

    def __init__(self, sock: socket.socket, task: "asyncio.Task[None]") -> None:
        self.sockets = [sock]
        self._task = task
        self.failed_accepts = 0

    def close(self) -> None:
        self._task.cancel()
        for sock in self.sockets:
            sock.close()


def _quiet_failed_accepts(loop: asyncio.AbstractEventLoop) -> None:
    """The Proactor loop wraps each accept in a task of its own whose failure
    nobody retrieves (sock_accept gets it from the future inside): at each
    failed accept asyncio logs "Task exception was never retrieved" with a
    traceback. The failure is handled here, so those reports are dropped;
    every other report goes where it went before."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        task = context.get("future")
        coro = getattr(task, "get_coro", lambda: None)()
        if (isinstance(context.get("exception"), OSError)
                and getattr(coro, "__name__", "") == "accept_coro"):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


async def listen(loop: asyncio.AbstractEventLoop, factory: Callable[[], Any], host: str,
                 port: int, backlog: int) -> Listener:
    """Listen on host:port and serve each connection with factory();
    OSError if the address cannot be bound (in use: errno EADDRINUSE)."""
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    sock = socket.create_server(address[:2], family=family, backlog=backlog)
    sock.setblocking(False)
    holder: list[Listener] = []

    async def accept_forever() -> None:
        in_a_row = 0
        while True:
            try:
                conn, _ = await loop.sock_accept(sock)
            except asyncio.CancelledError:
                raise
            except OSError:
                # a client gone before its connection was taken: skip it
                holder[0].failed_accepts += 1
                in_a_row += 1
                if in_a_row >= PAUSE_AFTER:
                    await asyncio.sleep(PAUSE_S)
                    in_a_row = 0
                continue
            in_a_row = 0
            try:
                await loop.connect_accepted_socket(factory, conn)
            except OSError:
                conn.close()

    _quiet_failed_accepts(loop)
    listener = Listener(sock, loop.create_task(accept_forever()))
    holder.append(listener)
    return listener

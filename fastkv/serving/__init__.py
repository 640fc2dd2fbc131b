"""``fastkv serve``: one process owns one store and answers other processes
and languages, over HTTP/1.1 (http_app.py on http_asyncio.py, JSON, with an
OpenAPI document in openapi.py) and, when asked for, the Redis protocol
(resp.py, framing in resp_codec.py, commands in resp_commands.py), both on
one event loop (loop.py). Both share the store, the token, the limits (limits.py)
and one table of error classes (fastkv/wire.py).
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any, Callable, Optional

from fastkv.serving.limits import DEFAULT_HOST, DEFAULT_PORT, DRAIN_TIMEOUT_S, Limits

__all__ = ["serve", "Limits", "DEFAULT_HOST", "DEFAULT_PORT"]


def serve(
    path: Any, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: Optional[str] = None,
    lock_timeout: float = 0.0, max_file_size: Optional[int] = None,
    ready: Optional[Callable[[str], None]] = None, resp_port: Optional[int] = None,
    limits: Limits = Limits(), durability: str = "process",
) -> None:
    """Open the store at path and serve it until SIGINT or SIGTERM, then
    finish the requests in flight and close the store cleanly.

    resp_port: also serve the Redis protocol there (0: a free port).
    durability: the store's mode (DataStore's argument). In "fsync" mode
    every write runs in a worker thread and is answered once it is flushed,
    so the event loop never waits for the disk and concurrent clients'
    writes share flushes (group commit).
    ready, if given, is called with the server's URLs (HTTP first, then
    RESP, separated by a space) once it listens.

    Raises:
        ConfigError: durability is not "process" or "fsync".
        StoreLockedError: another process holds the store.
        OSError: an address is taken or cannot be bound.
    """
    # imported here: the command line imports this package for its limits,
    # and must not pay for asyncio on every call
    from fastkv import _core
    from fastkv.datastore import DataStore
    from fastkv.serving.http_asyncio import HttpService
    from fastkv.serving.loop import ServingLoop

    db = DataStore(path, lock_timeout=lock_timeout, durability=durability,
                   max_file_size=_core.MAX_FILE_SIZE if max_file_size is None else max_file_size)
    home = ServingLoop(limits)
    urls = []
    try:
        _raise_open_file_limit(limits.max_connections)
        home.start()
        http = HttpService(db, token, home)
        urls.append(f"http://{_shown(host)}:{home.listen(http.factory, host, port)}")
        if resp_port is not None:
            from fastkv.serving.resp import RespService

            resp = RespService(db, token, home)
            resp.port = home.listen(resp.factory, host, resp_port)
            urls.append(f"redis://{_shown(host)}:{resp.port}")
    except BaseException:
        home.stop(0)
        db.close()
        raise
    stop = threading.Event()

    def on_signal(signum: int, frame: Optional[FrameType]) -> None:
        stop.set()

    # SIGBREAK: Ctrl+Break on Windows, where SIGTERM cannot be caught
    stops = [signal.SIGINT, signal.SIGTERM, *filter(None, [getattr(signal, "SIGBREAK", None)])]
    previous = {sig: signal.signal(sig, on_signal) for sig in stops}
    try:
        if ready is not None:
            ready(" ".join(urls))
        while not stop.wait(0.5):
            pass
    finally:
        home.stop(DRAIN_TIMEOUT_S)  # stops accepting, lets requests in flight answer
        db.close()  # waits for calls inside the store
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.stderr.flush()


def _raise_open_file_limit(connections: int) -> None:
    """A socket is a file descriptor: lift the soft limit (often 1,024)
    towards the hard one so max_connections can be reached."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = connections + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        except (OSError, ValueError):
            pass


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host

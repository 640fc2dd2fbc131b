"""``fastkv serve``: one process owns one store and answers other processes
and languages, over HTTP/1.1 (http.py, JSON, with an OpenAPI document in
openapi.py) and, when asked for, the Redis protocol (resp.py, framing in
resp_codec.py). Both share the store, the token, the limits (limits.py)
and one table of error classes (fastkv/wire.py).
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any, Callable, Optional

from fastkv import _core
from fastkv.datastore import DataStore
from fastkv.serving.http import DEFAULT_HOST, DEFAULT_PORT, DRAIN_TIMEOUT_S, KVServer
from fastkv.serving.limits import Limits
from fastkv.serving.loop import ServingLoop

__all__ = ["serve", "Limits", "DEFAULT_HOST", "DEFAULT_PORT"]


def serve(
    path: Any, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: Optional[str] = None,
    lock_timeout: float = 0.0, max_file_size: Optional[int] = None,
    ready: Optional[Callable[[str], None]] = None, resp_port: Optional[int] = None,
    limits: Limits = Limits(),
) -> None:
    """Open the store at path and serve it until SIGINT or SIGTERM, then
    finish the requests in flight and close the store cleanly.

    resp_port: also serve the Redis protocol there (0: a free port).
    ready, if given, is called with the server's URLs (HTTP first, then
    RESP, separated by a space) once it listens.

    Raises:
        StoreLockedError: another process holds the store.
        OSError: an address is taken or cannot be bound.
    """
    db = DataStore(path, lock_timeout=lock_timeout,
                   max_file_size=_core.MAX_FILE_SIZE if max_file_size is None else max_file_size)
    resp: Any = None
    home = ServingLoop(limits)
    try:
        server = KVServer(db, host, port, token)
        if resp_port is not None:
            from fastkv.serving.resp import RespService

            _raise_open_file_limit(limits.max_connections)
            home.start()
            resp = RespService(db, token, home)
            resp.port = home.listen(resp.factory, host, resp_port)
            resp_url = f"redis://{_shown(host)}:{resp.port}"
    except BaseException:
        home.stop(0)
        db.close()
        raise
    stop = threading.Event()

    def on_signal(signum: int, frame: Optional[FrameType]) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    loop = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                            name="fastkv-serve")
    loop.start()
    try:
        if ready is not None:
            ready(server.url if resp is None else f"{server.url} {resp_url}")
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()  # stops accepting; returns once the loop has exited
        loop.join()
        server.server_close()
        home.stop(DRAIN_TIMEOUT_S)
        server.drain(DRAIN_TIMEOUT_S)  # let the requests in flight answer
        db.close()  # waits for calls inside the store; later ones get 503
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

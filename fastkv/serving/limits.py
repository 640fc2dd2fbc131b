"""What one `fastkv serve` lets its clients make it hold: the same bounds
for both protocols, so no client can make the server hang or grow without
limit."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits", "DEFAULT_HOST", "DEFAULT_PORT", "DRAIN_TIMEOUT_S"]

DEFAULT_HOST = "127.0.0.1"  # this machine only
DEFAULT_PORT = 8765
DRAIN_TIMEOUT_S = 10.0  # how long a shutdown waits for requests in flight


@dataclass(frozen=True)
class Limits:
    # Connections open at once; the next is answered with an error and closed.
    max_connections: int = 10_000
    # A connection with nothing received for this long is closed (a
    # half-sent request included).
    idle_timeout_s: float = 300.0
    # Replies queued for a client that does not read them: past this, the
    # server stops reading that client's requests until it catches up.
    max_output_bytes: int = 1 << 20

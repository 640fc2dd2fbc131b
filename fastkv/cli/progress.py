"""A one-line progress bar for the command line's long jobs.

Drawn on stderr only when stderr is a terminal, so output that is piped or
captured by a script stays clean. Redrawn at most ten times a second: a job
that updates it once per key must not spend its time drawing.
"""

from __future__ import annotations

import shutil
import sys
import time
from types import TracebackType
from typing import Optional, TextIO, Type

_REDRAW_S = 0.1


class ProgressBar:
    """``with ProgressBar("export", total) as bar: ... bar.update(done)``."""

    def __init__(
        self, label: str, total: int, unit: str = "", stream: Optional[TextIO] = None
    ) -> None:
        self.label = label
        self.total = max(0, total)
        self.unit = unit
        self.stream = sys.stderr if stream is None else stream
        self.enabled = _is_terminal(self.stream)
        self._done = 0
        self._finished = False
        self._drawn_at = 0.0

    def update(self, done: int) -> None:
        self._done = done
        if self.enabled:
            now = time.monotonic()
            if now - self._drawn_at >= _REDRAW_S:
                self._drawn_at = now
                self._draw()

    def __enter__(self) -> "ProgressBar":
        if self.enabled:
            self._draw()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if not self.enabled:
            return
        if exc_type is None:
            self._done = self.total
            self._finished = True
            self._draw()
            self.stream.write("\n")
        else:  # leave the line for the error message that follows
            self.stream.write("\r\x1b[K")
        self.stream.flush()

    def _draw(self) -> None:
        total = self.total
        done = min(self._done, total) if total else self._done
        # a total not known yet (0) is 0%, unless the job is over
        frac = done / total if total else float(self._finished)
        counts = f"{done:,}/{total:,}{' ' + self.unit if self.unit else ''}"
        width = shutil.get_terminal_size((80, 24)).columns
        room = max(10, min(40, width - len(self.label) - len(counts) - 10))
        filled = int(room * frac)
        bar = "#" * filled + "-" * (room - filled)
        self.stream.write(f"\r{self.label} [{bar}] {frac:4.0%} {counts}\x1b[K")
        self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False

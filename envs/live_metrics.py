"""Publishing a running job's resource figures where ``status`` can read them.

A job's pool reports its metrics after every acquisition and release; a
:class:`MetricsPublisher` passes them on. :class:`LiveMetricsFile` writes them to a
JSON file (the job's metrics file, which the run's final figures replace when it
ends), atomically, and at most once per ``interval`` seconds so that a job of
thousands of short agents does not write a file per agent: a snapshot that arrives
too soon is kept and written by the next publication after the interval, or by
:meth:`LiveMetricsFile.flush`.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, final

__all__ = ["LiveMetricsFile", "MetricsPublisher"]


class MetricsPublisher(Protocol):
    """Where a running job's figures go."""

    def publish(self, snapshot: Mapping[str, Any]) -> None:
        """Take the newest figures (JSON-able); may defer writing them."""
        ...

    def flush(self) -> None:
        """Write the newest figures now if some are not written yet."""
        ...


@final
class LiveMetricsFile:
    """Writes snapshots to ``path`` (replaced atomically), at most once per ``interval``.

    A write that fails (full disk, directory gone) is dropped silently: the figures
    are informative and the job must not fail for them; the next one tries again.
    """

    def __init__(
        self,
        path: str,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = path
        self._interval = interval
        self._clock = clock
        self._written_at: float | None = None
        self._pending: Mapping[str, Any] | None = None

    def publish(self, snapshot: Mapping[str, Any]) -> None:
        self._pending = snapshot
        now = self._clock()
        if self._written_at is None or now - self._written_at >= self._interval:
            self.flush()

    def flush(self) -> None:
        if self._pending is None:
            return
        snapshot, self._pending = self._pending, None
        self._written_at = self._clock()
        temporary = f"{self._path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self._path) or ".", exist_ok=True)
            with open(temporary, "w", encoding="utf-8") as file:
                json.dump(snapshot, file, indent=2)
            os.replace(temporary, self._path)
        except OSError:
            with contextlib.suppress(OSError):
                os.remove(temporary)

"""Progress on the terminal: a live status line on a TTY, plain lines otherwise."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

__all__ = ["ConsoleProgress", "JsonLinesSink", "NullSink"]


class NullSink:
    """An event sink that drops every event."""

    def emit(self, event: Mapping[str, Any]) -> None:
        return None


class JsonLinesSink:
    """Writes every event as one JSON line (for logs and ``--json`` debugging)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def emit(self, event: Mapping[str, Any]) -> None:
        self._stream.write(json.dumps(dict(event), default=str) + "\n")
        self._stream.flush()


class ConsoleProgress:
    """Shows a job's progress: items done, failed and running, and the elapsed time.

    On a terminal the status is one line rewritten in place; otherwise each
    finished item and phase is a plain line, so logs stay readable.
    """

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._live = self._stream.isatty() if live is None else live
        self._started = time.monotonic()
        self._total = 0
        self._done = 0
        self._failed = 0
        self._running = 0
        self._line_open = False

    def _elapsed(self) -> str:
        seconds = int(time.monotonic() - self._started)
        return f"{seconds // 60}:{seconds % 60:02d}"

    def _status(self) -> str:
        return (
            f"items {self._done + self._failed}/{self._total} "
            f"(done {self._done}, failed {self._failed}, running {self._running}) "
            f"elapsed {self._elapsed()}"
        )

    def _print(self, text: str) -> None:
        if self._line_open:
            self._stream.write("\r\x1b[K")
            self._line_open = False
        self._stream.write(text + "\n")
        self._refresh()

    def _refresh(self) -> None:
        if self._live and self._total:
            self._stream.write("\r\x1b[K" + self._status())
            self._line_open = True
        self._stream.flush()

    def emit(self, event: Mapping[str, Any]) -> None:
        kind = event.get("event")
        if kind == "job_started":
            self._print(f"job {event.get('job_id')}: {event.get('workflow')}")
        elif kind == "map_planned":
            self._total = int(event.get("total", 0))
            self._print(f"map: {self._total} items, at most {event.get('max_parallel')} at once")
        elif kind == "agent_started":
            self._running += 1
            self._refresh()
        elif kind == "agent_finished":
            self._running = max(0, self._running - 1)
            if event.get("status") == "failed":
                self._failed += 1
                self._print(f"  item {event.get('index')} failed: {event.get('error')}")
            else:
                self._done += 1
                if not self._live:
                    self._print(f"  item {event.get('index')} {event.get('status')}")
                else:
                    self._refresh()
        elif kind == "cleanup_failed":
            what = f"item {event['item_key']}" if event.get("item_key") else "the job's worktrees"
            self._print(
                f"  warning: cleanup of {what} failed: {event.get('error')} "
                "(python -m phases worktrees clean removes what is left)"
            )
        elif kind == "disk_warning":
            self._print(
                f"  warning: the disk holding {event.get('path')} is "
                f"{event.get('percent')}% full ({event.get('free_bytes')} bytes free)"
            )
        elif kind == "job_finished":
            self._print(
                f"job {event.get('job_id')} {event.get('status')}: "
                f"{event.get('successful')}/{event.get('total')} items succeeded, "
                f"{event.get('failed')} failed, in {self._elapsed()}"
            )

"""Numbered gzip archives of a log file, compressed in a background thread, at most ``keep``."""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import shutil
import threading
from typing import final

__all__ = ["LogArchives"]


@final
class LogArchives:
    """The archives ``<name>.1.jsonl.gz`` (newest) to ``<name>.<keep>.jsonl.gz`` of a log file.

    :meth:`archive` sets the full log file aside as ``<name>.jsonl.rotating``
    (a rename: the caller can start a new file at once) and compresses it in
    a background thread: older archives shift up one number, those past
    ``keep`` are deleted (``keep=0``: the file is deleted, not compressed),
    and the new archive appears whole (written as ``.tmp``, then renamed).
    One compression runs at a time; :meth:`wait` waits for it. A set-aside
    file that a killed process left is archived when the archives are
    opened. A compression that fails (disk full) leaves its set-aside file
    for the next :meth:`archive` to replace, and is reported by
    :meth:`take_error`.
    """

    def __init__(self, directory: str, name: str, keep: int) -> None:
        self._directory = directory
        self._name = name
        self._keep = keep
        self._rotating = os.path.join(directory, f"{name}.jsonl.rotating")
        self._temporary = self.path(1) + ".tmp"
        self._pattern = re.compile(rf"^{re.escape(name)}\.(\d+)\.jsonl\.gz$")
        self._thread: threading.Thread | None = None
        self._error: str | None = None
        _remove_quietly(self._temporary)
        if os.path.exists(self._rotating):
            self._start()

    def path(self, number: int) -> str:
        """Where archive ``number`` (1 is the newest) is."""
        return os.path.join(self._directory, f"{self._name}.{number}.jsonl.gz")

    def archive(self, log_file: str) -> None:
        """Set ``log_file`` aside and start compressing it; waits for a compression still running.

        Raises ``OSError`` when the file cannot be renamed (then nothing changed).
        """
        self.wait()
        os.replace(log_file, self._rotating)
        self._start()

    def wait(self) -> None:
        """Wait until the compression running (if any) has finished."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def take_error(self) -> str | None:
        """Why the last compression failed, once (``None``: no failure, or still running)."""
        if self._thread is not None and self._thread.is_alive():
            return None  # only a finished thread has stopped writing ``_error``
        error, self._error = self._error, None
        return error

    def _start(self) -> None:
        # Not a daemon: a process that exits without closing its log still finishes the archive.
        self._thread = threading.Thread(
            target=self._compress, name=f"log-archiver:{self._rotating}", daemon=False
        )
        self._thread.start()

    def _compress(self) -> None:
        """Runs in the archiver thread; sets ``_error`` (once, at its end) when it fails."""
        try:
            for entry in os.listdir(self._directory):
                found = self._pattern.match(entry)
                if found is not None and int(found[1]) >= self._keep:
                    os.remove(os.path.join(self._directory, entry))
            if self._keep == 0:
                os.remove(self._rotating)
                return
            for number in range(self._keep - 1, 0, -1):
                if os.path.exists(self.path(number)):
                    os.replace(self.path(number), self.path(number + 1))
            with open(self._rotating, "rb") as source, gzip.open(self._temporary, "wb") as target:
                shutil.copyfileobj(source, target, 1 << 20)
            os.replace(self._temporary, self.path(1))
            os.remove(self._rotating)
        except OSError as error:
            _remove_quietly(self._temporary)
            self._error = f"{type(error).__name__}: {error}"


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)

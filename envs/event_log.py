"""A bounded event log: JSON lines, long texts excerpted, repeats counted, rotated and gzipped.

However long a job runs, the log's files stay bounded: every line is at
most 64 KiB (or ``8 * excerpt_chars + 4096`` bytes if more, and always
4 KiB less than ``max_bytes``), the current file at most ``max_bytes``,
and at most ``keep`` compressed archives of such files are kept
(:class:`~envs.log_archives.LogArchives`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from types import TracebackType
from typing import Any, final

import attrs

from envs.log_archives import LogArchives
from envs.protocols import Clock, EventSink
from envs.system_clock import SystemClock
from pure.error_summary import excerpt

__all__ = ["ERROR_FIELDS", "EventLog", "FanoutSink"]

# Values of these fields are "the error" of an event: identical ones are stored once.
ERROR_FIELDS = ("error", "output", "stdout", "stderr")
_LINE_LIMIT = 64 * 1024
_KIND_CHARS = 100
_MAX_DEPTH = 32
_REPEAT_KEYS = ("error_hash", "repeat_of", "repeat")
_REPEAT_LINE_BYTES = 256  # a "repeated" line without its kind: ts, hash, counts, keys
# Room kept free in every file for up to three problem reports (their error cut to 200 chars).
_REPORT_ROOM = 4096
_REPORT_ERROR_CHARS = 200
# At most 6 bytes a character (\u00XX escapes); an excerpted kind is 100 characters and a marker.
_MAX_REPEAT_RESERVE = 6 * (_KIND_CHARS + 50) + _REPEAT_LINE_BYTES
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")
# Characters some JSON-lines readers (str.splitlines) take for line ends; escaped in the log.
_SEPARATORS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_SEPARATOR = re.compile("[\x85\u2028\u2029]")


@attrs.define
class _Repeat:
    """An error seen in the current file, and how often it came again since."""

    kind: Any
    digest: str
    reserve: int
    first_ts: float
    last_ts: float
    count: int = 0


@final
class EventLog:
    """An event sink appending each event as a JSON line to ``<directory>/<name>.jsonl``.

    Each event becomes one JSON line with a ``ts`` (wall-clock seconds, replacing
    any ``ts`` of the event). A string longer than ``excerpt_chars`` (an output,
    an error, a command) is stored as ``{"excerpt", "length", "sha256"}``: its
    head and tail and the hash of the whole. An event whose error (its
    ``error``/``output``/``stdout``/``stderr`` values) was already stored in the
    current file for the same kind of event is written without those fields,
    with ``"repeat_of": <hash>`` and ``"repeat": n``; the first occurrence
    carries ``"error_hash": <hash>``, and a ``{"event": "repeated", "of": kind,
    "hash", "count", "first_ts", "last_ts"}`` line counts the repeats when the
    file is rotated or the log closed. A line that would still be too long (see
    the module docstring) is replaced by ``{"event", "oversized": excerpt}``.

    Rotation: when the next line would take the file past ``max_bytes``, the
    file becomes ``<name>.1.jsonl.gz`` (older archives shift to ``.2`` ...,
    those past ``keep`` are deleted; ``keep=0`` deletes the file). Compression
    runs in a background thread, which :meth:`close` waits for.

    Every event is flushed to the operating system as it is written (no
    fsync), so ``tail -f`` shows it at once and a killed process loses
    nothing it emitted. A write the disk refuses (full, removed directory)
    does not fail the job: the event is dropped and counted, and the next
    write that succeeds first writes ``{"event": "events_dropped", "count",
    "error"}``. Emitting after :meth:`close` drops the event the same way.

    Raises ``ValueError`` for an invalid ``name``, ``keep``, ``excerpt_chars``
    or a ``max_bytes`` too small for one excerpted event and the problem
    reports (``8 * excerpt_chars + 8192``), and ``OSError`` when
    ``directory`` cannot be created.
    """

    def __init__(
        self,
        directory: str,
        *,
        name: str = "events",
        max_bytes: int = 10_000_000,
        keep: int = 5,
        excerpt_chars: int = 500,
        clock: Clock | None = None,
    ) -> None:
        if not _NAME.match(name):
            raise ValueError(
                "`name` must be 1-100 letters, digits, '.', '_' or '-' "
                f"(not starting with '.' or '-'), got {name!r}"
            )
        if keep < 0:
            raise ValueError(f"`keep` must be non-negative, got {keep}")
        if excerpt_chars < 1:
            raise ValueError(f"`excerpt_chars` must be positive, got {excerpt_chars}")
        smallest = 8 * excerpt_chars + 8192
        if max_bytes < smallest:
            raise ValueError(
                f"`max_bytes` must be at least {smallest} (8 * excerpt_chars + 8192), "
                f"got {max_bytes}"
            )
        self._directory = directory
        self._name = name
        self._max_bytes = max_bytes
        self._keep = keep
        self._excerpt_chars = excerpt_chars
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._line_limit = min(max(_LINE_LIMIT, 8 * excerpt_chars + 4096), max_bytes - _REPORT_ROOM)
        # Repeats reserve room for their "repeated" line; together at most a quarter of a file.
        self._max_repeats = max(1, max_bytes // 4 // _MAX_REPEAT_RESERVE)
        self._path = os.path.join(directory, f"{name}.jsonl")
        self._lock = threading.Lock()
        self._file: io.BufferedWriter | None = None
        self._size = 0
        self._reserve = 0
        self._repeats: OrderedDict[tuple[str, str], _Repeat] = OrderedDict()
        self._dropped = 0
        self._unreported_drops = 0
        self._last_error = ""
        self._closed = False
        os.makedirs(directory, exist_ok=True)
        self._archives = LogArchives(directory, name, keep)

    @property
    def path(self) -> str:
        """The file events are appended to now."""
        return self._path

    @property
    def dropped(self) -> int:
        """How many events could not be written (disk errors, emitted after close)."""
        return self._dropped

    def emit(self, event: Mapping[str, Any]) -> None:
        """Append ``event`` as one line, rotating first when the file is full.

        Takes tens of microseconds (one write and flush, a hash of each long
        text); never raises for a disk error (see the class docstring).
        """
        with self._lock:
            if self._closed:
                self._drop("the event log was closed")
                return
            try:
                self._write_event(event)
            except OSError as error:
                self._drop(f"{type(error).__name__}: {error}")

    def close(self) -> None:
        """Write the repeat counts, flush and close the file, wait for compression. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._report_problems()
                self._write_repeats()
                self._archives.wait()
                self._report_problems()  # an archive that failed just now
            except OSError as error:
                self._last_error = f"{type(error).__name__}: {error}"  # nowhere left to report it
            finally:
                self._close_file()
                self._archives.wait()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- writing ------------------------------------------------------------------------------

    def _write_event(self, event: Mapping[str, Any]) -> None:
        self._ensure_open()
        self._report_problems()
        now = self._clock.now()
        record: dict[str, Any] = {"ts": now}
        for field, value in event.items():
            if field != "ts":
                record[self._shrink_key(field)] = self._shrink(value, 0)
        kind = record.get("event")
        digest = self._error_digest(event, record)
        key = None if digest is None else (_kind_key(kind), digest)
        entry = None if key is None else self._repeats.get(key)
        line = self._encode(record, digest, entry)
        extra = entry.reserve if entry is not None and entry.count == 0 else 0
        needed = len(line) + self._reserve + extra + _REPORT_ROOM
        if self._size > 0 and self._size + needed > self._max_bytes:
            self._rotate()
            entry, extra = None, 0
            line = self._encode(record, digest, None)
        self._write(line)
        if key is None:
            return
        if entry is None:
            self._remember(key, kind, now)
            return
        entry.count += 1
        entry.last_ts = now
        self._reserve += extra
        self._repeats.move_to_end(key)

    def _encode(self, record: dict[str, Any], digest: str | None, entry: _Repeat | None) -> bytes:
        """The line for ``record``: first occurrence of its error, or a repeat of ``entry``."""
        if digest is None:
            shown = record
        elif entry is None:
            shown = {**record, "error_hash": digest}
        else:
            shown = {key: value for key, value in record.items() if key not in ERROR_FIELDS}
            shown.update(repeat_of=digest, repeat=entry.count + 1)
        line = _dumps(shown)
        if len(line) <= self._line_limit:
            return line
        whole = line[:-1].decode("utf-8", "replace")
        compact = {"ts": record["ts"], "event": _short_kind(record.get("event"))}
        compact.update((key, shown[key]) for key in _REPEAT_KEYS if key in shown)
        compact["oversized"] = _excerpt_data(whole, self._excerpt_chars)
        return _dumps(compact)

    def _shrink(self, value: Any, depth: int) -> Any:
        """``value`` as JSON data, with long strings excerpted and odd values made strings."""
        if isinstance(value, str):
            return self._shrink_text(value)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value if abs(value) < 2**63 else self._shrink_text(str(value))
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if depth >= _MAX_DEPTH:
            return self._shrink_text(str(value))
        if isinstance(value, Mapping):
            return {
                self._shrink_key(key): self._shrink(item, depth + 1) for key, item in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self._shrink(item, depth + 1) for item in value]
        return self._shrink_text(str(value))

    def _shrink_key(self, key: object) -> str:
        text = str(key)
        return (
            text
            if len(text) <= self._excerpt_chars
            else excerpt(text, self._excerpt_chars).head_and_tail
        )

    def _shrink_text(self, text: str) -> Any:
        if len(text) <= self._excerpt_chars:
            return text
        return _excerpt_data(text, self._excerpt_chars)

    def _error_digest(self, event: Mapping[str, Any], record: Mapping[str, Any]) -> str | None:
        """A short hash of the event's error fields, or ``None`` when it has no error."""
        parts = []
        for field in ERROR_FIELDS:
            value = event.get(field)
            if value is None or value == "":
                continue
            shrunk = record[field]
            if isinstance(value, str) and isinstance(shrunk, dict):
                part = shrunk["sha256"]  # already the hash of the whole text
            else:
                part = hashlib.sha256(_dumps(shrunk, sort_keys=True)).hexdigest()
            parts.append(f"{field}={part}")
        if not parts:
            return None
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def _remember(self, key: tuple[str, str], kind: Any, now: float) -> None:
        """Track a first occurrence, forgetting the least recent error when too many are kept."""
        if len(self._repeats) >= self._max_repeats:
            _, oldest = self._repeats.popitem(last=False)
            if oldest.count:
                self._reserve -= oldest.reserve
                self._write(self._repeat_line(oldest))
        reserve = len(_dumps(_short_kind(kind))) + _REPEAT_LINE_BYTES
        self._repeats[key] = _Repeat(kind, key[1], reserve, now, now)

    def _repeat_line(self, entry: _Repeat) -> bytes:
        return _dumps(
            {
                "ts": self._clock.now(),
                "event": "repeated",
                "of": _short_kind(entry.kind),
                "hash": entry.digest,
                "count": entry.count,
                "first_ts": entry.first_ts,
                "last_ts": entry.last_ts,
            }
        )

    def _write_repeats(self) -> None:
        """Write the counts of the current file's repeated errors (their room is reserved)."""
        repeated = [entry for entry in self._repeats.values() if entry.count]
        self._repeats.clear()
        self._reserve = 0
        for entry in repeated:
            self._write(self._repeat_line(entry))

    def _report_problems(self) -> None:
        """Record in the log the events dropped and an archive that failed (room is kept free
        for them, so they never rotate the file); forgotten only once written."""
        error = self._archives.take_error()
        if error is not None:
            # Lost if this write fails too: the drop it causes is reported, with its own error.
            self._write_report({"event": "log_archive_failed", "error": error})
        if self._unreported_drops:
            count = self._unreported_drops
            self._write_report(
                {"event": "events_dropped", "count": count, "error": self._last_error}
            )
            self._unreported_drops = 0

    def _write_report(self, fields: dict[str, Any]) -> None:
        error = excerpt(fields["error"], _REPORT_ERROR_CHARS).head_and_tail
        self._write(_dumps({"ts": self._clock.now(), **fields, "error": error}))

    def _write(self, line: bytes) -> None:
        file = self._ensure_open()
        file.write(line)
        file.flush()
        self._size += len(line)

    def _drop(self, reason: str) -> None:
        self._dropped += 1
        self._unreported_drops += 1
        self._last_error = reason
        # Reopen on the next write: the file may be gone or end in a partial line.
        self._close_file()

    # ---- files --------------------------------------------------------------------------------

    def _ensure_open(self) -> io.BufferedWriter:
        """The current file, opened (for appending) if it is not; its size is measured then."""
        if self._file is not None:
            return self._file
        file = open(self._path, "ab")  # noqa: SIM115 (kept open across emits; closed in close())
        size = file.tell()
        if size:
            # A line cut short by a crash or a full disk ends here, so the next one is whole.
            with open(self._path, "rb") as reader:
                reader.seek(size - 1)
                if reader.read(1) != b"\n":
                    size += file.write(b"\n")
        self._file, self._size = file, size
        return file

    def _close_file(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()

    def _rotate(self) -> None:
        """Count the repeats, hand the full file to the archives and start a new one."""
        self._write_repeats()
        self._close_file()
        self._archives.archive(self._path)
        self._size = 0
        self._report_problems()


def _dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    """One JSON line, UTF-8; lone surrogates and Unicode line separators escaped."""
    text = json.dumps(
        value, ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=sort_keys
    )
    text = _SEPARATOR.sub(lambda found: _SEPARATORS[found[0]], text)
    return (text + "\n").encode("utf-8", "backslashreplace")


def _excerpt_data(text: str, limit: int) -> dict[str, Any]:
    cut = excerpt(text, limit)
    return {"excerpt": cut.head_and_tail, "length": cut.total_length, "sha256": cut.sha256}


def _short_kind(kind: Any) -> Any:
    """The event's kind, cut to a bounded size (it names the event in bounded lines)."""
    text = kind if isinstance(kind, str) else json.dumps(kind, sort_keys=True)
    return kind if len(text) <= _KIND_CHARS else excerpt(text, _KIND_CHARS).head_and_tail


def _kind_key(kind: Any) -> str:
    return json.dumps(kind, sort_keys=True)


@final
class FanoutSink:
    """An :class:`~envs.protocols.EventSink` that sends each event to several sinks, in order.

    Typically the console and the event log. Every sink gets the event even
    when an earlier one raises (a defect); the exception is raised after
    (several as an ``ExceptionGroup``).
    """

    def __init__(self, *sinks: EventSink) -> None:
        self.sinks: tuple[EventSink, ...] = sinks

    def emit(self, event: Mapping[str, Any]) -> None:
        errors: list[Exception] = []
        for sink in self.sinks:
            try:
                sink.emit(event)
            except Exception as error:
                errors.append(error)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup("event sinks failed", errors)

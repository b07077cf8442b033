"""A bounded collector of a process's output that keeps its head and its tail.

A command can print gigabytes; forkmerge keeps what a person reading the log
needs (how it started and how it ended) in memory bounded by the limit, and
says how much it dropped in between.
"""

from __future__ import annotations

from typing import Final, final

__all__ = ["OutputBuffer", "omission_marker"]

# Bytes of an incomplete UTF-8 sequence that can sit at a cut point: at most
# three continuation bytes follow a lead byte.
_MAX_CONTINUATION: Final = 3


def omission_marker(omitted: int) -> str:
    """The line put between the kept head and tail: ``\\n... [N bytes omitted] ...\\n``."""
    return f"\n... [{omitted} bytes omitted] ...\n"


@final
class OutputBuffer:
    """Collects a byte stream, keeping at most ``limit`` bytes: the first half and the last half.

    Think of a tape recorder that records the beginning of a speech, then
    keeps only the most recent minutes: memory never grows past ``limit``
    bytes whatever the stream's size, and :meth:`text` shows the head, a
    marker line saying how many bytes were dropped, then the tail. The head
    gets the odd byte of an odd limit.

    Example::

        buffer = OutputBuffer(10)
        buffer.feed(b"0123456789abcdef")
        buffer.text()  # '01234\\n... [6 bytes omitted] ...\\nbcdef'

    Decoding is UTF-8 with ``errors="replace"``; a multibyte character split
    by a cut point is dropped whole (and counted as omitted) rather than
    shown as a replacement character.

    Raises:
      ValueError: if ``limit`` is less than 1.
    """

    __slots__ = ("_head", "_head_limit", "_tail", "_tail_limit", "_total")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"`limit` must be at least 1 byte, got {limit}")
        self._head_limit = limit - limit // 2
        self._tail_limit = limit // 2
        self._head = bytearray()
        self._tail = bytearray()
        self._total = 0

    @property
    def limit(self) -> int:
        """The most bytes this buffer keeps."""
        return self._head_limit + self._tail_limit

    @property
    def total_bytes(self) -> int:
        """Every byte fed so far, kept or not."""
        return self._total

    @property
    def retained_bytes(self) -> int:
        """The bytes held in memory now (never more than :attr:`limit`)."""
        return len(self._head) + len(self._tail)

    @property
    def truncated(self) -> bool:
        """Whether some of the stream was dropped."""
        return self._total > self.limit

    def feed(self, data: bytes | bytearray) -> None:
        """Append ``data`` to the stream, dropping what falls between head and tail."""
        self._total += len(data)
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if not data or self._tail_limit == 0:
            return
        if len(data) >= self._tail_limit:
            self._tail[:] = data[-self._tail_limit :]
            return
        self._tail += data
        excess = len(self._tail) - self._tail_limit
        if excess > 0:
            # Deleting from the front of a bytearray is amortized O(1) in CPython.
            del self._tail[:excess]

    def kept(self) -> tuple[bytes, bytes]:
        """The raw head and tail bytes held (the tail is empty until the head is full)."""
        return bytes(self._head), bytes(self._tail)

    def text(self) -> str:
        """The stream decoded: all of it, or the head, the omission marker and the tail."""
        if not self.truncated:
            return (self._head + self._tail).decode("utf-8", errors="replace")
        head = _without_incomplete_end(bytes(self._head))
        tail = _without_continuation_start(bytes(self._tail))
        omitted = self._total - len(head) - len(tail)
        return (
            head.decode("utf-8", errors="replace")
            + omission_marker(omitted)
            + tail.decode("utf-8", errors="replace")
        )


def _is_continuation(byte: int) -> bool:
    return byte & 0xC0 == 0x80


def _sequence_length(lead: int) -> int:
    """How many bytes the UTF-8 sequence starting with ``lead`` has (1 for invalid leads)."""
    if 0xC0 <= lead < 0xE0:
        return 2
    if 0xE0 <= lead < 0xF0:
        return 3
    if 0xF0 <= lead < 0xF8:
        return 4
    return 1


def _without_incomplete_end(data: bytes) -> bytes:
    """``data`` without a trailing multibyte sequence the head cut in the middle."""
    for back in range(1, min(len(data), _MAX_CONTINUATION + 1) + 1):
        byte = data[-back]
        if _is_continuation(byte):
            continue
        # `byte` leads the last sequence; it is complete when `back` covers its length.
        return data[:-back] if _sequence_length(byte) > back else data
    return data


def _without_continuation_start(data: bytes) -> bytes:
    """``data`` without the continuation bytes of a sequence the tail cut in the middle."""
    start = 0
    while start < min(len(data), _MAX_CONTINUATION) and _is_continuation(data[start]):
        start += 1
    return data[start:]

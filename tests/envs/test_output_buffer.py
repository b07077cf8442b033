"""OutputBuffer: bounded memory, head and tail kept, chunking-independent, safe decoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envs.output_buffer import OutputBuffer, omission_marker


def fed(limit: int, *chunks: bytes) -> OutputBuffer:
    buffer = OutputBuffer(limit)
    for chunk in chunks:
        buffer.feed(chunk)
    return buffer


def test_small_stream_is_kept_whole() -> None:
    buffer = fed(10, b"abc", b"", b"defg")
    assert buffer.text() == "abcdefg"
    assert not buffer.truncated
    assert buffer.total_bytes == 7


def test_stream_of_exactly_the_limit_is_not_truncated() -> None:
    buffer = fed(10, b"0123456789")
    assert buffer.text() == "0123456789"
    assert not buffer.truncated


def test_long_stream_keeps_head_and_tail_with_marker() -> None:
    buffer = fed(10, b"0123456789abcdef")
    assert buffer.truncated
    assert buffer.kept() == (b"01234", b"bcdef")
    assert buffer.text() == "01234\n... [6 bytes omitted] ...\nbcdef"


def test_odd_limit_gives_the_head_the_extra_byte() -> None:
    assert fed(5, b"abcdefgh").kept() == (b"abc", b"gh")


def test_limit_of_one_keeps_only_the_first_byte() -> None:
    buffer = fed(1, b"xyz")
    assert buffer.text() == "x" + omission_marker(2)


def test_marker_line() -> None:
    assert omission_marker(12345) == "\n... [12345 bytes omitted] ...\n"


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="`limit` must be at least 1 byte, got 0"):
        OutputBuffer(0)


def test_multibyte_characters_cut_at_both_ends_are_dropped_whole() -> None:
    # "é" is two bytes (C3 A9). A limit of 6 keeps C3 A9 C3 at the head and A9 C3 A9 at
    # the tail: each end holds half a character, which is dropped and counted as omitted.
    buffer = fed(6, "é".encode() * 20)
    assert buffer.kept() == (b"\xc3\xa9\xc3", b"\xa9\xc3\xa9")
    assert buffer.text() == "é" + omission_marker(36) + "é"


def test_four_byte_characters_split_anywhere_never_crash() -> None:
    data = "a😀b😀c".encode() * 50
    for limit in range(1, 40):
        text = fed(limit, data).text()
        assert "\ufffd" not in text


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert fed(100, b"ok \xff\xfe end").text() == "ok \ufffd\ufffd end"


def test_memory_stays_bounded_over_many_chunks() -> None:
    buffer = OutputBuffer(1000)
    for index in range(10_000):
        buffer.feed(bytes([65 + index % 26]) * 37)
        assert buffer.retained_bytes <= 1000
    assert buffer.total_bytes == 370_000
    assert buffer.text().count("\n... [369000 bytes omitted] ...\n") == 1


chunkings = st.lists(st.binary(max_size=64), max_size=30)


@given(chunks=chunkings, limit=st.integers(min_value=1, max_value=100))
def test_keeps_exactly_the_first_and_last_halves(chunks: list[bytes], limit: int) -> None:
    data = b"".join(chunks)
    buffer = fed(limit, *chunks)
    head, tail = buffer.kept()
    assert buffer.total_bytes == len(data)
    assert buffer.retained_bytes <= limit
    assert buffer.truncated == (len(data) > limit)
    if len(data) <= limit:
        assert head + tail == data
        assert buffer.text() == data.decode("utf-8", errors="replace")
    else:
        head_size = limit - limit // 2
        assert head == data[:head_size]
        assert tail == data[len(data) - limit // 2 :]
        assert "bytes omitted] ..." in buffer.text()


@given(text=st.text(max_size=200), limit=st.integers(min_value=1, max_value=120), cut=st.data())
def test_chunking_does_not_change_the_result(text: str, limit: int, cut: st.DataObject) -> None:
    data = text.encode()
    split = cut.draw(st.integers(min_value=0, max_value=len(data)))
    whole = fed(limit, data)
    parts = fed(limit, data[:split], data[split:])
    assert whole.kept() == parts.kept()
    assert whole.text() == parts.text()


@given(text=st.text(max_size=200), limit=st.integers(min_value=1, max_value=120))
def test_valid_utf8_never_gets_replacement_characters(text: str, limit: int) -> None:
    decoded = fed(limit, text.encode()).text()
    assert ("\ufffd" in decoded) == ("\ufffd" in text)
    if len(text.encode()) > limit:
        head, marker_and_tail = decoded.split("\n... [", 1)
        omitted_text, tail = marker_and_tail.split(" bytes omitted] ...\n", 1)
        assert text.startswith(head)
        assert text.endswith(tail)
        assert len(head.encode()) + int(omitted_text) + len(tail.encode()) == len(text.encode())

"""Field paths into JSON-like values: ``item.location.file``, ``tags[0]``, ``a["b c"]``.

A field path is the shared addressing language of filters, sort keys,
``distinct`` and interpolation. It is parsed once into a tuple of segments
(``str`` for a mapping key, ``int`` for a list index) and resolved against any
JSON value. A segment that does not exist resolves to :data:`MISSING`, never
to an exception: callers decide whether a missing field is null (filters,
sorting) or an error (interpolation of a dotted reference).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, final

import attrs

__all__ = ["MISSING", "FieldPath", "FieldPathError", "parse_field_path", "resolve"]


@final
class _Missing:
    """The one value standing for "this field does not exist"."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()

Segment = str | int


@attrs.frozen
class FieldPath:
    """A parsed field path: mapping keys (``str``) and list indexes (``int``)."""

    segments: tuple[Segment, ...]
    text: str

    def __str__(self) -> str:
        return self.text


@attrs.frozen
class FieldPathError(Exception):
    """A field path that cannot be parsed; ``column`` is 1-based within ``text``."""

    text: str
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.message} at column {self.column} in field path {self.text!r}"


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_QUOTED_KEY = re.compile(r"""\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]""")


def parse_field_path(text: str) -> FieldPath:
    """Parse ``a.b[0]["c d"]`` into a :class:`FieldPath`.

    Raises :class:`FieldPathError` (with the column) when ``text`` is not a
    field path: empty, a dangling dot, an unclosed bracket, a bad character.
    """
    segments: list[Segment] = []
    pos = 0
    expect_name = True
    while pos < len(text):
        if expect_name:
            match = _IDENT.match(text, pos)
            if match is None:
                raise FieldPathError(text, pos + 1, "expected a field name")
            segments.append(match.group(0))
            pos = match.end()
            expect_name = False
            continue
        char = text[pos]
        if char == ".":
            pos += 1
            expect_name = True
            if pos == len(text):
                raise FieldPathError(text, pos + 1, "expected a field name after '.'")
            continue
        if char == "[":
            index = _INDEX.match(text, pos)
            if index is not None:
                segments.append(int(index.group(1)))
                pos = index.end()
                continue
            quoted = _QUOTED_KEY.match(text, pos)
            if quoted is not None:
                raw = quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
                segments.append(re.sub(r"\\(.)", r"\1", raw))
                pos = quoted.end()
                continue
            raise FieldPathError(text, pos + 1, "expected an index like [0] or a key like ['k']")
        raise FieldPathError(text, pos + 1, f"unexpected character {char!r}")
    if not segments:
        raise FieldPathError(text, 1, "expected a field name")
    return FieldPath(tuple(segments), text)


def resolve(value: Any, path: FieldPath | Sequence[Segment]) -> Any:
    """Follow ``path`` into ``value``; :data:`MISSING` where a segment does not exist.

    A string key applies to mappings only, an int index to lists and tuples
    only (negative indexes count from the end); anything else is missing.
    """
    segments = path.segments if isinstance(path, FieldPath) else path
    current = value
    for segment in segments:
        if isinstance(segment, str):
            if isinstance(current, Mapping) and segment in current:
                current = current[segment]
            else:
                return MISSING
        elif isinstance(current, list | tuple) and -len(current) <= segment < len(current):
            current = current[segment]
        else:
            return MISSING
    return current

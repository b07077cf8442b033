"""The toolkit of the workflow schema walk: typed readers that record problems instead of raising.

A :class:`ParseContext` collects every :class:`~pure.workflow_error.Problem`
of one parse and the location of every key path it visits. Its readers take a
:class:`~pure.yaml_source.YamlValue` and its key path and return the typed
value, or ``None`` after recording what was expected and what was found, so
the walk always goes on and reports all mistakes at once.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Collection, Mapping
from typing import Final, TypeVar

from pure.workflow_error import Location, Problem
from pure.yaml_source import (
    YamlEntry,
    YamlList,
    YamlMap,
    YamlScalar,
    YamlValue,
    child_path,
    describe,
)

__all__ = ["NAME_PATTERN", "VARIABLE_PATTERN", "ParseContext"]

T = TypeVar("T")
D = TypeVar("D")

NAME_PATTERN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""An environment variable name."""

VARIABLE_PATTERN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
"""A variable a step can capture into: names joined by dots (``shell.output``)."""

_UNITS: Final = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
}
_DURATION_PART: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)")


def _parse_duration(text: str) -> float | None:
    """Seconds in ``"300"``, ``"300s"``, ``"5m"``, ``"1h 30m"``, ``"500ms"``; else ``None``."""
    stripped = text.strip().lower()
    position, total, parts, bare = 0, 0.0, 0, False
    while position < len(stripped):
        match = _DURATION_PART.match(stripped, position)
        if match is None or (match.group(2) and match.group(2) not in _UNITS):
            return None
        total += float(match.group(1)) * _UNITS.get(match.group(2), 1.0)
        bare = bare or not match.group(2)
        parts += 1
        position = match.end()
    if parts == 0 or (bare and parts > 1):
        return None
    return total


class ParseContext:
    """Problems and locations of one parse, and readers for typed values."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self.locations: dict[str, Location] = {}

    # --- recording --------------------------------------------------------------------------

    def problem(
        self, path: str, location: Location, message: str, *, expected: str, found: str
    ) -> None:
        """Record one problem."""
        self.problems.append(
            Problem(path, location.line, location.column, expected, found, message, self.source)
        )

    def mismatch(self, value: YamlValue, path: str, expected: str) -> None:
        """Record that ``value`` is not what was ``expected``."""
        found = describe(value)
        self.problem(
            path,
            value.location,
            f"expected {expected}, found {found}",
            expected=expected,
            found=found,
        )

    def checkpoint(self) -> int:
        """A marker to ask later whether problems were found since (:meth:`clean_since`)."""
        return len(self.problems)

    def clean_since(self, checkpoint: int) -> bool:
        """Whether no problem was recorded since ``checkpoint``."""
        return len(self.problems) == checkpoint

    # --- mappings ---------------------------------------------------------------------------

    def variables(
        self,
        mapping: YamlMap,
        path: str,
        read: Callable[[YamlValue, str], T | None],
        skip: Collection[str] = (),
    ) -> dict[str, T] | None:
        """The entries of an ``env``-like mapping: variable names, each value ``read``.

        A key that is no variable name is a problem naming it; ``skip`` keys
        are left out. ``None`` when anything in it was a problem.
        """
        start = self.checkpoint()
        result: dict[str, T] = {}
        for entry in mapping.entries:
            if entry.key in skip:
                continue
            entry_path = child_path(path, entry.key)
            self.locations[entry_path] = entry.key_location
            if NAME_PATTERN.fullmatch(entry.key) is None:
                self.problem(
                    entry_path,
                    entry.key_location,
                    f"expected an environment variable name, found {entry.key!r}",
                    expected="a name like PROJECT_DIR",
                    found=repr(entry.key),
                )
                continue
            value = read(entry.value, entry_path)
            if value is not None:
                result[entry.key] = value
        return result if self.clean_since(start) else None

    def mapping(self, value: YamlValue, path: str, expected: str = "a mapping") -> YamlMap | None:
        """``value`` as a mapping, or ``None`` after a problem."""
        if isinstance(value, YamlMap):
            return value
        self.mismatch(value, path, expected)
        return None

    def check_keys(
        self,
        mapping: YamlMap,
        path: str,
        known: Collection[str],
        unsupported: Mapping[str, str] | None = None,
        *,
        what: str = "",
    ) -> None:
        """Report unknown and unsupported keys; remember where every key is.

        ``unsupported`` maps a Prodigy key forkmerge leaves out to a description
        of the feature; ``what`` says whose key it is in messages ("step").
        """
        unsupported = unsupported or {}
        for entry in mapping.entries:
            key_path = child_path(path, entry.key)
            self.locations[key_path] = entry.key_location
            if entry.key in known:
                continue
            if entry.key in unsupported:
                kind = f"{what} key" if what else "key"
                self.problem(
                    key_path,
                    entry.key_location,
                    f"unsupported: {kind} {entry.key!r} ({unsupported[entry.key]})"
                    " is not supported by forkmerge",
                    expected="a supported key",
                    found=repr(entry.key),
                )
                continue
            self._unknown_key(entry, key_path, path, known)

    def _unknown_key(
        self, entry: YamlEntry, key_path: str, path: str, known: Collection[str]
    ) -> None:
        choices = sorted(known)
        close = difflib.get_close_matches(entry.key, choices, n=1, cutoff=0.6)
        where = f" at {path}" if path else ""
        message = f"unknown key {entry.key!r}{where} (line {entry.key_location.line})"
        if close:
            message += f"; did you mean {close[0]!r}?"
        self.problem(
            key_path,
            entry.key_location,
            message,
            expected="one of: " + ", ".join(choices),
            found=repr(entry.key),
        )

    def require(self, mapping: YamlMap, key: str, path: str) -> YamlEntry | None:
        """The entry for a required ``key``, or ``None`` after a "missing key" problem."""
        entry = mapping.get(key)
        if entry is None or _is_null(entry.value):
            self.problem(
                child_path(path, key),
                mapping.location,
                f"missing required key {key!r}",
                expected=f"a key {key!r}",
                found="no such key" if entry is None else "null",
            )
            return None
        return entry

    def optional(
        self,
        mapping: YamlMap,
        key: str,
        path: str,
        reader: Callable[[YamlValue, str], T | None],
        default: D,
    ) -> T | D:
        """Read an optional ``key`` with ``reader``; ``default`` when absent, null or invalid."""
        entry = mapping.get(key)
        if entry is None or _is_null(entry.value):
            return default
        result = reader(entry.value, child_path(path, key))
        return default if result is None else result

    # --- scalars ----------------------------------------------------------------------------

    def string(self, value: YamlValue, path: str) -> str | None:
        """A string (quote numbers and booleans to make them strings)."""
        if isinstance(value, YamlScalar) and isinstance(value.value, str):
            return value.value
        self.mismatch(value, path, "a string")
        return None

    def text(self, value: YamlValue, path: str) -> str | None:
        """Any non-null scalar, as written: ``3`` and ``true`` are the texts ``"3"``, ``"true"``."""
        if isinstance(value, YamlScalar) and value.value is not None:
            return value.text
        self.mismatch(value, path, "a string")
        return None

    def non_empty_string(self, value: YamlValue, path: str) -> str | None:
        """A string with something other than whitespace in it."""
        result = self.string(value, path)
        if result is not None and not result.strip():
            self.problem(
                path,
                value.location,
                "expected a non-empty string, found an empty one",
                expected="a non-empty string",
                found="''",
            )
            return None
        return result

    def boolean(self, value: YamlValue, path: str) -> bool | None:
        """``true`` or ``false``."""
        if isinstance(value, YamlScalar) and isinstance(value.value, bool):
            return value.value
        self.mismatch(value, path, "true or false")
        return None

    def integer(self, value: YamlValue, path: str, minimum: int = 0) -> int | None:
        """A whole number of at least ``minimum``."""
        expected = f"an integer >= {minimum}"
        if isinstance(value, YamlScalar) and type(value.value) is int:
            if value.value >= minimum:
                return value.value
            self.problem(
                path,
                value.location,
                f"expected {expected}, found {value.value}",
                expected=expected,
                found=str(value.value),
            )
            return None
        self.mismatch(value, path, expected)
        return None

    def positive_integer(self, value: YamlValue, path: str) -> int | None:
        """A whole number of at least 1."""
        return self.integer(value, path, minimum=1)

    def fraction(self, value: YamlValue, path: str) -> float | None:
        """A number from 0 to 1."""
        number = self._finite(value)
        if number is not None and 0.0 <= number <= 1.0:
            return number
        self.mismatch(value, path, "a number from 0 to 1")
        return None

    def positive_number(self, value: YamlValue, path: str) -> float | None:
        """A number greater than 0."""
        number = self._finite(value)
        if number is not None and number > 0:
            return number
        self.mismatch(value, path, "a number > 0")
        return None

    def choice(
        self,
        value: YamlValue,
        path: str,
        choices: Collection[str],
        aliases: Mapping[str, str] | None = None,
    ) -> str | None:
        """One of ``choices`` (or an alias of one, such as Prodigy's ``PerAgent``)."""
        if isinstance(value, YamlScalar) and isinstance(value.value, str):
            if value.value in choices:
                return value.value
            if aliases and value.value in aliases:
                return aliases[value.value]
        self.mismatch(value, path, "one of: " + ", ".join(choices))
        return None

    def duration(self, value: YamlValue, path: str) -> float | None:
        """Seconds > 0: a number, or a text like ``"300"``, ``"90s"``, ``"5m"``, ``"1h 30m"``."""
        return self._duration(value, path, allow_zero=False)

    def delay(self, value: YamlValue, path: str) -> float | None:
        """Seconds >= 0, in the same forms as :meth:`duration`."""
        return self._duration(value, path, allow_zero=True)

    def _duration(self, value: YamlValue, path: str, *, allow_zero: bool) -> float | None:
        seconds = self._finite(value)
        if isinstance(value, YamlScalar) and isinstance(value.value, str):
            if value.value.lstrip().startswith("$"):
                self.problem(
                    path,
                    value.location,
                    f"unsupported: environment variable reference {value.value!r} in a duration"
                    " is not supported by forkmerge; give the seconds",
                    expected="a number of seconds",
                    found=repr(value.value),
                )
                return None
            seconds = _parse_duration(value.value)
        if seconds is not None and (seconds > 0 or (allow_zero and seconds == 0)):
            return seconds
        bound = ">= 0" if allow_zero else "> 0"
        self.mismatch(value, path, f"a duration {bound} (seconds, or a text like '90s', '5m')")
        return None

    @staticmethod
    def _finite(value: YamlValue) -> float | None:
        if (
            isinstance(value, YamlScalar)
            and isinstance(value.value, int | float)
            and not isinstance(value.value, bool)
            and math.isfinite(value.value)
        ):
            return float(value.value)
        return None

    # --- names and lists --------------------------------------------------------------------

    def name(self, value: YamlValue, path: str, pattern: re.Pattern[str], what: str) -> str | None:
        """A string matching ``pattern`` entirely; ``what`` describes it in messages."""
        result = self.string(value, path)
        if result is not None and pattern.fullmatch(result) is None:
            self.problem(
                path,
                value.location,
                f"expected {what}, found {result!r}",
                expected=what,
                found=repr(result),
            )
            return None
        return result

    def string_list(self, value: YamlValue, path: str) -> tuple[str, ...] | None:
        """A list of non-empty strings (possibly empty)."""
        if not isinstance(value, YamlList):
            self.mismatch(value, path, "a list of strings")
            return None
        start = self.checkpoint()
        items = [self.non_empty_string(item, f"{path}[{i}]") for i, item in enumerate(value.items)]
        if not self.clean_since(start):
            return None
        return tuple(item for item in items if item is not None)


def _is_null(value: YamlValue) -> bool:
    return isinstance(value, YamlScalar) and value.value is None

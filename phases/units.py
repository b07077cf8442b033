"""Durations, sizes and counts on the command line: parsed from people, printed for them."""

from __future__ import annotations

import re

from returns.result import Failure, Result, Success

__all__ = ["count_of", "format_age", "format_size", "parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> Result[float, str]:
    """Seconds in a duration such as ``30m``, ``2h``, ``3d``, ``1w`` or ``1d12h``.

    Units: ``s``, ``m`` (minutes), ``h``, ``d``, ``w``; every number needs
    one. The failure names what was expected and what was found.
    """
    compact = text.strip()
    if not _DURATION.fullmatch(compact):
        return Failure(
            "expected a duration such as 30m, 2h, 3d or 1w (a number followed by "
            f"s, m, h, d or w), found {text!r}"
        )
    return Success(
        float(sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(compact)))
    )


def format_size(size: int) -> str:
    """``size`` bytes for people: ``512 B``, ``4.0 KiB``, ``1.2 GiB``."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def format_age(seconds: float) -> str:
    """An age for people, in its largest unit and the next one: ``45s``, ``3h 5m``, ``2w 1d``."""
    left = int(seconds)
    units = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    for index, (unit, size) in enumerate(units):
        if left >= size or unit == "s":
            text = f"{left // size}{unit}"
            if unit != "s":
                next_unit, next_size = units[index + 1]
                remainder = left % size // next_size
                if remainder:
                    text += f" {remainder}{next_unit}"
            return text
    raise AssertionError("unreachable: the last unit always matches")


def count_of(number: int, noun: str) -> str:
    """``1 worktree``, ``2 worktrees``, ``3 branches``."""
    plural = noun + ("es" if noun.endswith("ch") else "s")
    return f"{number} {noun if number == 1 else plural}"

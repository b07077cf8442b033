"""The error of every small expression language in ``pure/`` (filters, sort keys)."""

from __future__ import annotations

import attrs

__all__ = ["ExpressionError"]


@attrs.frozen
class ExpressionError(Exception):
    """An expression that cannot be parsed.

    ``column`` is 1-based within ``text``; ``message`` says what was expected
    and what was found there.
    """

    text: str
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.message} at column {self.column} in {self.text!r}"

"""The data of shell quoting: where a reference sits (:class:`QuotingContext`) and heredocs.

Produced by :mod:`pure.shell_lexer`, consumed by the escaping rules of
:mod:`pure.shell_quoting` (which re-exports these names).
"""

from __future__ import annotations

from enum import StrEnum

import attrs

__all__ = ["Heredoc", "QuoteKind", "QuotingContext", "ShellScan"]


class QuoteKind(StrEnum):
    """Where in the shell's syntax a reference sits."""

    UNQUOTED = "unquoted"
    SINGLE = "single-quoted"
    DOUBLE = "double-quoted"
    HEREDOC = "heredoc body"
    LITERAL_HEREDOC = "literal heredoc body"
    ARITHMETIC = "arithmetic"
    COMMENT = "comment"
    UNSAFE = "unsafe"


@attrs.frozen
class Heredoc:
    """A heredoc body of the template: ``[body_start, body_end)`` in template offsets.

    ``backticks`` is how many backtick levels enclose the heredoc: its lines
    meet the delimiter test after that many levels of unescaping.
    """

    delimiter: str
    strip_tabs: bool
    quoted: bool
    body_start: int
    body_end: int
    backticks: int


@attrs.frozen
class QuotingContext:
    """The context of one reference: its kind, enclosing backticks and heredocs.

    ``problem`` says why no escaping is safe there; it is set exactly when
    ``kind`` is :attr:`QuoteKind.UNSAFE`.
    """

    kind: QuoteKind
    backticks: int = 0
    heredocs: tuple[Heredoc, ...] = ()
    problem: str = ""


@attrs.frozen
class ShellScan:
    """One context per span, in span order, and every heredoc of the template."""

    contexts: tuple[QuotingContext, ...]
    heredocs: tuple[Heredoc, ...]

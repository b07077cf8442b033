"""A reader of POSIX sh syntax that finds the quoting context of given spans of a template.

It reads only as much of the shell language as decides quoting: quotes,
backslashes, ``$(...)``, ``$((...))``, ``${...}``, backticks (whose bodies
are unescaped one level and read again as a fresh command), heredocs,
comments, and ``case`` patterns (whose ``)`` would otherwise seem to close a
``$(``). Spans (the references to be replaced) are opaque parts of a word.
The rules each context implies are in :mod:`pure.shell_quoting`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import attrs

from pure.shell_context import Heredoc, QuoteKind, QuotingContext, ShellScan

__all__ = ["scan_quoting"]


class _Unit(NamedTuple):
    """One character of the (possibly unescaped) input, or one whole span (``span >= 0``)."""

    ch: str
    pos: int
    end: int
    span: int


_BLANK = " \t"
_WORD_END = " \t\n;&|()<>"
_DELIMITER_SPECIAL = _WORD_END + "'\"\\"
_SPECIAL_PARAMETERS = "$@*#?-!0123456789"
_COMMAND_KEYWORDS = frozenset({"if", "then", "else", "elif", "while", "until", "do", "{", "}", "!"})
_IN_PARAMETER = (
    "it is inside a shell parameter expansion ${...}; put it in a shell variable first, "
    "or use a forkmerge default (${name:-default})"
)
_BACKSLASH_QUOTE_IN_HEREDOC = 'shells disagree about \\" inside `...` in a heredoc'
_ESCAPED = "a backslash before it escapes its '$'"


@attrs.define
class _Scan:
    """The results every lexer of one template writes into."""

    contexts: dict[int, QuotingContext] = attrs.Factory(dict)
    heredocs: list[Heredoc] = attrs.Factory(list)
    doubt_from: int | None = None
    doubt: str = ""

    def distrust_from(self, pos: int, reason: str) -> None:
        """From ``pos`` on the reading may differ from the shell's: every later span is unsafe."""
        if self.doubt_from is None or pos < self.doubt_from:
            self.doubt_from, self.doubt = pos, reason


@attrs.define
class _Words:
    """Word and ``case`` tracking of one unquoted frame (for the ``)`` of case patterns)."""

    word: str = ""
    plain: bool = True
    in_word: bool = False
    command_start: bool = True
    cases: list[str] = attrs.Factory(list)

    def add(self, char: str) -> None:
        self.word += char
        self.in_word = True

    def part(self) -> None:
        self.in_word = True
        self.plain = False

    def top(self) -> str:
        return self.cases[-1] if self.cases else ""

    def end(self) -> None:
        if self.in_word:
            self._finish(self.word if self.plain else None)
        self.word, self.plain, self.in_word = "", True, False

    def _finish(self, keyword: str | None) -> None:
        top = self.top()
        if top == "subject":
            self.cases[-1] = "in"
        elif top == "in":
            if keyword == "in":
                self.cases[-1] = "pattern"
            return
        elif top == "pattern":
            if keyword == "esac":
                self.cases.pop()
        elif self.command_start and keyword == "case":
            self.cases.append("subject")
        elif self.command_start and keyword == "esac" and top == "body":
            self.cases.pop()
        elif self.command_start and keyword in _COMMAND_KEYWORDS:
            return
        self.command_start = False


class _Lexer:
    """Reads one list of units; backtick bodies and heredoc bodies get a lexer of their own."""

    def __init__(
        self,
        units: list[_Unit],
        scan: _Scan,
        backticks: int,
        heredocs: tuple[Heredoc, ...],
        in_parameter: int,
    ) -> None:
        self.units = units
        self.i = 0
        self.scan = scan
        self.backticks = backticks
        self.heredocs = heredocs
        self.in_parameter = in_parameter
        self.pending: list[tuple[str, bool, bool]] = []

    # -- helpers -----------------------------------------------------------------------------

    def char(self, ahead: int = 0) -> str:
        """The character ``ahead`` units on; "" past the end or on a span."""
        index = self.i + ahead
        if index < len(self.units) and self.units[index].span < 0:
            return self.units[index].ch
        return ""

    def end_pos(self) -> int:
        return self.units[-1].end if self.units else 0

    def record(self, unit: _Unit, kind: QuoteKind, problem: str = "") -> None:
        if self.in_parameter and kind is not QuoteKind.UNSAFE:
            kind, problem = QuoteKind.UNSAFE, _IN_PARAMETER
        self.scan.contexts[unit.span] = QuotingContext(kind, self.backticks, self.heredocs, problem)

    def unclosed(self, what: str, pos: int) -> None:
        self.scan.distrust_from(pos, f"the {what} at column {pos + 1} of the template never closes")

    def escape_pair(self, escapable: str | None) -> None:
        """At a backslash: skip it and what it escapes (``escapable=None``: anything)."""
        following = self.units[self.i + 1] if self.i + 1 < len(self.units) else None
        if following is not None and following.span >= 0:
            self.record(following, QuoteKind.UNSAFE, _ESCAPED)
            self.i += 2
        elif following is not None and (escapable is None or following.ch in escapable):
            self.i += 2
        else:
            self.i += 1

    # -- frames --------------------------------------------------------------------------------

    def unquoted(self, closes_with_paren: bool) -> bool:
        """A command list (whole script, backtick body, or ``$(`` body); True if ``)`` closed it."""
        words = _Words()
        depth = 0
        while self.i < len(self.units):
            unit = self.units[self.i]
            if unit.span >= 0:
                self.record(unit, QuoteKind.UNQUOTED)
                words.part()
                self.i += 1
                continue
            char = unit.ch
            if char in _WORD_END:
                words.end()
                if char == ")" and words.top() != "pattern" and depth == 0 and closes_with_paren:
                    self.i += 1
                    return True
                depth = self.operator(char, words, depth)
            elif char == "#" and not words.in_word:
                self.comment()
            elif char == "\\":
                if self.char(1) != "\n":
                    words.part()
                self.escape_pair(None)
            elif char in "'\"`$":
                words.part()
                self.quote_or_expansion(char, in_double=False)
            else:
                words.add(char)
                self.i += 1
        return False

    def operator(self, char: str, words: _Words, depth: int) -> int:
        """An unquoted blank or operator character; returns the new ``(`` depth."""
        top = words.top()
        self.i += 1
        if char == "\n":
            words.command_start = True
            if self.pending:
                self.read_heredocs()
        elif char == ";":
            if self.char() == ";" and top == "body":
                words.cases[-1] = "pattern"
                self.i += 1
            else:
                words.command_start = True
        elif char in "&|" and top != "pattern":
            words.command_start = True
        elif char == "(":
            if top != "pattern":
                depth += 1
                words.command_start = True
        elif char == ")":
            if top == "pattern":
                words.cases[-1] = "body"
                words.command_start = True
            elif depth:
                depth -= 1
        elif char == "<" and self.char() == "<":
            self.heredoc_operator()
        return depth

    def quote_or_expansion(self, char: str, in_double: bool, heredoc: bool = False) -> None:
        """At ``'``, ``"``, a backtick or ``$`` outside single quotes."""
        start = self.units[self.i].pos
        if char == "'":
            self.i += 1
            self.single(start)
        elif char == '"':
            self.i += 1
            self.double(start, heredoc=False)
        elif char == "`":
            self.backtick(in_double, heredoc)
        else:
            self.dollar(in_double)

    def dollar(self, in_double: bool) -> None:
        start = self.units[self.i].pos
        following = self.char(1)
        if following == "(" and self.char(2) == "(":
            self.i += 3
            self.arithmetic(start, in_double)
        elif following == "(":
            self.i += 2
            if not self.unquoted(closes_with_paren=True):
                self.unclosed("$(", start)
        elif following == "{":
            self.i += 2
            self.parameter(start, in_double)
        elif following in ("'", '"') and not in_double:
            self.scan.distrust_from(start, f"bash's ${following}...{following} quoting is not sh")
            self.i += 1
        elif following and following in _SPECIAL_PARAMETERS:
            self.i += 2
        else:
            self.i += 1

    def single(self, start: int) -> None:
        while self.i < len(self.units):
            unit = self.units[self.i]
            self.i += 1
            if unit.span >= 0:
                self.record(unit, QuoteKind.SINGLE)
            elif unit.ch == "'":
                return
        self.unclosed("'", start)

    def double(self, start: int, heredoc: bool) -> None:
        """A ``"..."`` string, or (``heredoc``) a whole heredoc body with an unquoted delimiter."""
        kind = QuoteKind.HEREDOC if heredoc else QuoteKind.DOUBLE
        escapable = "$`\\\n" if heredoc else '$`"\\\n'
        while self.i < len(self.units):
            unit = self.units[self.i]
            if unit.span >= 0:
                self.record(unit, kind)
                self.i += 1
            elif unit.ch == '"' and not heredoc:
                self.i += 1
                return
            elif unit.ch == "\\":
                self.escape_pair(escapable)
            elif unit.ch in "`$":
                self.quote_or_expansion(unit.ch, in_double=True, heredoc=heredoc)
            else:
                self.i += 1
        if not heredoc:
            self.unclosed('"', start)

    def parameter(self, start: int, in_double: bool) -> None:
        """The body of a shell ``${...}`` (not a forkmerge reference): nothing in it is safe."""
        self.in_parameter += 1
        while self.i < len(self.units):
            unit = self.units[self.i]
            if unit.span >= 0:
                self.record(unit, QuoteKind.UNSAFE, _IN_PARAMETER)
                self.i += 1
            elif unit.ch == "}":
                self.i += 1
                self.in_parameter -= 1
                return
            elif unit.ch == "\\":
                self.escape_pair(None)
            elif unit.ch == "'" and in_double:
                self.scan.distrust_from(unit.pos, 'shells disagree about \' inside "${...}"')
                self.i += 1
            elif unit.ch in "'\"`$":
                self.quote_or_expansion(unit.ch, in_double)
            else:
                self.i += 1
        self.in_parameter -= 1
        self.unclosed("${", start)

    def arithmetic(self, start: int, in_double: bool) -> None:
        depth = 0
        while self.i < len(self.units):
            unit = self.units[self.i]
            char = unit.ch
            if unit.span >= 0:
                self.record(unit, QuoteKind.ARITHMETIC)
            elif char == ")" and depth == 0 and self.char(1) == ")":
                self.i += 2
                return
            elif char == "(":
                depth += 1
            elif char == ")" and depth:
                depth -= 1
            elif char in "`$":
                self.quote_or_expansion(char, in_double)
                continue
            elif char == "\\":
                self.escape_pair(None)
                continue
            elif char in "'\"":
                self.scan.distrust_from(unit.pos, "quotes inside $((...)) are not portable")
            self.i += 1
        self.unclosed("$((", start)

    def backtick(self, in_double: bool, heredoc: bool = False) -> None:
        """A backquoted command: unescape its body one level and read it as a fresh script.

        Inside ``"..."`` a ``\\"`` in the body loses its backslash too; inside a
        heredoc body dash removes it and bash keeps it, so it is a doubt there.
        """
        start = self.units[self.i].pos
        self.i += 1
        escapable = '\\`$"' if in_double else "\\`$"
        body: list[_Unit] = []
        closed = False
        while self.i < len(self.units):
            unit = self.units[self.i]
            following = self.units[self.i + 1] if self.i + 1 < len(self.units) else None
            if unit.span < 0 and unit.ch == "`":
                self.i += 1
                closed = True
                break
            if unit.span < 0 and unit.ch == "\\" and following is not None:
                if following.span >= 0:
                    self.record(following, QuoteKind.UNSAFE, _ESCAPED)
                    self.i += 2
                    continue
                if heredoc and following.ch == '"':
                    self.scan.distrust_from(unit.pos, _BACKSLASH_QUOTE_IN_HEREDOC)
                if following.ch in escapable:
                    body.append(following)
                    self.i += 2
                    continue
            body.append(unit)
            self.i += 1
        if not closed:
            self.unclosed("`", start)
        inner = _Lexer(body, self.scan, self.backticks + 1, self.heredocs, self.in_parameter)
        inner.unquoted(closes_with_paren=False)

    def comment(self) -> None:
        while self.i < len(self.units) and self.char() != "\n":
            unit = self.units[self.i]
            if unit.span >= 0:
                self.record(unit, QuoteKind.COMMENT)
            self.i += 1

    # -- heredocs ------------------------------------------------------------------------------

    def heredoc_operator(self) -> None:
        """After the first ``<`` of ``<<``: read ``<<[-] word`` (``<<<`` is bash's here-string)."""
        start = self.units[self.i - 1].pos
        self.i += 1
        if self.char() == "<":
            self.i += 1
            return
        strip_tabs = self.char() == "-"
        if strip_tabs:
            self.i += 1
        while self.char() and self.char() in _BLANK:
            self.i += 1
        delimiter, quoted = self.heredoc_word()
        if not delimiter:
            self.scan.distrust_from(start, "a heredoc << needs a delimiter word")
            return
        self.pending.append((delimiter, strip_tabs, quoted))

    def heredoc_word(self) -> tuple[str, bool]:
        """The delimiter after ``<<`` with quotes removed, and whether any part was quoted."""
        text, quoted, quote, escaped = "", False, "", False
        while self.i < len(self.units):
            unit = self.units[self.i]
            if unit.span >= 0:
                self.record(unit, QuoteKind.UNSAFE, "it is in a heredoc delimiter word")
                text += "\0"
            elif escaped or (unit.ch != quote if quote else unit.ch not in _DELIMITER_SPECIAL):
                text += unit.ch
            elif quote:
                quote = ""
            elif unit.ch == "\\":
                quoted, escaped = True, True
                self.i += 1
                continue
            elif unit.ch in "'\"":
                quote, quoted = unit.ch, True
            else:
                break
            escaped = False
            self.i += 1
        return text, quoted

    def read_heredocs(self) -> None:
        """After the newline that ends a line with ``<<`` operators: read their bodies in turn."""
        pending, self.pending = self.pending, []
        for delimiter, strip_tabs, quoted in pending:
            first = self.i
            body_end = len(self.units)
            while self.i < len(self.units):
                line_end = self.i
                while line_end < len(self.units) and (
                    self.units[line_end].span >= 0 or self.units[line_end].ch != "\n"
                ):
                    line_end += 1
                line = self.units[self.i : line_end]
                text = "".join(u.ch if u.span < 0 else "\0" for u in line)
                if (text.lstrip("\t") if strip_tabs else text) == delimiter:
                    body_end = self.i
                    self.i = min(line_end + 1, len(self.units))
                    break
                self.i = line_end + 1
            self.i = min(self.i, len(self.units))
            body = self.units[first:body_end]
            heredoc = Heredoc(
                delimiter,
                strip_tabs,
                quoted,
                body[0].pos if body else self._pos_at(first),
                body[-1].end if body else self._pos_at(first),
                self.backticks,
            )
            self.scan.heredocs.append(heredoc)
            inner = _Lexer(
                body, self.scan, self.backticks, (*self.heredocs, heredoc), self.in_parameter
            )
            if quoted:
                for unit in body:
                    if unit.span >= 0:
                        inner.record(unit, QuoteKind.LITERAL_HEREDOC)
            else:
                inner.double(heredoc.body_start, heredoc=True)

    def _pos_at(self, index: int) -> int:
        return self.units[index].pos if index < len(self.units) else self.end_pos()


def scan_quoting(template: str, spans: Sequence[tuple[int, int]]) -> ShellScan:
    """The quoting context of each ``(start, end)`` span of ``template``, and its heredocs.

    Spans must be sorted and must not overlap; they are read as opaque
    parts of a word. A span read after something the shell may read
    differently, or after an opening that never closes, is ``UNSAFE``.
    """
    units: list[_Unit] = []
    pos = 0
    for index, (start, end) in enumerate(spans):
        units.extend(_Unit(template[p], p, p + 1, -1) for p in range(pos, start))
        units.append(_Unit("", start, end, index))
        pos = end
    units.extend(_Unit(template[p], p, p + 1, -1) for p in range(pos, len(template)))
    scan = _Scan()
    _Lexer(units, scan, 0, (), 0).unquoted(closes_with_paren=False)
    contexts = []
    for index, (start, _end) in enumerate(spans):
        context = scan.contexts[index]
        if scan.doubt_from is not None and start >= scan.doubt_from:
            context = QuotingContext(QuoteKind.UNSAFE, 0, (), scan.doubt)
        contexts.append(context)
    return ShellScan(tuple(contexts), tuple(scan.heredocs))

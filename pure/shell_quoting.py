"""The POSIX sh quoting context at each place a value is inserted, and escaping for each.

Shell interpolation is safe only if a value is escaped for the context it
lands in: a single-quoted word is right where the template has nothing around
the reference, wrong inside the template's own ``'...'`` (it would *close*
them) and wrong inside ``"..."`` (where ``'`` is literal and ``$`` is live).
:func:`quoting_contexts` reads a template the way ``sh`` does and reports, for
each reference span, one :class:`QuotingContext`; :func:`escape_for` turns a
value into text that the shell reads back as exactly that value there.

The rules, context by context (what the inserted text is):

* **unquoted** (also inside ``$(...)`` and backticks, which start fresh
  unquoted commands): one single-quoted word, ``'`` written as ``'\\''``;
  the empty value is ``''``.
* **inside '...'**: the value with each ``'`` as ``'\\''`` (close the quote,
  an escaped quote, reopen), so the text stays inside the template's quotes.
* **inside "..."**: ``\\``, ``"``, ``$`` and backtick get a backslash.
  Newlines need nothing. ``!`` needs nothing: ``sh -c`` has no history
  expansion (only interactive bash does).
* **heredoc body** with an unquoted delimiter (``<<EOF``): like ``"..."``
  except that ``"`` is an ordinary character there, so it is not escaped.
  A quoted delimiter (``<<'EOF'``) makes the body **literal**: the value goes
  in unchanged. In both, no line of the finished body may equal the
  delimiter (it would end the heredoc early and run the rest as commands):
  :func:`heredoc_problem` checks that; with ``<<-`` a value whose lines start
  with a tab is refused, since the shell would strip the tab. bash joins a
  backslash-newline while it reads an unquoted heredoc, even inside quotes
  nested in the body (``$(printf '%s' '...')``), so there such a backslash
  is written outside the quotes (``'\\\\'``); a value that cannot be
  written so is refused. (dash 0.5.12 has a bug of its own there: a
  non-ASCII byte right after a line's prefix of the delimiter is dropped.)
* **inside $((...))**: only an integer is accepted, inserted as it is.
* **inside backticks**: after escaping for the context inside them, each
  enclosing backtick level adds a backslash before ``\\``, ``$`` and
  backtick, which the shell removes when it reads the backquoted command.
* **comment** (``# ...`` at the start of a word): the reference is left as
  written; a comment is never run, and a value with a newline could end it.

Where no escaping is known to be safe the context is ``UNSAFE`` with the
reason: inside a shell parameter expansion such as ``${HOME:-...}``; after a
backslash that escapes the reference's ``$``; in a heredoc delimiter word;
after a construct shells read differently (bash's ``$'...'``, quotes inside
``$((...))``, ``'`` inside ``"${...}"``, ``\\"`` inside backticks inside a
heredoc); and after any quote, ``$(``,
``${`` or backtick that the template never closes. The scanner is POSIX sh
(dash); ``case`` patterns inside ``$(...)`` are recognised so their ``)`` do
not end the command substitution.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from returns.result import Failure, Result, Success

from pure.shell_context import Heredoc, QuoteKind, QuotingContext, ShellScan
from pure.shell_lexer import scan_quoting

__all__ = [
    "Heredoc",
    "QuoteKind",
    "QuotingContext",
    "ShellScan",
    "escape_for",
    "heredoc_problem",
    "quoting_contexts",
]


def quoting_contexts(template: str, spans: Sequence[tuple[int, int]]) -> ShellScan:
    """Read ``template`` as sh does; the quoting context of each ``(start, end)`` span.

    ``spans`` are the references to be replaced: sorted, not overlapping,
    inside the template; the scanner reads each as an opaque part of a word.
    Raises ``ValueError`` otherwise (a defect of the caller, not user input).
    Results are memoised: a map phase interpolates the same templates for
    every item.
    """
    previous_end = 0
    for start, end in spans:
        if not previous_end <= start < end <= len(template):
            raise ValueError(f"spans must be sorted, disjoint and inside the template: {spans}")
        previous_end = end
    return _scan(template, tuple((start, end) for start, end in spans))


@functools.lru_cache(maxsize=1024)
def _scan(template: str, spans: tuple[tuple[int, int], ...]) -> ShellScan:
    return scan_quoting(template, spans)


_DOUBLE_SPECIAL = re.compile(r'([\\"$`])')
_HEREDOC_SPECIAL = re.compile(r"([\\$`])")
_BACKTICK_ESCAPED = re.compile(r"\\([\\$`])")
_CONTINUATION = re.compile(r"(?<!\\)(?:\\\\)*\\\n")
_INTEGER = re.compile(r"-?[0-9]+")


def escape_for(value: str, context: QuotingContext) -> Result[str, str]:
    """Text that the shell reads back as exactly ``value`` in ``context``.

    A :class:`~returns.result.Failure` carries the reason when no text is
    safe there; the reason never contains the value (it may be a secret).
    """
    kind = context.kind
    if kind is QuoteKind.UNSAFE:
        return Failure(context.problem)
    if kind is QuoteKind.COMMENT:
        return Failure("it is inside a shell comment, where references are left as written")
    if kind is QuoteKind.ARITHMETIC and _INTEGER.fullmatch(value) is None:
        return Failure("inside $((...)) only an integer can be inserted, and the value is not one")
    if any(h.strip_tabs for h in context.heredocs) and (value.startswith("\t") or "\n\t" in value):
        return Failure("a line of the value starts with a tab, which <<- would strip")
    if kind is QuoteKind.UNQUOTED:
        text = "'" + value.replace("'", "'\\''") + "'"
    elif kind is QuoteKind.SINGLE:
        text = value.replace("'", "'\\''")
    elif kind is QuoteKind.DOUBLE:
        text = _DOUBLE_SPECIAL.sub(r"\\\1", value)
    elif kind is QuoteKind.HEREDOC:
        text = _HEREDOC_SPECIAL.sub(r"\\\1", value)
    else:  # LITERAL_HEREDOC and ARITHMETIC: nothing in the value is special there
        text = value
    in_unquoted_heredoc = [h for h in context.heredocs if not h.quoted]
    if in_unquoted_heredoc and kind in (QuoteKind.UNQUOTED, QuoteKind.SINGLE):
        # bash joins a backslash-newline while reading the heredoc, even inside quotes
        # nested in it: write that backslash outside the quotes, as an escaped one
        text = text.replace("\\\n", "'\\\\'\n")
    levels = [text]
    for _ in range(context.backticks):
        levels.append(_HEREDOC_SPECIAL.sub(r"\\\1", levels[-1]))
    for heredoc in in_unquoted_heredoc:
        if _CONTINUATION.search(levels[context.backticks - heredoc.backticks]):
            return Failure("the shell would join a backslash-newline of the value in the heredoc")
    return Success(levels[-1])


def heredoc_problem(heredoc: Heredoc, body: str) -> str | None:
    """Why the finished ``body`` text of ``heredoc`` would end it early, or ``None``.

    ``body`` is the template's ``[body_start, body_end)`` with the inserted
    texts in place. A line equal to the delimiter (after ``<<-`` tab
    stripping) would end the heredoc there and run what follows as commands.
    """
    text = body
    for _ in range(heredoc.backticks):
        text = _BACKTICK_ESCAPED.sub(r"\1", text)
    for line in text.split("\n"):
        candidate = line.lstrip("\t") if heredoc.strip_tabs else line
        if candidate == heredoc.delimiter:
            return f"a line of the inserted text would end the heredoc <<{heredoc.delimiter} early"
    return None

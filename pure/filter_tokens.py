"""Tokens of the filter and sort_by languages: strings, numbers, field paths, keywords, operators.

Strings are quoted with ``'`` or ``"``; inside them a backslash before the
closing quote character stands for that quote, and every other backslash is
kept as written, so regular expressions need no double escaping
(``path matches '\\.rs$'``). Numbers are JSON-like (``3``, ``-2.5``, ``1e3``).
A word is a keyword (``and or not in true false null``, any case) or else
the start of a field path, read whole (``item.tags[0]``, ``a['b c']``).
"""

from __future__ import annotations

import re
import sys
from typing import Any

import attrs

from pure.expression_error import ExpressionError
from pure.field_path import parse_field_path

__all__ = ["Token", "describe_token", "tokenize"]

_WHITESPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_PATH_REST = re.compile(
    r"""(?:\.[A-Za-z_][A-Za-z0-9_\-]*"""
    r"""|\[\s*(?:-?\d+|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\s*\])*"""
)
_OPERATORS = ("==", "!=", "<=", ">=", "&&", "||", "<", ">", "=", "!")
_PUNCTUATION = "()[],"
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})


@attrs.frozen
class Token:
    """One token: ``kind`` is string, number, path, keyword, operator, a punctuation mark, or end.

    ``value`` is the decoded string, the number, the parsed field path or the
    lower-cased keyword; ``column`` is 1-based.
    """

    kind: str
    text: str
    column: int
    value: Any = None


def _scan_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    chars: list[str] = []
    pos = start + 1
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            following = text[pos + 1]
            chars.append(following if following == quote else char + following)
            pos += 2
            continue
        if char == quote:
            return "".join(chars), pos + 1
        chars.append(char)
        pos += 1
    raise ExpressionError(
        text,
        start + 1,
        f"expected a closing {quote} for the string opened here, found end of expression",
    )


def _number_value(text: str, pos: int, number: re.Match[str]) -> int | float:
    literal = number.group(0)
    if number.group(1) is not None or number.group(2) is not None:
        return float(literal)
    try:
        return int(literal)
    except ValueError:
        # Python refuses to convert integers of thousands of digits.
        raise ExpressionError(
            text,
            pos + 1,
            f"expected an integer of at most {sys.get_int_max_str_digits()} digits, "
            f"found {len(literal.lstrip('-'))} digits",
        ) from None


def _scan_word(text: str, pos: int) -> tuple[Token, int]:
    identifier = _IDENTIFIER.match(text, pos)
    assert identifier is not None  # the caller saw a letter or '_'
    word = identifier.group(0)
    if word.lower() in _KEYWORDS:
        return Token("keyword", word, pos + 1, word.lower()), identifier.end()
    rest = _PATH_REST.match(text, identifier.end())
    assert rest is not None  # the pattern matches the empty string
    end = rest.end()
    path_text = text[pos:end]
    if end < len(text) and text[end] == ".":
        raise ExpressionError(
            text,
            end + 2,
            f"expected a field name after '{path_text}.', found {_char(text, end + 1)}",
        )
    if end < len(text) and text[end] == "[":
        raise ExpressionError(
            text,
            end + 1,
            f"expected an index like [0] or a key like ['k'] after '{path_text}', "
            f"found {text[end : end + 12]!r}",
        )
    return Token("path", path_text, pos + 1, parse_field_path(path_text)), end


def _char(text: str, pos: int) -> str:
    return f"{text[pos]!r}" if pos < len(text) else "end of expression"


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``end`` token; raises :class:`ExpressionError`."""
    tokens: list[Token] = []
    pos = 0
    while True:
        space = _WHITESPACE.match(text, pos)
        if space is not None:
            pos = space.end()
        if pos >= len(text):
            tokens.append(Token("end", "", len(text) + 1))
            return tokens
        char = text[pos]
        if char in "'\"":
            value, end = _scan_string(text, pos)
            tokens.append(Token("string", text[pos:end], pos + 1, value))
            pos = end
            continue
        number = _NUMBER.match(text, pos)
        if number is not None:
            literal = number.group(0)
            tokens.append(Token("number", literal, pos + 1, _number_value(text, pos, number)))
            pos = number.end()
            continue
        if char.isascii() and (char.isalpha() or char == "_"):
            token, pos = _scan_word(text, pos)
            tokens.append(token)
            continue
        if char in _PUNCTUATION:
            tokens.append(Token(char, char, pos + 1))
            pos += 1
            continue
        operator = next((op for op in _OPERATORS if text.startswith(op, pos)), None)
        if operator is not None:
            tokens.append(Token("operator", operator, pos + 1))
            pos += len(operator)
            continue
        if char in "&|":
            raise ExpressionError(text, pos + 1, f"expected '{char * 2}', found '{char}'")
        raise ExpressionError(
            text,
            pos + 1,
            f"expected a field, a literal, an operator or a parenthesis, found {char!r}",
        )


def describe_token(token: Token) -> str:
    """How an error message names ``token``: `the string 'x'`, `'=='`, `end of expression`."""
    if token.kind == "end":
        return "end of expression"
    if token.kind in ("string", "number"):
        return f"the {token.kind} {token.text}"
    return f"'{token.text}'"

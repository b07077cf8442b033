"""Tokenizer and recursive-descent parser of the filter expression language.

The grammar, loosest binding first (keywords are case-insensitive)::

    expression  := conjunction (('||' | 'OR') conjunction)*
    conjunction := negation (('&&' | 'AND') negation)*
    negation    := ('!' | 'NOT') negation | comparison
    comparison  := operand [comparator operand | ['NOT'] 'IN' operand
                            | ('matches' | 'contains' | 'starts_with' | 'ends_with') operand]
    comparator  := '==' | '=' | '!=' | '<' | '<=' | '>' | '>='
    operand     := string | number | 'true' | 'false' | 'null' | field path
                 | function '(' [expression (',' expression)*] ')'
                 | '[' [operand (',' operand)* [',']] ']' | '(' expression ')'

So ``!a == 1`` is ``!(a == 1)`` (as SQL's ``NOT``). Strings are quoted with
``'`` or ``"``; inside them a backslash before the closing quote character
stands for that quote, and every other backslash is kept as written, so
regular expressions need no double escaping (``path matches '\\.rs$'``).
Errors are :class:`~pure.expression_error.ExpressionError` with the 1-based
column of the offending token and what was expected there.
"""

from __future__ import annotations

import re
import sys
from typing import Any, Final

import attrs

from pure.expression_error import ExpressionError
from pure.field_path import parse_field_path
from pure.filter_ast import (
    FUNCTIONS,
    AllOf,
    AnyOf,
    ArrayOf,
    Call,
    Comparison,
    Field,
    Literal,
    Negation,
    Node,
    regex_problem,
)

__all__ = ["MAX_NESTING", "Token", "describe_token", "parse_expression", "tokenize"]

MAX_NESTING: Final = 64
"""Parentheses, arrays, calls and negations may nest this deep (it bounds recursion)."""

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
_COMPARATORS = {"==": "==", "=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_INFIX_FUNCTIONS = frozenset({"matches", "contains", "starts_with", "ends_with"})
_LITERAL_KEYWORDS: dict[str, bool | None] = {"true": True, "false": False, "null": None}


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


class _Parser:
    """The parser's cursor over the tokens of one expression."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0

    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.peek()
        self.pos += 1
        return token

    def fail(self, token: Token, message: str) -> ExpressionError:
        return ExpressionError(self.text, token.column, message)

    def enter(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(token, f"expected at most {MAX_NESTING} levels of nesting, found more")

    def is_word(self, token: Token, *words: str) -> bool:
        return token.kind == "keyword" and token.value in words

    def is_operator(self, token: Token, operator: str) -> bool:
        return token.kind == "operator" and token.text == operator

    def expect(self, kind: str, opened: Token) -> None:
        token = self.peek()
        if token.kind != kind:
            raise self.fail(
                token,
                f"expected '{kind}' to close the '{opened.text}' at column {opened.column}, "
                f"found {describe_token(token)}",
            )
        self.advance()

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.fail(self.peek(), "expected an expression, found end of expression")
        node = self.expression()
        token = self.peek()
        if token.kind == ")":
            raise self.fail(
                token, "expected an operator or end of expression, found ')' without '('"
            )
        if token.kind != "end":
            raise self.fail(
                token, f"expected an operator or end of expression, found {describe_token(token)}"
            )
        return node

    def expression(self) -> Node:
        operands = [self.conjunction()]
        while self.is_operator(self.peek(), "||") or self.is_word(self.peek(), "or"):
            self.advance()
            operands.append(self.conjunction())
        return operands[0] if len(operands) == 1 else AnyOf(tuple(operands))

    def conjunction(self) -> Node:
        operands = [self.negation()]
        while self.is_operator(self.peek(), "&&") or self.is_word(self.peek(), "and"):
            self.advance()
            operands.append(self.negation())
        return operands[0] if len(operands) == 1 else AllOf(tuple(operands))

    def negation(self) -> Node:
        token = self.peek()
        if self.is_operator(token, "!") or self.is_word(token, "not"):
            self.advance()
            self.enter(token)
            node = Negation(self.negation())
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> Node:
        left = self.operand()
        token = self.peek()
        if token.kind == "operator" and token.text in _COMPARATORS:
            self.advance()
            return Comparison(_COMPARATORS[token.text], left, self.operand())
        if self.is_word(token, "in"):
            self.advance()
            return Comparison("in", left, self.operand())
        if self.is_word(token, "not"):
            self.advance()
            following = self.peek()
            if not self.is_word(following, "in"):
                raise self.fail(
                    following, f"expected 'in' after 'not', found {describe_token(following)}"
                )
            self.advance()
            return Comparison("not in", left, self.operand())
        if token.kind == "path" and token.text.lower() in _INFIX_FUNCTIONS:
            self.advance()
            pattern = self.peek()
            call = Call(token.text.lower(), (left, self.operand()))
            self.check_pattern(call, pattern)
            return call
        return left

    def operand(self) -> Node:
        token = self.peek()
        if token.kind in ("string", "number"):
            self.advance()
            return Literal(token.value)
        if token.kind == "keyword" and token.value in _LITERAL_KEYWORDS:
            self.advance()
            return Literal(_LITERAL_KEYWORDS[token.value])
        if token.kind == "(":
            self.advance()
            self.enter(token)
            node = self.expression()
            self.expect(")", token)
            self.depth -= 1
            return node
        if token.kind == "[":
            return self.array()
        if token.kind == "path":
            if self.peek(1).kind == "(":
                return self.call()
            self.advance()
            return Field(token.value)
        raise self.fail(
            token,
            "expected a value (a field, a string, a number, true, false, null, "
            f"an array, a function call or '('), found {describe_token(token)}",
        )

    def array(self) -> Node:
        opened = self.advance()
        self.enter(opened)
        elements: list[Node] = []
        while self.peek().kind != "]":
            elements.append(self.operand())
            token = self.peek()
            if token.kind == ",":
                self.advance()
            elif token.kind != "]":
                raise self.fail(
                    token,
                    f"expected ',' or ']' in the array opened at column {opened.column}, "
                    f"found {describe_token(token)}",
                )
        self.advance()
        self.depth -= 1
        return ArrayOf(tuple(elements))

    def call(self) -> Node:
        name_token = self.advance()
        name = name_token.text.lower()
        if name not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            raise self.fail(name_token, f"expected a function ({known}), found '{name_token.text}'")
        opened = self.advance()
        self.enter(name_token)
        arguments: list[Node] = []
        starts: list[Token] = []
        while self.peek().kind != ")":
            starts.append(self.peek())
            arguments.append(self.expression())
            token = self.peek()
            if token.kind == ",":
                self.advance()
            elif token.kind != ")":
                raise self.fail(
                    token,
                    f"expected ',' or ')' in the call of {name} at column {opened.column}, "
                    f"found {describe_token(token)}",
                )
        self.advance()
        self.depth -= 1
        arities = FUNCTIONS[name].arities
        if len(arguments) not in arities:
            wanted = " or ".join(str(n) for n in arities)
            plural = "" if arities == (1,) else "s"
            raise self.fail(
                name_token,
                f"expected {wanted} argument{plural} for {name}, found {len(arguments)}",
            )
        call = Call(name, tuple(arguments))
        if name == "matches":
            self.check_pattern(call, starts[1])
        return call

    def check_pattern(self, call: Call, start: Token) -> None:
        """Reject a ``matches`` whose pattern is a literal that is no regular expression."""
        pattern = call.arguments[1]
        if call.function != "matches" or not isinstance(pattern, Literal):
            return
        if not isinstance(pattern.value, str):
            raise self.fail(
                start, f"expected a regular expression string, found {describe_token(start)}"
            )
        problem = regex_problem(pattern.value)
        if problem is not None:
            raise self.fail(start, f"expected a regular expression, found {start.text} ({problem})")


def parse_expression(text: str) -> Node:
    """Parse a filter expression into its syntax tree; raises :class:`ExpressionError`."""
    return _Parser(text).parse()

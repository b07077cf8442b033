"""The recursive-descent parser of the filter expression language.

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

So ``!a == 1`` is ``!(a == 1)`` (as SQL's ``NOT``); the tokens are described
in :mod:`pure.filter_tokens`. Errors are
:class:`~pure.expression_error.ExpressionError` with the 1-based column of
the offending token and what was expected there.
"""

from __future__ import annotations

from typing import Final

from pure.expression_error import ExpressionError
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
from pure.filter_tokens import Token, describe_token, tokenize

__all__ = ["MAX_NESTING", "parse_expression"]

MAX_NESTING: Final = 64
"""Parentheses, arrays, calls and negations may nest this deep (it bounds recursion)."""

_COMPARATORS = {"==": "==", "=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_INFIX_FUNCTIONS = frozenset({"matches", "contains", "starts_with", "ends_with"})
_LITERAL_KEYWORDS: dict[str, bool | None] = {"true": True, "false": False, "null": None}


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

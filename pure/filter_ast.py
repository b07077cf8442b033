"""The syntax tree of filter expressions and how each node evaluates.

Every node evaluates to a JSON value given a *lookup* (a function from a
:class:`~pure.field_path.FieldPath` to the value it names, :data:`MISSING`
when absent); a whole filter holds when its value is truthy. Evaluation never
raises for JSON inputs: a comparison between values it does not apply to is
simply false (the rules are in :mod:`pure.filters`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from pure.field_path import MISSING, FieldPath, resolve
from pure.json_values import is_number, json_equal

__all__ = [
    "FUNCTIONS",
    "AllOf",
    "AnyOf",
    "ArrayOf",
    "Call",
    "Comparison",
    "Field",
    "Literal",
    "Lookup",
    "Negation",
    "Node",
    "compare",
    "item_lookup",
    "regex_problem",
    "resolve_item_path",
    "truthy",
]

Lookup = Callable[[FieldPath], Any]


def truthy(value: Any) -> bool:
    """Whether a value makes a filter hold.

    False for null, missing, ``false``, ``0``, ``""``, ``[]`` and ``{}``;
    true for everything else (as in Python and JavaScript).
    """
    return bool(value)


def resolve_item_path(item: Any, path: FieldPath) -> Any:
    """Resolve ``path`` in a work item, where a leading ``item`` segment names the item itself.

    ``item.a.b`` and ``a.b`` are the same field; a bare ``item`` is the whole
    item (useful when items are plain strings or numbers).
    """
    segments = path.segments
    if segments[0] == "item":
        segments = segments[1:]
    return resolve(item, segments)


def item_lookup(item: Any) -> Lookup:
    """The lookup that evaluates a filter against one work item."""
    return lambda path: resolve_item_path(item, path)


def _is_null(value: Any) -> bool:
    return value is None or value is MISSING


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a regular expression, or ``None`` when it is one."""
    try:
        re.compile(pattern)
    except re.error as error:
        return str(error)
    except (OverflowError, RecursionError) as error:
        # The re module raises these (not re.error) for huge repeat counts
        # and for very deep group nesting.
        return str(error)
    return None


def _matches(text: Any, pattern: Any) -> bool:
    if not isinstance(text, str) or not isinstance(pattern, str):
        return False
    if regex_problem(pattern) is not None:
        return False
    return re.search(pattern, text) is not None


def _contains(container: Any, needle: Any) -> bool:
    if isinstance(container, str):
        return isinstance(needle, str) and needle in container
    if isinstance(container, list | tuple):
        return any(json_equal(element, needle) for element in container)
    return False


def _starts_with(text: Any, prefix: Any) -> bool:
    return isinstance(text, str) and isinstance(prefix, str) and text.startswith(prefix)


def _ends_with(text: Any, suffix: Any) -> bool:
    return isinstance(text, str) and isinstance(suffix, str) and text.endswith(suffix)


def _length(value: Any, expected: Any = MISSING) -> Any:
    size = len(value) if isinstance(value, str | list | tuple | Mapping) else 0
    if expected is MISSING:
        return size
    return json_equal(size, expected)


@attrs.frozen
class _Function:
    arities: tuple[int, ...]
    apply: Callable[..., Any]


FUNCTIONS: Final[Mapping[str, _Function]] = {
    "is_null": _Function((1,), _is_null),
    "is_not_null": _Function((1,), lambda value: not _is_null(value)),
    "is_number": _Function((1,), is_number),
    "is_string": _Function((1,), lambda value: isinstance(value, str)),
    "is_bool": _Function((1,), lambda value: isinstance(value, bool)),
    "is_array": _Function((1,), lambda value: isinstance(value, list | tuple)),
    "is_object": _Function((1,), lambda value: isinstance(value, Mapping)),
    "contains": _Function((2,), _contains),
    "starts_with": _Function((2,), _starts_with),
    "ends_with": _Function((2,), _ends_with),
    "matches": _Function((2,), _matches),
    "length": _Function((1, 2), _length),
}


def compare(operator: str, left: Any, right: Any) -> bool:
    """Apply a comparison operator (``==``, ``<``, ``in``, ...) to two evaluated values.

    ``==``/``!=`` are JSON equality and its negation; the ordering operators
    hold only between two numbers or two strings; ``in`` holds when ``right``
    is an array holding a value equal to ``left``, and ``not in`` is its negation.
    """
    if operator == "==":
        return json_equal(left, right)
    if operator == "!=":
        return not json_equal(left, right)
    if operator in ("in", "not in"):
        found = isinstance(right, list | tuple) and any(json_equal(left, e) for e in right)
        return found if operator == "in" else not found
    if not (
        (is_number(left) and is_number(right)) or (isinstance(left, str) and isinstance(right, str))
    ):
        return False
    if operator == "<":
        return bool(left < right)
    if operator == "<=":
        return bool(left <= right)
    if operator == ">":
        return bool(left > right)
    return bool(left >= right)


@attrs.frozen
class Literal:
    """A string, number, boolean or null written in the expression."""

    value: str | int | float | bool | None

    def evaluate(self, lookup: Lookup) -> Any:
        return self.value


@attrs.frozen
class Field:
    """A field path (``item.location.file``, ``tags[0]``); missing is :data:`MISSING`."""

    path: FieldPath

    def evaluate(self, lookup: Lookup) -> Any:
        return lookup(self.path)


@attrs.frozen
class ArrayOf:
    """An array written in the expression: ``['high', 'critical']``."""

    elements: tuple[Node, ...]

    def evaluate(self, lookup: Lookup) -> Any:
        return [element.evaluate(lookup) for element in self.elements]


@attrs.frozen
class Comparison:
    """``left <operator> right`` for ``== != < <= > >= in`` and ``not in``."""

    operator: str
    left: Node
    right: Node

    def evaluate(self, lookup: Lookup) -> Any:
        return compare(self.operator, self.left.evaluate(lookup), self.right.evaluate(lookup))


@attrs.frozen
class Call:
    """A function applied to arguments; the infix ``a matches b`` is ``matches(a, b)``."""

    function: str
    arguments: tuple[Node, ...]

    def evaluate(self, lookup: Lookup) -> Any:
        values = [argument.evaluate(lookup) for argument in self.arguments]
        return FUNCTIONS[self.function].apply(*values)


@attrs.frozen
class AllOf:
    """``a && b && ...``: true when every operand is truthy (evaluated left to right, lazily)."""

    operands: tuple[Node, ...]

    def evaluate(self, lookup: Lookup) -> Any:
        return all(truthy(operand.evaluate(lookup)) for operand in self.operands)


@attrs.frozen
class AnyOf:
    """``a || b || ...``: true when some operand is truthy (evaluated left to right, lazily)."""

    operands: tuple[Node, ...]

    def evaluate(self, lookup: Lookup) -> Any:
        return any(truthy(operand.evaluate(lookup)) for operand in self.operands)


@attrs.frozen
class Negation:
    """``!a`` / ``NOT a``: true when the operand is not truthy."""

    operand: Node

    def evaluate(self, lookup: Lookup) -> Any:
        return not truthy(self.operand.evaluate(lookup))


Node = Literal | Field | ArrayOf | Comparison | Call | AllOf | AnyOf | Negation

"""Filter expressions: which work items a map phase processes, and ``when:`` step conditions.

The language is Prodigy's (``severity == 'high' || severity == 'critical'``,
``path matches '\\.rs$' && has_issues == true``)::

    item.score >= 10 AND NOT is_null(item.location.file)
    tags[0] in ['bug', 'security'] || length(tags) > 3
    name starts_with 'test_' && !(owner == null)

* **Fields** are field paths (:mod:`pure.field_path`) with or without the
  ``item.`` prefix; a bare ``item`` is the whole item. A missing field is null.
* **Literals**: ``'single'`` or ``"double"`` quoted strings, numbers
  (``3``, ``-2.5``, ``1e3``), ``true``, ``false``, ``null``, arrays ``[a, b]``.
* **Comparisons** ``== != < <= > >=`` (``=`` means ``==``), ``in [..]`` and
  ``not in [..]``; logic ``&& || !`` or ``AND OR NOT`` (any case); parentheses.
* **Functions** ``is_null(x)``, ``is_not_null(x)``, ``is_number(x)``,
  ``is_string(x)``, ``is_bool(x)``, ``is_array(x)``, ``is_object(x)``,
  ``contains(a, b)``, ``starts_with(a, b)``, ``ends_with(a, b)``,
  ``matches(a, regex)`` and ``length(x)`` (or Prodigy's ``length(x, n)``, meaning
  ``length(x) == n``); the four of two arguments are also infix operators
  (``path matches '\\.rs$'``).

Evaluation never raises for a JSON item; these rules decide what holds:

* ``==`` is JSON equality (same kind, same value; ``1 == 1.0``, but
  ``true == 1`` is false); ``!=`` is its negation, so ``missing != 'x'`` holds.
* ``< <= > >=`` hold only between two numbers or two strings (by code point);
  any other pairing (``'a' < 3``, ``null < 1``, ``true > false``) is false.
* ``in`` holds when the right side is an array with an element equal to the
  left side; ``not in`` is its negation.
* ``contains`` holds for a substring of a string or an element of an array;
  ``starts_with``/``ends_with`` only for strings; ``matches`` searches a string
  with a Python regular expression (an invalid pattern taken from an item
  matches nothing; an invalid literal pattern is a syntax error).
* ``length`` counts the characters of a string, the elements of an array or
  the keys of an object, and is 0 for anything else (null included).
* A value used as a condition is truthy unless it is null, ``false``, ``0``,
  ``""``, ``[]`` or ``{}``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import attrs
from returns.result import Failure, Result, Success

from pure.expression_error import ExpressionError
from pure.field_path import resolve
from pure.filter_ast import Node, item_lookup, truthy
from pure.filter_parsing import parse_expression

__all__ = ["Filter", "evaluate_condition", "parse_filter"]


@attrs.frozen
class Filter:
    """A parsed filter: the source ``text`` and its syntax tree ``root``.

    >>> high = parse_filter("severity == 'high' && priority > 2")
    >>> high.matches({"severity": "high", "priority": 3})
    True
    """

    text: str
    root: Node

    def matches(self, item: Any) -> bool:
        """Whether ``item`` passes, with field paths resolved in the item."""
        return truthy(self.root.evaluate(item_lookup(item)))

    def holds(self, variables: Mapping[str, Any]) -> bool:
        """Whether the expression is true with field paths resolved in ``variables``.

        ``shell.exit_code`` is ``variables["shell"]["exit_code"]``; there is no
        ``item.`` shorthand here (``item.x`` is ``variables["item"]["x"]``).
        """
        return truthy(self.root.evaluate(lambda path: resolve(variables, path)))


@functools.lru_cache(maxsize=512)
def _parse_cached(text: str) -> Filter:
    return Filter(text, parse_expression(text))


def parse_filter(text: str) -> Filter:
    """Parse a filter expression; raises :class:`ExpressionError` naming the column.

    Parsed filters are cached, so parsing the same text again is cheap.
    """
    return _parse_cached(text)


def evaluate_condition(text: str, variables: Mapping[str, Any]) -> Result[bool, ExpressionError]:
    """Evaluate a ``when:`` condition (after interpolation) against ``variables``.

    The condition is a filter expression: ``true``, ``0 == 0``,
    ``'${item.kind}' == 'rust'``, ``shell.exit_code == 0 && !is_null(build)``.
    A syntax error is a :class:`Failure` carrying the :class:`ExpressionError`.
    """
    try:
        condition = parse_filter(text)
    except ExpressionError as error:
        return Failure(error)
    return Success(condition.holds(variables))

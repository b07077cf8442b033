"""``sort_by``: the order in which a map phase processes its work items.

A sort specification is one or more comma-separated keys, each a field path
(``item.`` prefix optional) with an optional direction and null placement::

    severity DESC, item.priority
    File.score DESC NULLS LAST, Function.unified_score.final_score DESC NULLS LAST
    location.file ASC NULLS FIRST

Keywords are case-insensitive; ``ASC`` (or ``ASCENDING``) is the default,
``DESC`` (or ``DESCENDING``) reverses it. Null and missing values sort last in
both directions unless ``NULLS FIRST`` says otherwise. Values of different
kinds never fail to compare: the total order of :mod:`pure.json_values`
applies (booleans < numbers < strings < arrays < objects; bool is not a
number; numbers numerically; strings by code point). The sort is stable:
items with equal keys keep their input order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from pure.expression_error import ExpressionError
from pure.field_path import MISSING, FieldPath
from pure.filter_ast import resolve_item_path
from pure.filter_tokens import Token, describe_token, tokenize
from pure.json_values import OrderKey, order_key

__all__ = ["SortKey", "SortSpec", "parse_sort_by"]

_ASCENDING = frozenset({"ASC", "ASCENDING"})
_DESCENDING = frozenset({"DESC", "DESCENDING"})


@attrs.frozen
class SortKey:
    """One key of a sort: the field, its direction and where its nulls go."""

    path: FieldPath
    descending: bool = False
    nulls_first: bool = False

    def key_function(self) -> Callable[[Any], OrderKey]:
        """The ``key=`` for :meth:`list.sort` (with ``reverse=descending``) placing nulls right.

        Null keys are made the largest or the smallest so that, after the
        reversal a descending sort applies, they land where asked.
        """
        null_high = self.nulls_first == self.descending
        null_key: OrderKey = (1,) if null_high else (0,)
        present = 0 if null_high else 1
        path = self.path

        def key(item: Any) -> OrderKey:
            value = resolve_item_path(item, path)
            if value is None or value is MISSING:
                return null_key
            return (present, order_key(value))

        return key


@attrs.frozen
class SortSpec:
    """A parsed ``sort_by``: the source ``text`` and its keys, most significant first.

    >>> parse_sort_by("severity DESC").sort([{"severity": 1}, {"severity": 3}])
    [{'severity': 3}, {'severity': 1}]
    """

    text: str
    keys: tuple[SortKey, ...]

    def sort(self, items: Sequence[Any]) -> list[Any]:
        """A new list of ``items`` in this order (stable; ``items`` is not changed)."""
        result = list(items)
        # Stable sorts applied from the least significant key to the most
        # significant one give the lexicographic order over all keys.
        for sort_key in reversed(self.keys):
            result.sort(key=sort_key.key_function(), reverse=sort_key.descending)
        return result


def _is_word(token: Token, words: frozenset[str]) -> bool:
    return token.kind == "path" and token.text.upper() in words


def parse_sort_by(text: str) -> SortSpec:
    """Parse a ``sort_by`` specification; raises :class:`ExpressionError` naming the column."""
    tokens = tokenize(text)
    keys: list[SortKey] = []
    pos = 0
    while True:
        token = tokens[pos]
        if token.kind != "path":
            after = " after ','" if keys else ""
            raise ExpressionError(
                text,
                token.column,
                f"expected a field path to sort by{after}, found {describe_token(token)}",
            )
        path: FieldPath = token.value
        pos += 1
        expected = ["ASC", "DESC", "NULLS FIRST", "NULLS LAST"]
        descending = False
        if _is_word(tokens[pos], _ASCENDING | _DESCENDING):
            descending = tokens[pos].text.upper() in _DESCENDING
            pos += 1
            expected = expected[2:]
        nulls_first = False
        if _is_word(tokens[pos], frozenset({"NULLS"})):
            placement = tokens[pos + 1]
            if not _is_word(placement, frozenset({"FIRST", "LAST"})):
                raise ExpressionError(
                    text,
                    placement.column,
                    f"expected FIRST or LAST after NULLS, found {describe_token(placement)}",
                )
            nulls_first = placement.text.upper() == "FIRST"
            pos += 2
            expected = []
        keys.append(SortKey(path, descending, nulls_first))
        token = tokens[pos]
        if token.kind == "end":
            return SortSpec(text, tuple(keys))
        if token.kind != ",":
            wanted = ", ".join([*expected, "','"])
            raise ExpressionError(
                text,
                token.column,
                f"expected {wanted} or end of sort_by, found {describe_token(token)}",
            )
        pos += 1

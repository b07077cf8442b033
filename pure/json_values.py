"""What JSON values mean to filters, sort keys and ``distinct``: kinds, equality, order, truth.

Work items are JSON values as ``json.loads`` builds them: ``None``, ``bool``,
``int``/``float``, ``str``, ``list`` and ``dict`` with string keys. These rules
are shared so that a filter, a sort and a ``distinct`` never disagree about
whether two values are the same:

* **bool is not a number.** ``true == 1`` is false, ``true`` sorts apart from
  numbers (Python's ``True == 1`` is deliberately not used).
* **Numbers compare numerically**, ``1 == 1.0``; strings compare by code point.
* **A missing field is null** (:data:`pure.field_path.MISSING` becomes ``None``).
* **The total order** used by ``sort_by``, across kinds: null < booleans
  (false < true) < numbers (NaN after every other number) < strings < arrays
  (element by element, a prefix first) < objects (their entries sorted by key,
  compared key, then value, entry by entry); anything that is no JSON value
  comes last, ordered by type name and ``repr``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from pure.field_path import MISSING

__all__ = ["OrderKey", "describe_value", "is_number", "json_equal", "kind_of", "order_key"]

OrderKey = tuple[Any, ...]

_NULL, _BOOLEAN, _NUMBER, _STRING, _ARRAY, _OBJECT, _OTHER = range(7)


def is_number(value: Any) -> bool:
    """``value`` is a JSON number: an ``int`` or ``float`` that is not a ``bool``."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def kind_of(value: Any) -> str:
    """The JSON kind of ``value``: null, boolean, number, string, array, object (or other)."""
    return _KIND_NAMES[_rank(value)]


def _rank(value: Any) -> int:
    if value is None or value is MISSING:
        return _NULL
    if isinstance(value, bool):
        return _BOOLEAN
    if isinstance(value, int | float):
        return _NUMBER
    if isinstance(value, str):
        return _STRING
    if isinstance(value, list | tuple):
        return _ARRAY
    if isinstance(value, Mapping):
        return _OBJECT
    return _OTHER


_SCALARS = frozenset({str, int, float, bool})

_KIND_NAMES = ("null", "boolean", "number", "string", "array", "object", "other")


def json_equal(left: Any, right: Any) -> bool:
    """JSON equality: same kind and same value, recursively; missing equals null.

    Iterative, so deeply nested values cannot exhaust the stack. NaN equals
    nothing, as in IEEE arithmetic.
    """
    if type(left) is type(right) and type(left) in _SCALARS:
        return bool(left == right)  # the common case, decided without the walk below
    pending = [(left, right)]
    while pending:
        a, b = pending.pop()
        rank = _rank(a)
        if rank != _rank(b):
            return False
        if rank == _NULL:
            continue
        if rank == _ARRAY:
            if len(a) != len(b):
                return False
            pending.extend(zip(a, b, strict=True))
        elif rank == _OBJECT:
            if a.keys() != b.keys():
                return False
            pending.extend((a[key], b[key]) for key in a)
        elif a != b:
            return False
    return True


def order_key(value: Any) -> OrderKey:
    """A hashable key realising the total order of the module docstring.

    Equal keys mean :func:`json_equal` values (except NaN, whose keys are all
    equal so that sorting and ``distinct`` stay well defined).
    """
    rank = _rank(value)
    if rank == _NULL:
        return (_NULL,)
    if rank == _NUMBER:
        if math.isnan(value):
            return (_NUMBER, 1, 0)
        return (_NUMBER, 0, value)
    if rank == _ARRAY:
        return (_ARRAY, tuple(order_key(element) for element in value))
    if rank == _OBJECT:
        entries = sorted(value.items(), key=lambda entry: str(entry[0]))
        return (_OBJECT, tuple((str(key), order_key(item)) for key, item in entries))
    if rank == _OTHER:
        return (_OTHER, type(value).__qualname__, repr(value))
    return (rank, value)


def describe_value(value: Any, *, limit: int = 3) -> str:
    """A short phrase naming ``value`` for an error message (``an object with keys 'a', 'b'``)."""
    rank = _rank(value)
    if rank == _OBJECT:
        keys = [repr(str(key)) for key in list(value)[: limit + 1]]
        if not keys:
            return "an empty object"
        shown = ", ".join(keys[:limit])
        more = len(value) - limit
        suffix = f" (and {more} more)" if more > 0 else ""
        return f"an object with keys {shown}{suffix}"
    if rank == _ARRAY:
        return f"an array of {len(value)} values"
    if rank == _NULL:
        return "null"
    if rank == _STRING:
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {text!r}"
    if rank == _OTHER:
        return f"a value of type {type(value).__qualname__} (not a JSON value)"
    return f"the {kind_of(value)} {json.dumps(value)}"

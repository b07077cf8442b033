"""JSON value semantics shared by filters, sorting and distinct."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pure.field_path import MISSING
from pure.json_values import describe_value, is_number, json_equal, kind_of, order_key

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=20,
)


class Opaque:
    def __repr__(self) -> str:
        return "Opaque()"


def test_kinds() -> None:
    values: list[Any] = [None, MISSING, True, 3, 2.5, "s", [1], (1,), {"a": 1}, Opaque()]
    assert [kind_of(v) for v in values] == [
        "null",
        "null",
        "boolean",
        "number",
        "number",
        "string",
        "array",
        "array",
        "object",
        "other",
    ]
    assert is_number(3) and is_number(2.5) and not is_number(True) and not is_number("3")


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        (1, 1.0, True),
        (True, 1, False),
        (False, 0, False),
        (None, MISSING, True),
        ("a", "a", True),
        ("a", "b", False),
        ([1, [2, {"x": None}]], [1.0, [2, {"x": None}]], True),
        ([1, 2], [1], False),
        ([1, 2], (1, 2), True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ({"a": 1, "b": [True]}, {"b": [True], "a": 1}, True),
        ({"a": True}, {"a": 1}, False),
        (float("nan"), float("nan"), False),
        ([], {}, False),
    ],
)
def test_json_equality(left: Any, right: Any, equal: bool) -> None:
    assert json_equal(left, right) is equal
    assert json_equal(right, left) is equal


def test_equality_of_very_deep_values_does_not_exhaust_the_stack() -> None:
    deep: Any = 1
    for _ in range(50_000):
        deep = [deep]
    assert json_equal(deep, deep)


def test_the_total_order_across_kinds() -> None:
    values: list[Any] = [
        {"b": 1},
        {"a": 2},
        {"a": 1, "b": 0},
        [1, "x"],
        [1],
        [],
        "b",
        "a",
        "",
        float("nan"),
        10,
        2.5,
        -1,
        True,
        False,
        None,
        Opaque(),
    ]
    ordered = sorted(values, key=order_key)
    assert ordered[:14] == [
        None,
        False,
        True,
        -1,
        2.5,
        10,
        ordered[6],
        "",
        "a",
        "b",
        [],
        [1],
        [1, "x"],
        {"a": 1, "b": 0},
    ]
    assert math.isnan(ordered[6])
    assert ordered[14:16] == [{"a": 2}, {"b": 1}]
    assert isinstance(ordered[16], Opaque)


def test_equal_values_have_equal_keys_and_hashes() -> None:
    assert order_key(1) == order_key(1.0)
    assert hash(order_key({"a": [1, 2.0]})) == hash(order_key({"a": [1.0, 2]}))
    assert order_key(True) != order_key(1)
    assert order_key(float("nan")) == order_key(float("nan"))
    assert order_key(MISSING) == order_key(None)


@given(json_values, json_values, json_values)
def test_order_key_is_a_total_preorder(a: Any, b: Any, c: Any) -> None:
    ka, kb, kc = order_key(a), order_key(b), order_key(c)
    assert (ka <= kb) or (kb <= ka)
    if ka <= kb and kb <= kc:
        assert ka <= kc


@given(json_values, json_values)
def test_json_equal_values_have_equal_keys(a: Any, b: Any) -> None:
    if json_equal(a, b):
        assert order_key(a) == order_key(b)
    assert json_equal(a, a) or order_key(a) == order_key(a)


@pytest.mark.parametrize(
    ("value", "description"),
    [
        ({"a": 1, "b": 2}, "an object with keys 'a', 'b'"),
        (
            {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5},
            "an object with keys 'a', 'b', 'c' (and 2 more)",
        ),
        ({}, "an empty object"),
        ([1, 2], "an array of 2 values"),
        (None, "null"),
        ("text", "the string 'text'"),
        ("x" * 50, "the string '" + "x" * 37 + "...'"),
        (True, "the boolean true"),
        (2.5, "the number 2.5"),
        (Opaque(), "a value of type Opaque (not a JSON value)"),
    ],
)
def test_values_are_described_for_error_messages(value: Any, description: str) -> None:
    assert describe_value(value) == description

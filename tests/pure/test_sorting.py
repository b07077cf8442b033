"""sort_by: parsing, directions, null placement, mixed kinds, stability."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pure.expression_error import ExpressionError
from pure.field_path import parse_field_path
from pure.json_values import order_key
from pure.sorting import SortKey, SortSpec, parse_sort_by


def values(spec: str, items: list[Any], field: str = "v") -> list[Any]:
    return [
        item.get(field) if isinstance(item, dict) else item
        for item in parse_sort_by(spec).sort(items)
    ]


def test_a_specification_parses_into_keys() -> None:
    spec = parse_sort_by(
        "severity DESC, item.priority, score asc nulls first, x Descending NULLS LAST"
    )
    assert spec == SortSpec(
        spec.text,
        (
            SortKey(parse_field_path("severity"), descending=True),
            SortKey(parse_field_path("item.priority")),
            SortKey(parse_field_path("score"), nulls_first=True),
            SortKey(parse_field_path("x"), descending=True, nulls_first=False),
        ),
    )
    assert parse_sort_by("a NULLS FIRST").keys == (
        SortKey(parse_field_path("a"), nulls_first=True),
    )
    assert parse_sort_by("a['b c'][0] ASCENDING").keys == (
        SortKey(parse_field_path("a['b c'][0]")),
    )


def test_ascending_is_the_default_and_descending_reverses() -> None:
    items = [{"v": 2}, {"v": 10}, {"v": 1.5}]
    assert values("v", items) == [1.5, 2, 10]
    assert values("v ASC", items) == [1.5, 2, 10]
    assert values("v DESC", items) == [10, 2, 1.5]
    assert values("item.v desc", items) == [10, 2, 1.5]


def test_strings_sort_by_code_point() -> None:
    items = [{"v": "b"}, {"v": "B"}, {"v": "a"}, {"v": "é"}, {"v": ""}]
    assert values("v", items) == ["", "B", "a", "b", "é"]


def test_nulls_and_missing_fields_sort_last_in_both_directions_by_default() -> None:
    items: list[Any] = [{"v": None}, {"v": 2}, {}, {"v": 1}]
    assert values("v", items) == [1, 2, None, None]
    assert values("v DESC", items) == [2, 1, None, None]
    assert values("v NULLS LAST", items) == [1, 2, None, None]
    assert values("v DESC NULLS LAST", items) == [2, 1, None, None]


def test_nulls_first_puts_them_first_in_both_directions() -> None:
    items: list[Any] = [{"v": 2}, {"v": None}, {"v": 1}, {}]
    assert values("v NULLS FIRST", items) == [None, None, 1, 2]
    assert values("v DESC NULLS FIRST", items) == [None, None, 2, 1]


def test_nulls_keep_their_input_order() -> None:
    items: list[Any] = [{"id": "a"}, {"v": 1, "id": "b"}, {"v": None, "id": "c"}, {"id": "d"}]
    assert values("v DESC", items, "id") == ["b", "a", "c", "d"]
    assert values("v NULLS FIRST", items, "id") == ["a", "c", "d", "b"]


def test_mixed_kinds_follow_the_total_order_and_never_raise() -> None:
    items: list[Any] = [
        {"v": "text"},
        {"v": 3},
        {"v": True},
        {"v": [1]},
        {"v": {"a": 1}},
        {"v": None},
        {"v": 1.5},
        {"v": False},
    ]
    assert values("v", items) == [False, True, 1.5, 3, "text", [1], {"a": 1}, None]
    assert values("v DESC", items) == [{"a": 1}, [1], "text", 3, 1.5, True, False, None]


def test_later_keys_break_ties_of_earlier_ones() -> None:
    items = [
        {"severity": "high", "priority": 2, "id": 1},
        {"severity": "low", "priority": 9, "id": 2},
        {"severity": "high", "priority": 5, "id": 3},
        {"severity": "low", "priority": 1, "id": 4},
        {"severity": "high", "priority": 5, "id": 5},
    ]
    assert values("severity DESC, item.priority", items, "id") == [4, 2, 1, 3, 5]
    assert values("severity, priority DESC", items, "id") == [3, 5, 1, 2, 4]


def test_the_prodigy_debtmap_sort_orders_both_item_shapes() -> None:
    spec = parse_sort_by(
        "File.score DESC NULLS LAST, Function.unified_score.final_score DESC NULLS LAST"
    )
    items: list[Any] = [
        {"Function": {"unified_score": {"final_score": 4}}},
        {"File": {"score": 12}},
        {"Function": {"unified_score": {"final_score": 40}}},
        {"File": {"score": 30}},
    ]
    assert spec.sort(items) == [items[3], items[1], items[2], items[0]]


def test_sorting_does_not_change_its_input() -> None:
    items = [{"v": 2}, {"v": 1}]
    parse_sort_by("v").sort(items)
    assert items == [{"v": 2}, {"v": 1}]


def test_items_that_are_not_objects_sort_by_their_missing_field() -> None:
    items: list[Any] = ["b", 1, {"v": 0}, None]
    assert parse_sort_by("v").sort(items) == [{"v": 0}, "b", 1, None]
    assert parse_sort_by("item").sort(items) == [1, "b", {"v": 0}, None]


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("", 1, "expected a field path to sort by, found end of expression"),
        ("   ", 4, "expected a field path to sort by"),
        ("a,", 3, "expected a field path to sort by after ',', found end of expression"),
        ("a, , b", 4, "after ',', found ','"),
        ("'a' DESC", 1, "found the string 'a'"),
        ("3", 1, "found the number 3"),
        ("null DESC", 1, "found 'null'"),
        (
            "a DESK",
            3,
            "expected ASC, DESC, NULLS FIRST, NULLS LAST, ',' or end of sort_by, found 'DESK'",
        ),
        ("a DESC DESC", 8, "expected NULLS FIRST, NULLS LAST, ',' or end of sort_by, found 'DESC'"),
        ("a NULLS", 8, "expected FIRST or LAST after NULLS, found end of expression"),
        ("a NULLS MIDDLE", 9, "expected FIRST or LAST after NULLS, found 'MIDDLE'"),
        ("a NULLS FIRST DESC", 15, "expected ',' or end of sort_by, found 'DESC'"),
        ("a b", 3, "found 'b'"),
        ("a.", 3, "expected a field name after 'a.'"),
        ("a; b", 2, "found ';'"),
    ],
)
def test_a_bad_specification_names_its_column(text: str, column: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        parse_sort_by(text)
    assert raised.value.text == text
    assert raised.value.column == column, raised.value
    assert fragment in raised.value.message


# Properties.

scalars = (
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats() | st.sampled_from(["", "a", "b"])
)
field_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=2)
        | st.dictionaries(st.sampled_from("ab"), children, max_size=2)
    ),
    max_leaves=4,
)
items_strategy = st.lists(
    st.fixed_dictionaries({}, optional={"v": field_values, "w": field_values}), max_size=25
).map(lambda items: [{**item, "id": position} for position, item in enumerate(items)])
specs = st.lists(
    st.tuples(
        st.sampled_from(["v", "item.w", "id"]),
        st.sampled_from(["", " ASC", " DESC"]),
        st.sampled_from(["", " NULLS FIRST", " NULLS LAST"]),
    ).map("".join),
    min_size=1,
    max_size=3,
).map(", ".join)


@given(specs, items_strategy)
def test_sorting_is_a_stable_permutation(spec_text: str, items: list[dict[str, Any]]) -> None:
    spec = parse_sort_by(spec_text)
    result = spec.sort(items)
    assert sorted(item["id"] for item in result) == list(range(len(items)))

    def comparable(item: dict[str, Any]) -> list[Any]:
        return [sort_key.key_function()(item) for sort_key in spec.keys]

    for before, after in itertools.pairwise(result):
        first, second = comparable(before), comparable(after)
        for sort_key, a, b in zip(spec.keys, first, second, strict=True):
            if a != b:
                assert (a > b) if sort_key.descending else (a < b)
                break
        else:
            assert before["id"] < after["id"]  # equal keys keep their input order


@given(items_strategy)
def test_nulls_are_last_unless_asked_first(items: list[dict[str, Any]]) -> None:
    for spec_text, nulls_first in (
        ("v", False),
        ("v DESC", False),
        ("v NULLS FIRST", True),
        ("v DESC NULLS FIRST", True),
    ):
        nulls = [item.get("v") is None for item in parse_sort_by(spec_text).sort(items)]
        assert nulls == sorted(nulls, reverse=nulls_first)


@given(st.lists(field_values, max_size=20))
def test_ascending_agrees_with_the_total_order(raw: list[Any]) -> None:
    present = [value for value in raw if value is not None]
    result = [item["v"] for item in parse_sort_by("v").sort([{"v": value} for value in present])]
    keys = [order_key(value) for value in result]
    assert keys == sorted(keys)


@given(st.text(max_size=30))
def test_parsing_any_text_gives_a_spec_or_an_expression_error(text: str) -> None:
    try:
        spec = parse_sort_by(text)
    except ExpressionError as error:
        assert 1 <= error.column <= len(text) + 1
    else:
        assert spec.keys

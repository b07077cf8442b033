"""Field paths: parsing with columns in errors, resolving to MISSING instead of raising."""

from __future__ import annotations

import pytest

from pure.field_path import MISSING, FieldPathError, _Missing, parse_field_path, resolve


def test_parse_names_indexes_and_quoted_keys() -> None:
    path = parse_field_path("""a.b[2]['c d']["e\\"f"][-1]""")
    assert path.segments == ("a", "b", 2, "c d", 'e"f', -1)
    assert str(path) == """a.b[2]['c d']["e\\"f"][-1]"""


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("", 1, "expected a field name"),
        ("a.", 3, "expected a field name after '.'"),
        ("a[x]", 2, "expected an index like [0]"),
        ("a b", 2, "unexpected character ' '"),
        (".a", 1, "expected a field name"),
    ],
)
def test_parse_errors_name_the_column(text: str, column: int, message: str) -> None:
    with pytest.raises(FieldPathError) as info:
        parse_field_path(text)
    assert (info.value.column, info.value.message[: len(message)]) == (column, message)
    assert f"at column {column}" in str(info.value)


def test_resolve_follows_keys_and_indexes() -> None:
    value = {"a": {"b": [10, 20, {"c": "x"}]}}
    assert resolve(value, parse_field_path("a.b[2].c")) == "x"
    assert resolve(value, ("a", "b", -1, "c")) == "x"


@pytest.mark.parametrize("text", ["a.z", "a.b[9]", "a.b.c", "a.b[0].c", "q"])
def test_missing_segments_resolve_to_missing(text: str) -> None:
    value = {"a": {"b": [10]}}
    assert resolve(value, parse_field_path(text)) is MISSING


def test_missing_is_one_falsy_value() -> None:
    assert _Missing() is MISSING
    assert repr(MISSING) == "MISSING"
    assert not MISSING


def test_json_equal_tells_different_lists_apart() -> None:
    from pure.json_values import json_equal

    assert json_equal([1], [2]) is False
    assert json_equal(["a", 1.0], ["a", 1]) is True

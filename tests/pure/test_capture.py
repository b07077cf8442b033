"""Converting a command's output into a captured value by ``capture_format``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from pure.capture import convert_capture, json_problem
from pure.workflow import CaptureFormat


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("hello\n", "hello"),
        ("hello\r\n\n\n", "hello"),
        ("  hello  \n", "  hello  "),
        ("line 1\nline 2\n", "line 1\nline 2"),
        ("\nleading\n", "\nleading"),
        ("", ""),
        ("\n", ""),
    ],
)
def test_string_drops_only_trailing_newlines(output: str, expected: str) -> None:
    assert convert_capture(output, "string") == Success(expected)


@given(st.text())
def test_string_never_fails_and_keeps_everything_but_trailing_newlines(output: str) -> None:
    value = convert_capture(output, "string").unwrap()
    assert output.startswith(value)
    assert output[len(value) :].strip("\r\n") == ""
    assert not value.endswith(("\n", "\r"))


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("a\nb\n", ["a", "b"]),
        ("a\r\n\r\nb", ["a", "b"]),
        ("  indented  \n   \n\tx", ["  indented  ", "\tx"]),
        ("", []),
        ("\n\n", []),
    ],
)
def test_lines_are_the_non_blank_lines_as_written(output: str, expected: list[str]) -> None:
    assert convert_capture(output, "lines") == Success(expected)


@given(st.lists(st.text("ab c", min_size=1).filter(str.strip), max_size=5))
def test_lines_round_trip(lines: list[str]) -> None:
    assert convert_capture("\n".join(lines) + "\n", "lines") == Success(lines)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ('{"a": [1, 2.5, null, true]}\n', {"a": [1, 2.5, None, True]}),
        ("  [1, 2]  \n", [1, 2]),
        ('"text"', "text"),
        ("3", 3),
        ("null", None),
    ],
)
def test_json_parses_the_stripped_output(output: str, expected: Any) -> None:
    assert convert_capture(output, "json") == Success(expected)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)


@given(json_values)
def test_json_round_trips_any_document(value: Any) -> None:
    assert convert_capture(json.dumps(value, indent=2) + "\n", "json") == Success(value)


def test_invalid_json_names_what_was_expected_and_found() -> None:
    assert convert_capture("{oops\n", "json") == Failure(
        "expected JSON output, found '{oops' (Expecting property name enclosed in double quotes)"
    )


def test_empty_output_is_not_json() -> None:
    assert convert_capture("\n", "json") == Failure(
        "expected JSON output, found empty output (Expecting value)"
    )


def test_a_long_output_is_shown_cut_to_sixty_characters() -> None:
    output = "x" * 100
    failure = convert_capture(output, "json").failure()
    assert f"found '{'x' * 60}...' (" in failure
    assert "x" * 61 not in failure


def test_sixty_characters_are_shown_whole() -> None:
    assert f"found '{'x' * 60}' (" in convert_capture("x" * 60, "json").failure()


def test_json_with_an_integer_too_long_for_python_is_a_failure_not_a_crash() -> None:
    failure = convert_capture("1" * 5000, "json").failure()
    assert failure.startswith("expected JSON output, found '111")
    assert "Exceeds the limit (4300 digits)" in failure
    assert "set_int_max_str_digits" not in failure


def test_json_nested_too_deeply_is_a_failure_not_a_crash() -> None:
    failure = convert_capture("[" * 100_000 + "]" * 100_000, "json").failure()
    assert failure.endswith("(nested too deeply)")


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (json.JSONDecodeError("Expecting value", "x", 0), "Expecting value"),
        (RecursionError("maximum recursion depth exceeded"), "nested too deeply"),
        (ValueError("too long; do something else"), "too long"),
    ],
)
def test_json_problem(error: ValueError | RecursionError, problem: str) -> None:
    assert json_problem(error) == problem


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("42\n", 42),
        ("  -7  ", -7),
        ("+3", 3),
        ("2.5\n", 2.5),
        ("1e3", 1000.0),
        ("-0.0", -0.0),
    ],
)
def test_numbers(output: str, expected: float) -> None:
    value = convert_capture(output, "number").unwrap()
    assert value == expected
    assert type(value) is type(expected)


@given(st.integers())
def test_an_integer_stays_an_int(number: int) -> None:
    assert convert_capture(f"{number}\n", "number") == Success(number)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_finite_float_round_trips(number: float) -> None:
    assert convert_capture(repr(number), "number") == Success(number)


@pytest.mark.parametrize(
    ("output", "failure"),
    [
        ("abc", "expected a number, found 'abc'"),
        ("", "expected a number, found empty output"),
        ("1 2", "expected a number, found '1 2'"),
        ("nan", "expected a finite number, found 'nan'"),
        ("-inf\n", "expected a finite number, found '-inf'"),
        ("1" * 5000, f"expected a finite number, found '{'1' * 60}...'"),
    ],
)
def test_not_a_number(output: str, failure: str) -> None:
    assert convert_capture(output, "number") == Failure(failure)


@pytest.mark.parametrize("output", ["true", "TRUE\n", " yes ", "1", "On"])
def test_true_words(output: str) -> None:
    assert convert_capture(output, "boolean") == Success(True)


@pytest.mark.parametrize("output", ["false", "No\n", "0", "OFF", "", "  \n"])
def test_false_words_and_empty_output(output: str) -> None:
    assert convert_capture(output, "boolean") == Success(False)


@pytest.mark.parametrize(
    ("output", "shown"), [("maybe\n", "'maybe'"), ("2", "'2'"), ("truthy", "'truthy'")]
)
def test_not_a_boolean(output: str, shown: str) -> None:
    assert convert_capture(output, "boolean") == Failure(f"expected true or false, found {shown}")


ONE_AS: dict[str, Any] = {"string": "1", "json": 1, "lines": ["1"], "number": 1, "boolean": True}


@pytest.mark.parametrize("capture_format", ["string", "json", "lines", "number", "boolean"])
def test_every_format_gives_its_own_value(capture_format: CaptureFormat) -> None:
    assert convert_capture("1\n", capture_format) == Success(ONE_AS[capture_format])

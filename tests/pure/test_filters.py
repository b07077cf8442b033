"""Filter expressions: syntax, the evaluation rules, errors with columns, conditions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from pure.expression_error import ExpressionError
from pure.field_path import MISSING, parse_field_path
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
    compare,
    regex_problem,
    resolve_item_path,
    truthy,
)
from pure.filter_parsing import MAX_NESTING
from pure.filter_tokens import Token, describe_token, tokenize
from pure.filters import Filter, evaluate_condition, parse_filter

ITEM: dict[str, Any] = {
    "severity": "high",
    "priority": 3,
    "score": 7.5,
    "path": "src/lib.rs",
    "has_issues": True,
    "owner": None,
    "tags": ["bug", "security"],
    "location": {"file": "src/main.rs", "line": 12},
    "empty": "",
    "zero": 0,
    "File": {"score": 12},
    "matrix": [[1, 2], [3, 4]],
    "bad_pattern": "(",
}


def holds(expression: str, item: Any = ITEM) -> bool:
    return parse_filter(expression).matches(item)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # comparisons, with and without the item. prefix
        ("severity == 'high'", True),
        ('severity == "high"', True),
        ("item.severity == 'high'", True),
        ("severity = 'high'", True),
        ("severity != 'high'", False),
        ("severity != 'low'", True),
        ("priority > 2", True),
        ("priority >= 3", True),
        ("priority < 3", False),
        ("priority <= 3", True),
        ("priority == 3.0", True),
        ("score > 7", True),
        ("score < -1", False),
        ("score == 7.5e0", True),
        ("priority > 2.5", True),
        ("severity > 'apple'", True),
        ("severity < 'apple'", False),
        # nested fields and indexes
        ("item.location.file == 'src/main.rs'", True),
        ("location.line >= 10", True),
        ("tags[0] == 'bug'", True),
        ("item.tags[-1] == 'security'", True),
        ("tags[5] == null", True),
        ("matrix[1][0] == 3", True),
        ("item['location']['file'] == 'src/main.rs'", True),
        ("File.score >= 10 OR Function.unified_score.final_score >= 10", True),
        # logic, both spellings, any case, precedence and parentheses
        ("severity == 'high' && priority > 5", False),
        ("severity == 'high' AND priority > 2", True),
        ("severity == 'low' || priority > 2", True),
        ("severity == 'low' or priority > 5", False),
        ("!(severity == 'high')", False),
        ("NOT severity == 'high'", False),
        ("not not has_issues", True),
        ("!has_issues", False),
        ("severity == 'low' || priority > 2 && score > 100", False),
        ("(severity == 'low' || priority > 2) && score > 1", True),
        ("severity == 'low' OR severity == 'critical' OR severity == 'high'", True),
        ("has_issues AND item.and == null AND item.or == null", True),
        # in / not in
        ("severity in ['high', 'critical']", True),
        ("severity IN ['low']", False),
        ("severity not in ['low', 'medium']", True),
        ("severity NOT IN ['high']", False),
        ("priority in [1, 2, 3]", True),
        ("priority in []", False),
        ("priority in [1, 2, 3,]", True),
        ("'bug' in tags", True),
        ("'feature' in tags", False),
        ("'high' in severity", False),
        ("[1, 2] in matrix", True),
        ("location.line in [owner, 12]", True),
        # literals and truthiness
        ("true", True),
        ("false", False),
        ("TRUE", True),
        ("null", False),
        ("1", True),
        ("0", False),
        ("'text'", True),
        ("''", False),
        ("[]", False),
        ("[0]", True),
        ("has_issues", True),
        ("empty", False),
        ("zero", False),
        ("missing", False),
        ("has_issues == true", True),
        ("owner == null", True),
        ("missing == null", True),
        ("missing != 'x'", True),
        ("item == item", True),
        # functions
        ("is_null(owner)", True),
        ("is_null(missing)", True),
        ("is_null(severity)", False),
        ("is_not_null(severity)", True),
        ("is_not_null(item.nope.deeper)", False),
        ("is_number(priority)", True),
        ("is_number(has_issues)", False),
        ("is_string(severity)", True),
        ("is_bool(has_issues)", True),
        ("is_bool(zero)", False),
        ("is_array(tags)", True),
        ("is_object(location)", True),
        ("is_object(tags)", False),
        ("contains(path, 'lib')", True),
        ("contains(tags, 'bug')", True),
        ("contains(tags, 'nope')", False),
        ("contains(priority, 3)", False),
        ("contains(path, 3)", False),
        ("starts_with(path, 'src/')", True),
        ("ends_with(path, '.rs')", True),
        ("ends_with(priority, '3')", False),
        ("matches(path, '^src/.*\\.rs$')", True),
        ("matches(path, priority)", False),
        ("matches(path, severity)", False),
        ("matches(path, bad_pattern)", False),
        ("path matches bad_pattern", False),
        ("length(tags) == 2", True),
        ("length(severity) == 4", True),
        ("length(location) > 1", True),
        ("length(missing) == 0", True),
        ("length(priority) == 0", True),
        ("length(tags, 2)", True),
        ("length(tags, 3)", False),
        ("LENGTH(tags) == 2", True),
        ("is_null(owner || missing)", False),
        # the infix forms, in any case
        ("path matches '\\.rs$'", True),
        ("path MATCHES '\\.py$'", False),
        ("path contains 'lib'", True),
        ("path starts_with 'src'", True),
        ("path ends_with '.rs' && has_issues == true", True),
        ("path matches '\\.rs$' && has_issues == true", True),
        ("tags contains 'security'", True),
        # a field may share a function's name when it is not called
        ("contains == null", True),
        # type mismatches are false, never errors
        ("severity < 3", False),
        ("priority > 'a'", False),
        ("has_issues > false", False),
        ("owner < 1", False),
        ("missing >= 0", False),
        ("has_issues == 1", False),
        ("zero == false", False),
        ("tags < location", False),
    ],
)
def test_a_filter_holds_exactly_when_its_rules_say(expression: str, expected: bool) -> None:
    assert holds(expression) is expected


@pytest.mark.parametrize(
    ("expression", "column", "fragment"),
    [
        ("", 1, "expected an expression, found end of expression"),
        ("   ", 4, "expected an expression"),
        ("severity ==", 12, "expected a value"),
        ("severity == 'high')", 19, "found ')' without '('"),
        ("(severity == 'high'", 20, "expected ')' to close the '(' at column 1"),
        ("severity == 'high' & x", 20, "expected '&&', found '&'"),
        ("a | b", 3, "expected '||', found '|'"),
        ("severity == 'high", 13, "expected a closing ' for the string"),
        ('a == "x', 6, 'expected a closing " for the string'),
        ("foo(1)", 1, "expected a function (contains, ends_with"),
        ("item.length(tags)", 1, "found 'item.length'"),
        ("is_null(a, b)", 1, "expected 1 argument for is_null, found 2"),
        ("contains(a)", 1, "expected 2 arguments for contains, found 1"),
        ("length()", 1, "expected 1 or 2 arguments for length, found 0"),
        ("contains(a b)", 12, "expected ',' or ')' in the call of contains"),
        ("a matches '('", 11, "expected a regular expression, found '('"),
        ("matches(a, '[')", 12, "expected a regular expression"),
        ("a matches 3", 11, "expected a regular expression string, found the number 3"),
        ("a matches 'x{99999999999}'", 11, "expected a regular expression"),
        ("a.", 3, "expected a field name after 'a.', found end of expression"),
        ("a. == 1", 3, "found ' '"),
        ("tags[x] == 1", 5, "expected an index like [0] or a key like ['k'] after 'tags'"),
        ("a not b", 7, "expected 'in' after 'not', found 'b'"),
        ("a in [1, 2", 11, "expected ',' or ']' in the array opened at column 6"),
        ("a in [1 2]", 9, "found the number 2"),
        ("a == 1 == 2", 8, "expected an operator or end of expression, found '=='"),
        ("a == 1 b", 8, "found 'b'"),
        ("# comment", 1, "expected a field, a literal, an operator or a parenthesis, found '#'"),
        ("a == -", 6, "found '-'"),
        ("é == 1", 1, "found 'é'"),
        ("a == !b", 6, "expected a value"),
        ("a == 'x' 'y'", 10, "found the string 'y'"),
        ("a && || b", 6, "found '||'"),
        ("(" * (MAX_NESTING + 1) + "a" + ")" * (MAX_NESTING + 1), MAX_NESTING + 1, "nesting"),
        ("!" * (MAX_NESTING + 1) + "a", MAX_NESTING + 1, "levels of nesting"),
        ("[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1), MAX_NESTING + 1, "nesting"),
        ("a == " + "9" * 5000, 6, "expected an integer of at most"),
    ],
)
def test_a_syntax_error_names_its_column_and_what_was_expected(
    expression: str, column: int, fragment: str
) -> None:
    with pytest.raises(ExpressionError) as raised:
        parse_filter(expression)
    assert raised.value.text == expression
    assert raised.value.column == column, raised.value
    assert fragment in raised.value.message
    assert "expected" in raised.value.message and "found" in raised.value.message


def test_nesting_up_to_the_limit_parses_and_evaluates() -> None:
    depth = MAX_NESTING
    assert holds("(" * depth + "has_issues" + ")" * depth)
    assert holds("!" * depth + "has_issues") is (depth % 2 == 0)
    assert holds("is_array(" + "[" * (depth - 1) + "]" * (depth - 1) + ")")


def test_the_syntax_tree_is_plain_frozen_data() -> None:
    parsed = parse_filter("!(a == 1) && (b in [1, 'x'] || matches(c, 'y')) && d not in e")
    assert parsed == Filter(
        parsed.text,
        AllOf(
            (
                Negation(Comparison("==", Field(parse_field_path("a")), Literal(1))),
                AnyOf(
                    (
                        Comparison(
                            "in", Field(parse_field_path("b")), ArrayOf((Literal(1), Literal("x")))
                        ),
                        Call("matches", (Field(parse_field_path("c")), Literal("y"))),
                    )
                ),
                Comparison("not in", Field(parse_field_path("d")), Field(parse_field_path("e"))),
            )
        ),
    )
    assert parse_filter("x == 1.5e2").root == Comparison(
        "==", Field(parse_field_path("x")), Literal(150.0)
    )
    assert hash(parsed) == hash(parse_filter(parsed.text))


def right_side(expression: str) -> object:
    root = parse_filter(expression).root
    assert isinstance(root, Comparison)
    return root.right


def test_strings_keep_backslashes_except_before_their_own_quote() -> None:
    assert parse_filter(r"a == 'it\'s'").root == Comparison(
        "==", Field(parse_field_path("a")), Literal("it's")
    )
    assert right_side(r'a == "say \"hi\""') == Literal('say "hi"')
    assert right_side(r"a == '\.rs$'") == Literal(r"\.rs$")
    assert right_side(r"a == 'dir\\'") == Literal("dir\\\\")
    assert right_side(r"""a == 'say "hi"'""") == Literal('say "hi"')
    assert holds(r"name == 'O\'Brien'", {"name": "O'Brien"})
    assert holds(r"path matches '\d+\.rs$'", {"path": "src/file42.rs"})
    assert not holds(r"path matches '\d+\.rs$'", {"path": "src/file.rs"})


def test_the_tokenizer_reports_kinds_values_and_columns() -> None:
    tokens = tokenize("item.a[0] >= -2.5 AND 'x' in [null]")
    assert [(t.kind, t.column) for t in tokens] == [
        ("path", 1),
        ("operator", 11),
        ("number", 14),
        ("keyword", 19),
        ("string", 23),
        ("keyword", 27),
        ("[", 30),
        ("keyword", 31),
        ("]", 35),
        ("end", 36),
    ]
    assert tokens[0].value == parse_field_path("item.a[0]")
    assert tokens[2].value == -2.5
    assert tokens[3].value == "and"
    assert tokens[4].value == "x"
    assert tokenize("12")[0].value == 12
    assert isinstance(tokenize("12")[0].value, int)
    assert describe_token(Token("end", "", 3)) == "end of expression"
    assert describe_token(Token("string", "'x'", 1, "x")) == "the string 'x'"
    assert describe_token(Token("operator", "==", 1)) == "'=='"


def test_missing_fields_are_null_never_an_error() -> None:
    parsed = parse_filter("is_null(a.b.c[3]) && a.b.c[3] == null && !(a.b.c[3] > 0)")
    for item in [{}, {"a": 1}, {"a": {"b": "text"}}, {"a": {"b": {"c": [1]}}}, [], "a", 3, None]:
        assert parsed.matches(item)


def test_a_bare_item_is_the_whole_item() -> None:
    assert holds("item == 'x'", "x")
    assert holds("item > 3", 4)
    assert holds("item starts_with 'ab'", "abc")
    assert holds("item.item == 1", {"item": 1})
    assert resolve_item_path({"a": 1}, parse_field_path("item")) == {"a": 1}
    assert resolve_item_path({"a": 1}, parse_field_path("item.a")) == 1
    assert resolve_item_path({"a": 1}, parse_field_path("a")) == 1


def test_booleans_are_not_numbers() -> None:
    assert not holds("flag == 1", {"flag": True})
    assert not holds("flag == true", {"flag": 1})
    assert holds("n in [1]", {"n": 1.0})
    assert not holds("n in [1]", {"n": True})
    assert not holds("flag > 0", {"flag": True})


def test_comparisons_between_kinds_follow_the_documented_rule() -> None:
    assert compare("<", 1, 2.5)
    assert compare(">=", "b", "a")
    assert not compare("<", "a", 3)
    assert not compare("<=", None, None)
    assert not compare(">", [2], [1])
    assert not compare(">", True, False)
    assert not compare("<", float("nan"), 1)
    assert compare("==", None, MISSING)
    assert compare("!=", [1], [1, 2])
    assert compare("in", 2, (1, 2))
    assert not compare("in", 2, {"2": 2})
    assert compare("not in", 2, "2")


def test_regular_expression_problems_are_described() -> None:
    assert regex_problem("^a+$") is None
    assert regex_problem("(") is not None
    assert regex_problem("a{99999999999}") is not None
    assert regex_problem("(" * 2000 + ")" * 2000) is not None


def test_functions_have_their_documented_arities() -> None:
    assert {name: function.arities for name, function in FUNCTIONS.items()} == {
        "is_null": (1,),
        "is_not_null": (1,),
        "is_number": (1,),
        "is_string": (1,),
        "is_bool": (1,),
        "is_array": (1,),
        "is_object": (1,),
        "contains": (2,),
        "starts_with": (2,),
        "ends_with": (2,),
        "matches": (2,),
        "length": (1, 2),
    }


def test_truthiness() -> None:
    falsy: list[Any] = [None, MISSING, False, 0, 0.0, "", [], {}]
    true: list[Any] = [True, 1, -0.5, "0", [0], {"a": None}]
    assert [truthy(v) for v in falsy] == [False] * len(falsy)
    assert [truthy(v) for v in true] == [True] * len(true)


def test_parsing_is_cached_and_returns_equal_values() -> None:
    assert parse_filter("a == 1") is parse_filter("a == 1")


def test_a_prodigy_corpus_filter_selects_what_it_says() -> None:
    rust = parse_filter("path matches '\\.rs$' && has_issues == true")
    files: list[dict[str, Any]] = [
        {"path": "src/a.rs", "has_issues": True},
        {"path": "src/b.py", "has_issues": True},
        {"path": "src/c.rs", "has_issues": False},
        {"path": "src/d.rs"},
    ]
    assert [f["path"] for f in files if rust.matches(f)] == ["src/a.rs"]
    severe = parse_filter("severity == 'high' || severity == 'critical'")
    assert [severe.matches({"severity": s}) for s in ("high", "critical", "low", None)] == [
        True,
        True,
        False,
        False,
    ]


# Conditions (``when:``) reuse the language against a variables mapping.


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("true", True),
        ("false", False),
        ("0 == 0", True),
        ("1 == 0", False),
        ("'rust' == 'rust'", True),
        ("'a' < 'b' && 2 >= 1", True),
        ("shell.exit_code == 0", True),
        ("shell.exit_code != 0", False),
        ("is_null(build)", True),
        ("item.kind == 'rust'", True),
        ("kind == 'rust'", False),
        ("map.successful > 2 AND map.failed == 0", True),
        ("flags contains 'fast'", True),
    ],
)
def test_a_condition_is_evaluated_against_variables(condition: str, expected: bool) -> None:
    variables = {
        "shell": {"exit_code": 0, "output": "ok"},
        "item": {"kind": "rust"},
        "map": {"successful": 3, "failed": 0},
        "flags": ["fast"],
    }
    assert evaluate_condition(condition, variables) == Success(expected)
    assert parse_filter(condition).holds(variables) is expected


def test_a_condition_with_a_syntax_error_is_a_failure_not_an_exception() -> None:
    result = evaluate_condition("${x} ==", {})
    assert isinstance(result, Failure)
    error = result.failure()
    assert isinstance(error, ExpressionError)
    assert error.column == 1
    assert evaluate_condition("0 ==", {}).failure().column == 5


# Properties.

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["a", "b", "c", "item", "tags"]) | st.text(max_size=3),
            children,
            max_size=4,
        )
    ),
    max_leaves=16,
)

_PATHS = ["a", "item.a", "a.b", "b[0]", "item", "tags[-1]", "item['c']", "c.a.b[1]"]


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "").replace("'", "\\'") + "'"
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return "0.5"
    return json.dumps(value)


operands = st.one_of(
    st.sampled_from(_PATHS),
    (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)).map(_literal),
)
comparisons = st.one_of(
    st.tuples(
        operands,
        st.sampled_from(
            [
                "==",
                "!=",
                "<",
                "<=",
                ">",
                ">=",
                "=",
                "matches",
                "contains",
                "starts_with",
                "ends_with",
                "in",
                "not in",
            ]
        ),
        operands,
    ).map(" ".join),
    st.tuples(st.sampled_from(sorted(FUNCTIONS)), st.lists(operands, min_size=1, max_size=2)).map(
        lambda call: f"{call[0]}({', '.join(call[1])})"
    ),
    st.lists(operands, max_size=3).map(lambda elements: f"a in [{', '.join(elements)}]"),
    operands,
)
expressions = st.recursive(
    comparisons,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["&&", "||", "AND", "OR"]), inner).map(" ".join),
        inner.map(lambda e: f"!({e})"),
        inner.map(lambda e: f"NOT ({e})"),
    ),
    max_leaves=8,
)


def _parse_or_none(text: str) -> Filter | None:
    try:
        return parse_filter(text)
    except ExpressionError:
        return None


@given(expressions, json_values)
def test_evaluating_a_filter_never_raises_on_any_json_item(text: str, item: Any) -> None:
    parsed = _parse_or_none(text)  # arity or regex mistakes in generated text are fine
    if parsed is not None:
        assert parsed.matches(item) in (True, False)
        assert parsed.holds({"a": item, "item": item}) in (True, False)


@given(st.text(max_size=40))
def test_parsing_any_text_gives_a_filter_or_an_expression_error(text: str) -> None:
    try:
        parsed = parse_filter(text)
    except ExpressionError as error:
        assert 1 <= error.column <= len(text) + 1
        assert error.text == text
    else:
        assert parsed.text == text


@given(expressions, json_values)
def test_negation_and_de_morgan_hold(text: str, item: Any) -> None:
    parsed = _parse_or_none(text)
    if parsed is not None:
        assert parse_filter(f"!({text})").matches(item) is not parsed.matches(item)
        both = parse_filter(f"({text}) && ({text})").matches(item)
        assert both is parsed.matches(item)

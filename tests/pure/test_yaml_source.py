"""Loading YAML with positions: values, locations, and every hostile input as a problem."""

from __future__ import annotations

import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from pure.workflow_error import Location
from pure.yaml_source import (
    MAX_DEPTH,
    MAX_NODES,
    YamlList,
    YamlMap,
    YamlScalar,
    child_path,
    describe,
    index_path,
    load_yaml,
)


def load(text: str) -> YamlMap:
    value, found = load_yaml(text, "f.yml")
    assert not found, found
    assert isinstance(value, YamlMap)
    return value


def test_values_keep_their_types_text_and_locations() -> None:
    root = load("a: 1\nb: 'x'\nc: [true, ~, 2.5]\nd:\n  e: |\n    text\n")
    a, b, c, d = (root.get(key) for key in "abcd")
    assert a is not None and a.value == YamlScalar(1, "1", None, Location(1, 4), "1")
    assert a.key_location == Location(1, 1)
    assert b is not None and b.value == YamlScalar("x", "x", "'", Location(2, 4), "'x'")
    assert c is not None and isinstance(c.value, YamlList)
    assert [item.value for item in c.value.items if isinstance(item, YamlScalar)] == [
        True,
        None,
        2.5,
    ]
    assert c.value.location == Location(3, 4)
    assert d is not None and isinstance(d.value, YamlMap)
    inner = d.value.get("e")
    assert inner is not None
    assert inner.value == YamlScalar("text\n", "text\n", "|", Location(5, 6), "|\n    text\n")
    assert list(root.keys()) == ["a", "b", "c", "d"]
    assert root.get("missing") is None


def test_keys_keep_the_text_written_even_when_yaml_would_type_them() -> None:
    root = load("on: 1\n3: x\nnull: y\n")
    assert list(root.keys()) == ["on", "3", "null"]


def test_invalid_yaml_is_one_problem_at_its_line() -> None:
    value, found = load_yaml("a: b: c\n", "f.yml")
    assert value is None
    (problem,) = found
    assert (problem.line, problem.column, problem.path) == (1, 5, "")
    assert problem.message == "invalid YAML: mapping values are not allowed here"
    assert str(problem) == "f.yml:1:5: invalid YAML: mapping values are not allowed here"


def test_a_syntax_error_with_context_names_the_context_line() -> None:
    _, found = load_yaml("a:\n  - x\n  b: {c\n", "f.yml")
    (problem,) = found
    assert problem.message.startswith("invalid YAML: ")
    assert "at line" in problem.message


def test_an_unacceptable_character_is_a_problem_at_its_position() -> None:
    _, found = load_yaml("a: 1\nb: x\x00y\n", "f.yml")
    (problem,) = found
    assert (problem.line, problem.column) == (2, 5)
    assert "unacceptable character #x0000" in problem.message


def test_several_documents_are_a_problem() -> None:
    _, found = load_yaml("a: 1\n---\nb: 2\n", "f.yml")
    (problem,) = found
    assert "expected a single document" in problem.message
    assert problem.line == 2


def test_an_empty_document_is_a_problem() -> None:
    for text in ("", "# only a comment\n", "\n\n"):
        value, found = load_yaml(text, "f.yml")
        assert value is None
        assert [p.message for p in found] == ["the workflow is empty"]


def test_duplicate_keys_are_problems_and_the_first_value_is_kept() -> None:
    value, found = load_yaml("a: 1\nb: 2\na: 3\n", "f.yml")
    assert isinstance(value, YamlMap)
    entry = value.get("a")
    assert entry is not None and isinstance(entry.value, YamlScalar) and entry.value.value == 1
    (problem,) = found
    assert (problem.path, problem.line, problem.column) == ("a", 3, 1)
    assert problem.message == "duplicate key 'a' (first at line 1)"


def test_complex_keys_are_problems() -> None:
    value, found = load_yaml("? [a, b]\n: 1\n? {c: d}\n: 2\nok: 3\n", "f.yml")
    assert isinstance(value, YamlMap) and list(value.keys()) == ["ok"]
    assert [(p.found, p.message) for p in found] == [
        ("a list", "a mapping key must be a plain string"),
        ("a mapping", "a mapping key must be a plain string"),
    ]


def test_unknown_tags_and_values_contradicting_their_tag_are_problems() -> None:
    text = "a: !custom x\nb: !!set {x}\nc: !!omap [x: 1]\nd: !!int nope\ne: &e !!bool maybe\n"
    value, found = load_yaml(text, "f.yml")
    assert isinstance(value, YamlMap)
    messages = [p.message for p in found]
    assert messages == [
        "invalid YAML value: could not determine a constructor for the tag '!custom'",
        "unsupported YAML tag 'tag:yaml.org,2002:set'",
        "unsupported YAML tag 'tag:yaml.org,2002:omap'",
        "invalid YAML value: invalid literal for int() with base 10: 'nope'",
        "invalid YAML value: 'maybe'",
    ]
    entry = value.get("a")
    assert entry is not None and isinstance(entry.value, YamlScalar) and entry.value.value == "x"


def test_plain_scalars_that_only_look_typed_are_their_text() -> None:
    root = load("date: 2024-13-45\noctal: 09\nanchored: &x 2024-02-30\n")
    values = {e.key: e.value.value for e in root.entries if isinstance(e.value, YamlScalar)}
    assert values == {"date": "2024-13-45", "octal": "09", "anchored": "2024-02-30"}


def test_merge_keys_bring_in_entries_and_explicit_keys_win() -> None:
    root = load(
        "base: &base {a: 1, b: 2}\nother: &other {b: 9, c: 3}\n"
        "one: {<<: *base, b: 5}\nmany: {<<: [*base, *other], d: 4}\n"
    )
    one = root.get("one")
    assert one is not None and isinstance(one.value, YamlMap)
    assert {e.key: e.value.value for e in one.value.entries if isinstance(e.value, YamlScalar)} == {
        "a": 1,
        "b": 5,
    }
    many = root.get("many")
    assert many is not None and isinstance(many.value, YamlMap)
    values = {e.key: e.value.value for e in many.value.entries if isinstance(e.value, YamlScalar)}
    assert values == {"a": 1, "b": 2, "c": 3, "d": 4}


def test_a_merge_of_something_else_than_a_mapping_is_a_problem() -> None:
    _, found = load_yaml("x: &x [1]\ny: {<<: *x}\n", "f.yml")
    (problem,) = found
    assert problem.path == "y.<<"
    assert problem.message == "a merge key (<<) must refer to a mapping or a list of mappings"


def test_a_recursive_alias_stops_loading_with_a_problem() -> None:
    value, found = load_yaml("a: &a [1, *a]\n", "f.yml")
    assert value is None
    assert found[-1].message == (
        "cannot load the document: a recursive alias (an anchor used inside itself)"
    )


def test_nesting_deeper_than_the_limit_stops_loading() -> None:
    text = "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    value, found = load_yaml(text, "f.yml")
    assert value is None
    assert found[-1].message == f"cannot load the document: nesting deeper than {MAX_DEPTH} levels"


def test_nesting_too_deep_for_the_yaml_reader_is_a_problem() -> None:
    value, found = load_yaml("[" * 20000 + "]" * 20000, "f.yml")
    assert value is None
    assert [p.message for p in found] == ["cannot load the document: nesting too deep to read"]


def test_alias_expansion_beyond_the_budget_stops_loading() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]
    value, found = load_yaml("\n".join(lines) + "\n", "f.yml")
    assert value is None
    assert found[-1].message == (
        f"cannot load the document: more than {MAX_NODES} values after alias expansion"
    )


def test_paths_and_descriptions() -> None:
    assert child_path("", "map") == "map"
    assert child_path("map", "input") == "map.input"
    assert index_path("reduce", 2) == "reduce[2]"
    where = Location(1, 1)
    assert describe(YamlMap((), where)) == "a mapping"
    assert describe(YamlList((), where)) == "a list"
    assert describe(YamlScalar(None, "~", None, where)) == "null"
    assert describe(YamlScalar(True, "yes", None, where)) == "a boolean (yes)"
    assert describe(YamlScalar(42, "42", None, where)) == "an integer (42)"
    assert describe(YamlScalar(1.5, "1.5", None, where)) == "a number (1.5)"
    assert describe(YamlScalar("ab", "ab", None, where)) == "a string ('ab')"
    assert describe(YamlScalar("x" * 100, "x", None, where)) == f"a string ({'x' * 57 + '...'!r})"
    day = datetime.date(2024, 1, 2)
    assert describe(YamlScalar(day, "2024-01-02", None, where)) == "a date (2024-01-02)"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_loading_never_raises(text: str) -> None:
    value, found = load_yaml(text, "f.yml")
    assert value is not None or found
    for problem in found:
        assert problem.line >= 1 and problem.column >= 1

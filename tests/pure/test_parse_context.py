"""The typed readers of the schema walk: what each accepts and the problem it records otherwise."""

from __future__ import annotations

import pytest

from pure.parse_context import NAME_PATTERN, ParseContext
from pure.workflow_error import Location
from pure.yaml_source import YamlList, YamlMap, YamlScalar, YamlValue, load_yaml

WHERE = Location(3, 7)


def scalar(value: object, text: str | None = None) -> YamlScalar:
    return YamlScalar(value, str(value) if text is None else text, None, WHERE)


def yaml_value(text: str) -> YamlValue:
    value, found = load_yaml(f"v: {text}\n", "t.yml")
    assert not found and isinstance(value, YamlMap)
    return value.entries[0].value


def problem_of(ctx: ParseContext) -> str:
    (problem,) = ctx.problems
    return problem.message


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("300", 300.0),
        ("300s", 300.0),
        ("5m", 300.0),
        ("1h 30m", 5400.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1.5 hours", 5400.0),
        ("2 days", 172800.0),
        (" 90 SEC ", 90.0),
        ("10", 10.0),
    ],
)
def test_durations_accept_numbers_and_texts_with_units(text: str, seconds: float) -> None:
    ctx = ParseContext("t.yml")
    assert ctx.duration(scalar(text), "timeout") == seconds
    assert not ctx.problems


@pytest.mark.parametrize("value", [600, 2.5])
def test_durations_accept_plain_numbers(value: float) -> None:
    assert ParseContext("t.yml").duration(scalar(value), "timeout") == float(value)


@pytest.mark.parametrize("text", ["", "abc", "10x", "1h 30", "5m3", "-5", "s"])
def test_bad_duration_texts_are_problems(text: str) -> None:
    ctx = ParseContext("t.yml")
    assert ctx.duration(scalar(text), "step.timeout") is None
    (problem,) = ctx.problems
    assert problem.path == "step.timeout"
    assert problem.expected == "a duration > 0 (seconds, or a text like '90s', '5m')"
    assert (problem.line, problem.column) == (3, 7)


@pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan"), True])
def test_durations_must_be_positive_finite_numbers(value: object) -> None:
    ctx = ParseContext("t.yml")
    assert ctx.duration(scalar(value), "t") is None
    assert len(ctx.problems) == 1


def test_a_delay_may_be_zero() -> None:
    ctx = ParseContext("t.yml")
    assert ctx.delay(scalar(0), "d") == 0.0
    assert ctx.delay(scalar("0s"), "d") == 0.0
    assert ctx.delay(scalar(-1), "d") is None
    assert ctx.problems[0].expected.startswith("a duration >= 0")


def test_an_environment_reference_in_a_duration_is_unsupported() -> None:
    ctx = ParseContext("t.yml")
    assert ctx.duration(scalar("$SETUP_TIMEOUT"), "setup.timeout") is None
    assert problem_of(ctx) == (
        "unsupported: environment variable reference '$SETUP_TIMEOUT' in a duration"
        " is not supported by forkmerge; give the seconds"
    )
    assert ctx.problems[0].unsupported


def test_strings_and_texts() -> None:
    ctx = ParseContext("t.yml")
    assert ctx.string(scalar("x"), "p") == "x"
    assert ctx.text(yaml_value("3"), "p") == "3"
    assert ctx.text(yaml_value("yes"), "p") == "yes"
    assert not ctx.problems
    assert ctx.string(yaml_value("3"), "p") is None
    assert problem_of(ctx) == "expected a string, found an integer (3)"


def test_text_rejects_null_and_collections() -> None:
    ctx = ParseContext("t.yml")
    assert ctx.text(yaml_value("~"), "p") is None
    assert ctx.text(YamlList((), WHERE), "q") is None
    assert [p.found for p in ctx.problems] == ["null", "a list"]


def test_non_empty_strings() -> None:
    ctx = ParseContext("t.yml")
    assert ctx.non_empty_string(scalar("  "), "p") is None
    assert problem_of(ctx) == "expected a non-empty string, found an empty one"
    assert ctx.non_empty_string(scalar(5), "p") is None


def test_booleans_integers_and_fractions() -> None:
    ctx = ParseContext("t.yml")
    assert ctx.boolean(yaml_value("false"), "b") is False
    assert ctx.integer(yaml_value("0"), "i") == 0
    assert ctx.positive_integer(yaml_value("4"), "i") == 4
    assert ctx.fraction(yaml_value("0.25"), "f") == 0.25
    assert ctx.fraction(yaml_value("1"), "f") == 1.0
    assert ctx.positive_number(yaml_value("1.5"), "n") == 1.5
    assert not ctx.problems
    assert ctx.boolean(yaml_value("'true'"), "b") is None
    assert ctx.integer(yaml_value("-2"), "i") is None
    assert ctx.integer(yaml_value("true"), "i") is None
    assert ctx.integer(yaml_value("2.0"), "i") is None
    assert ctx.positive_integer(yaml_value("0"), "i") is None
    assert ctx.fraction(yaml_value("1.5"), "f") is None
    assert ctx.positive_number(yaml_value("0"), "n") is None
    assert [p.message for p in ctx.problems] == [
        "expected true or false, found a string ('true')",
        "expected an integer >= 0, found -2",
        "expected an integer >= 0, found a boolean (true)",
        "expected an integer >= 0, found a number (2.0)",
        "expected an integer >= 1, found 0",
        "expected a number from 0 to 1, found a number (1.5)",
        "expected a number > 0, found an integer (0)",
    ]


def test_choices_and_aliases() -> None:
    ctx = ParseContext("t.yml")
    assert ctx.choice(scalar("b"), "c", ("a", "b")) == "b"
    assert ctx.choice(scalar("B"), "c", ("a", "b"), {"B": "b"}) == "b"
    assert ctx.choice(scalar("z"), "c", ("a", "b"), {"B": "b"}) is None
    assert ctx.choice(scalar(1), "c", ("a", "b")) is None
    assert [p.expected for p in ctx.problems] == ["one of: a, b", "one of: a, b"]


def test_names() -> None:
    ctx = ParseContext("t.yml")
    assert ctx.name(scalar("PATH_1"), "n", NAME_PATTERN, "a name") == "PATH_1"
    assert ctx.name(scalar("1PATH"), "n", NAME_PATTERN, "a name") is None
    assert ctx.name(scalar(3), "n", NAME_PATTERN, "a name") is None
    assert [p.message for p in ctx.problems] == [
        "expected a name, found '1PATH'",
        "expected a string, found an integer (3)",
    ]


def test_string_lists() -> None:
    ctx = ParseContext("t.yml")
    assert ctx.string_list(yaml_value("[a, b/c]"), "l") == ("a", "b/c")
    assert ctx.string_list(yaml_value("[]"), "l") == ()
    assert not ctx.problems
    assert ctx.string_list(yaml_value("a"), "l") is None
    assert ctx.string_list(yaml_value("[a, '', 3]"), "l") is None
    assert [p.path for p in ctx.problems] == ["l", "l[1]", "l[2]"]


def test_mappings_required_and_optional_keys() -> None:
    value, _ = load_yaml("a: 1\nb: ~\n", "t.yml")
    assert isinstance(value, YamlMap)
    ctx = ParseContext("t.yml")
    assert ctx.mapping(value, "m") is value
    assert ctx.require(value, "a", "m") is not None
    assert ctx.optional(value, "a", "m", ctx.integer, 7) == 1
    assert ctx.optional(value, "b", "m", ctx.integer, 7) == 7
    assert ctx.optional(value, "c", "m", ctx.integer, 7) == 7
    assert not ctx.problems
    assert ctx.require(value, "b", "m") is None
    assert ctx.require(value, "c", "") is None
    assert ctx.mapping(scalar(1), "m", "a step") is None
    assert [(p.path, p.found, p.message) for p in ctx.problems] == [
        ("m.b", "null", "missing required key 'b'"),
        ("c", "no such key", "missing required key 'c'"),
        ("m", "an integer (1)", "expected a step, found an integer (1)"),
    ]


def test_optional_falls_back_to_the_default_after_a_problem() -> None:
    value, _ = load_yaml("a: x\n", "t.yml")
    assert isinstance(value, YamlMap)
    ctx = ParseContext("t.yml")
    assert ctx.optional(value, "a", "", ctx.integer, 7) == 7
    assert ctx.problems[0].path == "a"


def test_unknown_keys_suggest_the_closest_known_key() -> None:
    value, _ = load_yaml("input: x\nmax_paralel: 3\nzzz: 1\nvalidate: {}\n", "t.yml")
    assert isinstance(value, YamlMap)
    ctx = ParseContext("wf.yml")
    ctx.check_keys(
        value, "map", {"input", "max_parallel"}, {"validate": "validation blocks"}, what="step"
    )
    messages = [str(p) for p in ctx.problems]
    assert messages == [
        "wf.yml:2:1: map.max_paralel: unknown key 'max_paralel' at map (line 2);"
        " did you mean 'max_parallel'?",
        "wf.yml:3:1: map.zzz: unknown key 'zzz' at map (line 3)",
        "wf.yml:4:1: map.validate: unsupported: step key 'validate' (validation blocks)"
        " is not supported by forkmerge",
    ]
    assert ctx.problems[1].expected == "one of: input, max_parallel"
    assert ctx.problems[1].found == "'zzz'"
    assert ctx.locations["map.input"] == Location(1, 1)


def test_unknown_top_level_keys_name_no_parent_and_unsupported_keys_need_no_kind() -> None:
    value, _ = load_yaml("nmae: x\nsecrets: {}\n", "t.yml")
    assert isinstance(value, YamlMap)
    ctx = ParseContext("t.yml")
    ctx.check_keys(value, "", {"name"}, {"secrets": "secret blocks"})
    assert [p.message for p in ctx.problems] == [
        "unknown key 'nmae' (line 1); did you mean 'name'?",
        "unsupported: key 'secrets' (secret blocks) is not supported by forkmerge",
    ]


def test_checkpoints() -> None:
    ctx = ParseContext("t.yml")
    mark = ctx.checkpoint()
    assert ctx.clean_since(mark)
    ctx.mismatch(scalar(1), "p", "a string")
    assert not ctx.clean_since(mark)

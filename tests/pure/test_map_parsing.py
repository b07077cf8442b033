"""The map block: selection keys, expressions checked at parse time, parallelism, timeouts."""

from __future__ import annotations

import pytest

from pure.workflow import DEFAULT_MAX_PARALLEL, MapConfig, ShellCommand, Step, TimeoutConfig
from tests.pure.workflow_helpers import only_problem, parse_ok, problems, with_map


def map_of(extra: str) -> MapConfig:
    return parse_ok(with_map(extra)).map


def test_map_defaults() -> None:
    assert map_of("") == MapConfig(
        input="items.json",
        agent_template=(Step(ShellCommand("echo hi")),),
        json_path=None,
        filter=None,
        sort_by=None,
        distinct=None,
        offset=0,
        max_items=None,
        max_parallel=DEFAULT_MAX_PARALLEL,
        agent_timeout_secs=None,
        timeout_config=TimeoutConfig(),
    )
    assert DEFAULT_MAX_PARALLEL == 10


def test_every_selection_key() -> None:
    config = map_of(
        """
        json_path: "$.items[*]"
        filter: "severity == 'high' || item.tags[0] in ['bug']"
        sort_by: "priority DESC NULLS LAST, item.name"
        distinct: item.location.file
        offset: 2
        max_items: 0
        max_parallel: 4
        agent_timeout_secs: 90s
        """
    )
    assert config.json_path == "$.items[*]"
    assert config.filter == "severity == 'high' || item.tags[0] in ['bug']"
    assert config.sort_by == "priority DESC NULLS LAST, item.name"
    assert config.distinct == "item.location.file"
    assert (config.offset, config.max_items, config.max_parallel) == (2, 0, 4)
    assert config.agent_timeout_secs == 90.0
    assert config.timeout_config.agent_timeout_secs == 90.0


def test_an_empty_json_path_means_none() -> None:
    assert map_of("json_path: ''").json_path is None


@pytest.mark.parametrize(
    ("text", "value"),
    [("8", 8), ("'8'", 8), ("${MAX_PARALLEL}", "${MAX_PARALLEL}"), ("$N", "$N"), ("~", 10)],
)
def test_max_parallel_forms(text: str, value: int | str) -> None:
    assert map_of(f"max_parallel: {text}").max_parallel == value


@pytest.mark.parametrize("text", ["0", "-2", "'0'", "'${A}x'", "'$'", "many", "2.5", "[1]"])
def test_bad_max_parallel(text: str) -> None:
    problem = only_problem(with_map(f"max_parallel: {text}"))
    assert problem.path == "map.max_parallel"


def test_the_agent_timeout_may_come_from_timeout_config_or_the_legacy_key() -> None:
    assert map_of("timeout_config: {agent_timeout_secs: 30}").agent_timeout_secs == 30.0
    assert map_of("timeout_per_agent: 10m").agent_timeout_secs == 600.0
    same = map_of("agent_timeout_secs: 60\ntimeout_config: {agent_timeout_secs: 1m}")
    assert same.agent_timeout_secs == 60.0


def test_two_different_agent_timeouts_are_a_problem() -> None:
    problem = only_problem(
        with_map("agent_timeout_secs: 60\ntimeout_config: {agent_timeout_secs: 30}")
    )
    assert problem.message == (
        "the agent timeout is given twice with different values: map.agent_timeout_secs = 60,"
        " map.timeout_config.agent_timeout_secs = 30"
    )
    assert problem.path == "map.timeout_config.agent_timeout_secs"
    assert problem.line == 7


def test_required_map_keys() -> None:
    found = problems("name: x\nmap:\n  json_path: $[*]\n")
    assert [p.message for p in found] == [
        "missing required key 'input'",
        "missing required key 'agent_template'",
    ]
    assert only_problem("name: x\nmap: items.json\n").message == (
        "expected a mapping, found a string ('items.json')"
    )
    assert only_problem("name: x\nmap:\n  input: ''\n  agent_template: [{shell: a}]\n").path == (
        "map.input"
    )


def test_an_empty_agent_template_is_a_problem() -> None:
    problem = only_problem("name: x\nmap:\n  input: i\n  agent_template: []\n")
    assert problem.message == "agent_template needs at least one step"
    assert (problem.line, problem.column) == (4, 19)


def test_negative_counts_are_problems() -> None:
    found = problems(with_map("max_items: -1\noffset: -3"))
    assert [(p.path, p.message) for p in found] == [
        ("map.max_items", "expected an integer >= 0, found -1"),
        ("map.offset", "expected an integer >= 0, found -3"),
    ]


def test_an_unparsable_filter_points_at_its_column() -> None:
    problem = only_problem(with_map("filter: severity == "))
    assert problem.path == "map.filter"
    assert problem.message.startswith("invalid filter: ")
    assert "(column 12 of 'severity =='" in problem.message
    assert (problem.line, problem.column) == (6, 11 + 12 - 1)


def test_a_quoted_filter_error_accounts_for_the_quote() -> None:
    plain = only_problem(with_map("filter: 'a == (1'"))
    assert "column" in plain.message
    assert plain.line == 6
    column = int(plain.message.split("(column ")[1].split(" ")[0])
    assert plain.column == 11 + column


def test_filter_columns_fall_back_to_the_value_when_they_cannot_be_mapped() -> None:
    escaped = only_problem(with_map('filter: "a == \\"x"'))
    assert escaped.column == 11
    folded = only_problem(with_map("filter: >\n  a ==\n  (\n"))
    assert (folded.line, folded.column) == (6, 11)


def test_an_unparsable_sort_by_is_a_problem() -> None:
    problem = only_problem(with_map("sort_by: 'priority UPWARDS'"))
    assert problem.path == "map.sort_by"
    assert problem.message.startswith("invalid sort_by: ")


def test_an_unparsable_json_path_is_a_problem() -> None:
    problem = only_problem(with_map("json_path: '$.items['"))
    assert problem.message.startswith("invalid json_path: ")
    assert problem.expected == "a JSONPath expression like $.items[*]"


def test_an_unparsable_distinct_is_a_problem() -> None:
    problem = only_problem(with_map("distinct: item..file"))
    assert problem.message == "invalid field path: expected a field name at column 6"
    assert problem.column == 13 + 6 - 1


def test_expressions_must_be_strings() -> None:
    assert only_problem(with_map("filter: 3")).message == "expected a string, found an integer (3)"
    assert only_problem(with_map("distinct: [a]")).message == "expected a string, found a list"


def test_unsupported_and_unknown_map_keys() -> None:
    found = problems(with_map("retry_on_failure: 2\nmax_paralel: 3"))
    assert [p.message for p in found] == [
        "unsupported: map key 'retry_on_failure' (Prodigy map retries; use"
        " error_policy.retry_config) is not supported by forkmerge",
        "unknown key 'max_paralel' at map (line 7); did you mean 'max_parallel'?",
    ]


def test_max_parallel_references_are_checked_against_the_workflows_values() -> None:
    text = with_map("max_parallel: ${P}") + (
        "env:\n  P: '3'\nprofiles:\n  wide: {P: many}\n  narrow: {P: '0'}\n  other: {Q: x}\n"
    )
    found = problems(text)
    assert [(p.path, p.message) for p in found] == [
        (
            "profiles.wide.P",
            "map.max_parallel is ${P}, but P is 'many', not an integer >= 1",
        ),
        ("profiles.narrow.P", "map.max_parallel is ${P}, but P is '0', not an integer >= 1"),
    ]
    assert parse_ok(with_map("max_parallel: $Q")).map.max_parallel == "$Q"


def test_a_secret_max_parallel_value_never_appears_in_a_problem() -> None:
    text = with_map("max_parallel: ${P}") + (
        "env:\n  P: {secret: true, value: hunter2}\nprofiles:\n  ci: {P: s3cr3t}\n"
    )
    found = problems(text)
    assert [p.path for p in found] == ["env.P", "profiles.ci.P"]
    assert all("hunter2" not in str(p) and "s3cr3t" not in str(p) for p in found)
    assert all(p.found == "a secret value" for p in found)

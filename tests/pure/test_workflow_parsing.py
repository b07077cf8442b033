"""parse_workflow: the whole file, every top-level block, and problems as data, never tracebacks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure

from pure.workflow import (
    ClaudeCommand,
    EnvValue,
    MergeConfig,
    SetupCapture,
    SetupConfig,
    ShellCommand,
    Step,
    WriteFileCommand,
)
from pure.workflow_error import Location, WorkflowError
from pure.workflow_parsing import parse_workflow
from tests.pure.workflow_helpers import FULL, MINIMAL, dedent, only_problem, parse_ok, problems


def test_a_full_workflow() -> None:
    workflow = parse_ok(FULL)
    assert workflow.name == "full-example"
    assert workflow.mode == "mapreduce"
    assert workflow.source == "wf.yml"
    assert workflow.env == {
        "PROJECT": EnvValue("demo"),
        "WIDTH": EnvValue("4"),
        "TOKEN": EnvValue("${GITHUB_TOKEN}", secret=True),
    }
    assert workflow.profiles == {"ci": {"WIDTH": EnvValue("8")}, "quiet": {}}
    assert workflow.profile_descriptions == {"ci": "Continuous integration"}
    assert workflow.setup == SetupConfig(
        steps=(
            Step(ShellCommand("echo '[1, 2]' > items.json")),
            Step(ShellCommand("git rev-parse HEAD"), capture="commit"),
        ),
        timeout=900.0,
        capture_outputs={
            "HEAD_SHA": SetupCapture(1),
            "SHORT": SetupCapture(1, pattern="^(.{7})"),
        },
    )
    assert workflow.map.max_parallel == "${WIDTH}"
    assert workflow.reduce == (
        Step(ClaudeCommand("/summarize ${map.results}")),
        Step(WriteFileCommand("summary.json", "${map.results}", "json")),
    )
    assert workflow.merge == MergeConfig(
        (Step(ShellCommand("git merge --no-ff ${merge.source_branch}")),), 600.0
    )
    assert workflow.error_policy.on_item_failure == "skip"


def test_locations_point_into_the_file() -> None:
    workflow = parse_ok(FULL)
    assert workflow.locations["map"] == Location(25, 1)
    assert workflow.locations["map.max_parallel"] == Location(30, 3)
    assert workflow.locations["env.TOKEN"] == Location(6, 3)
    assert workflow.locations["reduce[1]"] == Location(33, 5)
    assert workflow.locations["setup.capture_outputs.SHORT.pattern"] == Location(24, 7)


def test_a_minimal_workflow_has_the_documented_defaults() -> None:
    workflow = parse_ok(MINIMAL)
    assert workflow.env == {} and workflow.profiles == {}
    assert workflow.setup == SetupConfig()
    assert workflow.reduce == ()
    assert workflow.merge is None
    assert workflow.map.max_parallel == 10


def test_the_older_commands_forms_and_null_blocks() -> None:
    workflow = parse_ok(
        """
        name: legacy
        setup: ~
        map:
          input: items.json
          agent_template:
            commands:
              - claude: /fix ${item}
        reduce:
          commands:
            - shell: echo done
        merge: ~
        """
    )
    assert workflow.map.agent_template == (Step(ClaudeCommand("/fix ${item}")),)
    assert workflow.reduce == (Step(ShellCommand("echo done")),)
    assert workflow.setup == SetupConfig()
    assert workflow.merge is None


def test_problem_and_error_texts() -> None:
    result = parse_workflow(
        "name: x\nmap:\n  input: i.json\n  agent_template: [{shell: a}]\n"
        "  max_paralel: 3\n  offset: -1\n",
        source="workflow.yml",
    )
    assert isinstance(result, Failure)
    error = result.failure()
    assert isinstance(error, WorkflowError)
    assert str(error) == (
        "workflow.yml:5:3: map.max_paralel: unknown key 'max_paralel' at map (line 5);"
        " did you mean 'max_parallel'?\n"
        "workflow.yml:6:11: map.offset: expected an integer >= 0, found -1"
    )
    first = error.problems[0]
    assert (first.path, first.line, first.column) == ("map.max_paralel", 5, 3)
    assert first.found == "'max_paralel'"
    assert "max_parallel" in first.expected
    assert error.source == "workflow.yml"
    assert not first.unsupported
    assert WorkflowError(()).source == "<string>"


def test_every_problem_is_reported_in_source_order() -> None:
    found = problems(
        """
        name: ""
        secrets: {A: x}
        map:
          input: 3
          agent_template:
            - shell: a
              claude: /b
            - {}
          max_items: -1
          filter: "severity == "
        reduce: nope
        """
    )
    assert [p.line for p in found] == sorted(p.line for p in found)
    assert [p.path for p in found] == [
        "name",
        "secrets",
        "map.input",
        "map.agent_template[0]",
        "map.agent_template[1]",
        "map.max_items",
        "map.filter",
        "reduce",
    ]


def test_invalid_yaml_is_one_problem_with_its_line() -> None:
    problem = only_problem("name: x\nmap:\n  agent_template:\n    - shell: echo a: b\n")
    assert (problem.line, problem.path) == (4, "")
    assert problem.message == "invalid YAML: mapping values are not allowed here"


def test_the_document_must_be_a_mapping() -> None:
    assert only_problem("- a\n- b\n").message == (
        "expected a mapping with name and map, found a list"
    )
    assert only_problem("").message == "the workflow is empty"


def test_load_problems_are_reported_with_the_schema_problems() -> None:
    found = problems("name: x\nname: y\nmap: {}\n")
    assert [p.message for p in found] == [
        "duplicate key 'name' (first at line 1)",
        "missing required key 'input'",
        "missing required key 'agent_template'",
    ]


def test_name_and_mode() -> None:
    assert only_problem("map: {input: i, agent_template: [{shell: a}]}\n").message == (
        "missing required key 'name'"
    )
    assert parse_ok(MINIMAL + "mode: MapReduce\n").mode == "mapreduce"
    problem = only_problem(MINIMAL + "mode: standard\n")
    assert problem.unsupported
    assert problem.message == (
        "unsupported: mode 'standard' (standard, non-MapReduce Prodigy workflows)"
        " is not supported by forkmerge"
    )
    assert only_problem(MINIMAL + "mode: 1\n").message == "expected a string, found an integer (1)"


def test_unsupported_top_level_keys() -> None:
    found = problems(MINIMAL + "env_files: [.env]\ncommands: []\n")
    assert [p.message for p in found] == [
        "unsupported: top-level key 'env_files' (Prodigy .env files) is not supported by forkmerge",
        "unsupported: top-level key 'commands' (standard, non-MapReduce Prodigy workflows)"
        " is not supported by forkmerge",
    ]


# --- env and profiles ---------------------------------------------------------------------------


def test_env_values_keep_their_text() -> None:
    workflow = parse_ok(MINIMAL + "env: {A: 3, B: true, C: 1.50, D: 'x y', E: 0x1F}\n")
    assert {k: v.value for k, v in workflow.env.items()} == {
        "A": "3",
        "B": "true",
        "C": "1.50",
        "D": "x y",
        "E": "0x1F",
    }


def test_env_problems() -> None:
    found = problems(
        MINIMAL
        + dedent(
            """
            env:
              1X: a
              NULL_VALUE: ~
              LIST: [1]
              S1: {secret: yes please, value: x}
              S2: {secret: true}
              S3: {value: x, masked: true}
            """
        )
    )
    assert [(p.path, p.message) for p in found] == [
        ("env.1X", "expected an environment variable name, found '1X'"),
        ("env.NULL_VALUE", "expected a string, found null"),
        ("env.LIST", "expected a string, found a list"),
        ("env.S1.secret", "expected true or false, found a string ('yes please')"),
        ("env.S2.value", "missing required key 'value'"),
        ("env.S3.masked", "unknown key 'masked' at env.S3 (line 12)"),
    ]
    assert only_problem(MINIMAL + "env: [A]\n").message == (
        "expected a mapping of variable names to values, found a list"
    )


def test_profiles() -> None:
    workflow = parse_ok(
        MINIMAL
        + dedent(
            """
            profiles:
              dev:
                description: Development
                DEBUG: "true"
                KEY: {secret: true, value: abc}
            """
        )
    )
    assert workflow.profiles == {
        "dev": {"DEBUG": EnvValue("true"), "KEY": EnvValue("abc", secret=True)}
    }
    assert workflow.profile_descriptions == {"dev": "Development"}


def test_profile_problems() -> None:
    found = problems(MINIMAL + "profiles:\n  a: 3\n  b: {description: 4, 'x-y': 1}\n")
    assert [(p.path, p.message) for p in found] == [
        ("profiles.a", "expected a mapping of variable overrides, found an integer (3)"),
        ("profiles.b.description", "expected a string, found an integer (4)"),
        ("profiles.b.x-y", "expected an environment variable name, found 'x-y'"),
    ]
    assert only_problem(MINIMAL + "profiles: [a]\n").message == "expected a mapping, found a list"


# --- setup, reduce, merge -----------------------------------------------------------------------


def test_setup_as_a_list_and_its_problems() -> None:
    workflow = parse_ok(MINIMAL + "setup:\n  - shell: make items\n")
    assert workflow.setup == SetupConfig((Step(ShellCommand("make items")),))
    assert only_problem(MINIMAL + "setup: make items\n").message == (
        "expected a list of steps, found a string ('make items')"
    )
    found = problems(MINIMAL + "setup:\n  timeout: 0\n  capture_outputs: {A: 0}\n  extra: 1\n")
    assert [p.path for p in found] == ["setup.commands", "setup.timeout", "setup.extra"]


def test_setup_capture_outputs_in_full() -> None:
    workflow = parse_ok(
        MINIMAL
        + dedent(
            """
            setup:
              commands:
                - shell: cat report.json
              capture_outputs:
                report.total:
                  command_index: 0
                  source: both
                  json_path: $.summary.total
                  default: "0"
                  multiline: last_line
                  max_size: 1024
            """
        )
    )
    assert workflow.setup.capture_outputs == {
        "report.total": SetupCapture(
            0,
            source="both",
            json_path="$.summary.total",
            default="0",
            multiline="last_line",
            max_size=1024,
        )
    }


def test_setup_capture_output_problems() -> None:
    found = problems(
        MINIMAL
        + dedent(
            """
            setup:
              commands:
                - shell: a
              capture_outputs:
                item.x: 0
                TOO_FAR: 3
                NEGATIVE: -1
                BAD:
                  command_index: 0
                  source: stdin
                  pattern: "("
                  json_path: "$.["
                  multiline: all
                  max_size: 0
                  extra: 1
                NO_INDEX: {source: stdout}
            """
        )
    )
    assert [(p.path.removeprefix("setup.capture_outputs."), p.message) for p in found] == [
        ("item.x", "expected a variable name outside item, map and merge, found 'item.x'"),
        ("TOO_FAR", "setup has 1 steps; there is no step 3"),
        ("NEGATIVE", "expected an integer >= 0, found -1"),
        ("BAD.source", "expected one of: stdout, stderr, both, combined, found a string ('stdin')"),
        ("BAD.pattern", "invalid regular expression: missing ), unterminated subpattern at"
         " position 0"),
        ("BAD.json_path", "invalid json_path: Parse error near the end of string!"),
        ("BAD.multiline", "expected one of: preserve, join, first_line, last_line, array, found a"
         " string ('all')"),
        ("BAD.max_size", "expected an integer >= 1, found 0"),
        ("BAD.extra", "unknown key 'extra' at setup.capture_outputs.BAD (line 20)"),
        ("NO_INDEX.command_index", "missing required key 'command_index'"),
    ]  # fmt: skip


def test_setup_capture_outputs_must_be_a_mapping_and_patterns_strings() -> None:
    base = MINIMAL + "setup:\n  commands: [{shell: a}]\n  capture_outputs: "
    assert only_problem(base + "[0]\n").message == (
        "expected a mapping of variable names to step indexes, found a list"
    )
    assert only_problem(base + "{A: {command_index: 0, pattern: 3}}\n").message == (
        "expected a string, found an integer (3)"
    )
    assert only_problem(base + "{A: {command_index: 0, json_path: 3}}\n").message == (
        "expected a string, found an integer (3)"
    )


def test_capture_indexes_are_not_checked_when_the_setup_steps_are_broken() -> None:
    found = problems(MINIMAL + "setup:\n  commands: 3\n  capture_outputs: {A: 9}\n")
    assert [p.path for p in found] == ["setup.commands"]


def test_reduce_problems() -> None:
    assert only_problem(MINIMAL + "reduce: {commands: [{shell: ''}]}\n").path == (
        "reduce.commands[0].shell"
    )


def test_merge_forms_and_problems() -> None:
    assert parse_ok(MINIMAL + "merge:\n  - shell: git merge x\n").merge == MergeConfig(
        (Step(ShellCommand("git merge x")),)
    )
    empty = only_problem(MINIMAL + "merge: []\n")
    assert empty.message == (
        "a custom merge needs at least one step (leave merge out for the default merge)"
    )
    assert only_problem(MINIMAL + "merge: {commands: []}\n").path == "merge"
    found = problems(MINIMAL + "merge: {timeout: -1, other: 1}\n")
    assert [p.path for p in found] == ["merge.commands", "merge.timeout", "merge.other"]
    assert only_problem(MINIMAL + "merge: {commands: [3]}\n").path == "merge.commands[0]"


# --- never a traceback --------------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 20),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["${X}", "$Y", "5m", "severity ==", "$[*]", "/fix", "dlq", "retry"]),
)
_keys = st.sampled_from(
    [
        "name", "mode", "env", "profiles", "setup", "map", "reduce", "merge", "error_policy",
        "input", "json_path", "filter", "sort_by", "agent_template", "max_parallel", "commands",
        "shell", "claude", "write_file", "capture", "capture_output", "on_failure", "on_success",
        "timeout", "timeout_config", "command_timeouts", "retry_config", "backoff", "secret",
        "value", "capture_outputs", "command_index", "max_attempts", "fail_workflow", "reads",
        "validate", "on_item_failure", "error_collection", "circuit_breaker", "path", "content",
    ]
)  # fmt: skip
_documents = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_keys, children, max_size=6)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(_documents)
def test_any_yaml_document_parses_or_gives_problems_with_positions(document: object) -> None:
    import yaml

    text = yaml.safe_dump(document, allow_unicode=True)
    result = parse_workflow(text, source="fuzz.yml")
    if isinstance(result, Failure):
        error = result.failure()
        assert error.problems
        for problem in error.problems:
            assert problem.line >= 1 and problem.column >= 1
            assert problem.message and problem.source == "fuzz.yml"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses_or_gives_problems(text: str) -> None:
    result = parse_workflow(text)
    assert isinstance(result, Failure) or result.unwrap().name


@pytest.mark.parametrize(
    "text",
    [
        "name: x\nmap: &m {input: i, agent_template: [{shell: a, on_failure: *m}]}\n",
        "a: &a [*a]\n",
        "name: [" * 3000,
        "\ufeffname: x\n",
        "name: x\x00\n",
    ],
)
def test_hostile_inputs_are_problems(text: str) -> None:
    assert isinstance(parse_workflow(text), Failure)

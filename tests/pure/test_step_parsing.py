"""Steps: command kinds, write_file, capture and the other step options."""

from __future__ import annotations

import pytest

from pure.workflow import (
    ClaudeCommand,
    ShellCommand,
    Step,
    WriteFileCommand,
)
from tests.pure.workflow_helpers import only_problem, parse_ok, problems, with_map, with_step


def step_of(text: str) -> Step:
    return parse_ok(with_step(text)).map.agent_template[0]


def test_a_shell_step_with_every_option() -> None:
    step = step_of(
        """
        shell: make test
        capture: result
        capture_format: json
        timeout: 5m
        env: {CI: 1, MODE: fast}
        working_dir: sub/dir
        when: "${item.kind} == 'rust'"
        commit_required: true
        reads: [config.json, setting]
        writes: [out/]
        """
    )
    assert step == Step(
        command=ShellCommand("make test"),
        capture="result",
        capture_format="json",
        timeout=300.0,
        env={"CI": "1", "MODE": "fast"},
        working_dir="sub/dir",
        when="${item.kind} == 'rust'",
        commit_required=True,
        reads=("config.json", "setting"),
        writes=("out/",),
    )


def test_defaults_of_a_plain_step() -> None:
    step = step_of("claude: /fix ${item}")
    assert step == Step(ClaudeCommand("/fix ${item}"))
    assert step.reads is None and step.writes is None
    assert step.capture_format == "string" and not step.commit_required


def test_write_file_steps() -> None:
    step = step_of(
        """
        write_file:
          path: out/${item.id}.json
          content: "${map.results}"
          format: json
          create_dirs: true
          mode: "0600"
        """
    )
    assert step.command == WriteFileCommand(
        "out/${item.id}.json", "${map.results}", "json", True, 0o600
    )
    plain = step_of("write_file: {path: a.txt, content: hello}")
    assert plain.command == WriteFileCommand("a.txt", "hello")


def test_write_file_problems() -> None:
    found = problems(
        with_step(
            """
            write_file: {content: 3, format: xml, create_dirs: 1, mode: "999", extra: x}
            """
        )
    )
    assert [(p.path, p.message) for p in found] == [
        ("map.agent_template[0].write_file.path", "missing required key 'path'"),
        ("map.agent_template[0].write_file.content", "expected a string, found an integer (3)"),
        (
            "map.agent_template[0].write_file.format",
            "expected one of: text, json, yaml, found a string ('xml')",
        ),
        (
            "map.agent_template[0].write_file.create_dirs",
            "expected true or false, found an integer (1)",
        ),
        (
            "map.agent_template[0].write_file.mode",
            "expected permission bits in octal, like '0644', found a string ('999')",
        ),
        (
            "map.agent_template[0].write_file.extra",
            "unknown key 'extra' at map.agent_template[0].write_file (line 5)",
        ),
    ]
    assert [p.column for p in found] == [19, 29, 40, 58, 67, 74]


def test_write_file_must_be_a_mapping_and_mode_a_scalar() -> None:
    assert only_problem(with_step("write_file: a.txt")).message == (
        "expected a mapping with path and content, found a string ('a.txt')"
    )
    bad_mode = only_problem(with_step("write_file: {path: a, content: b, mode: [1]}"))
    assert bad_mode.message == "expected a string, found a list"
    assert step_of("write_file: {path: a, content: b, mode: 755}").command == WriteFileCommand(
        "a", "b", mode=0o755
    )


def test_a_step_needs_exactly_one_command() -> None:
    both = only_problem(with_step("shell: a\nclaude: /b"))
    assert both.message == (
        "a step needs exactly one of shell, claude or write_file; found shell and claude"
    )
    assert (both.path, both.line, both.column) == ("map.agent_template[0]", 6, 7)
    neither = only_problem(with_step("timeout: 10"))
    assert neither.message == (
        "a step needs exactly one of shell, claude or write_file; found none of them"
    )
    assert neither.expected == "exactly one of shell, claude, write_file"


def test_an_unsupported_command_kind_is_reported_once() -> None:
    (problem,) = problems(with_step("goal_seek: {goal: x}"))
    assert problem.message == (
        "unsupported: step key 'goal_seek' (Prodigy goal-seeking steps)"
        " is not supported by forkmerge"
    )


def test_commands_must_be_non_empty_strings() -> None:
    assert only_problem(with_step("shell: ''")).message == (
        "expected a non-empty string, found an empty one"
    )
    assert only_problem(with_step("claude: [a]")).message == "expected a string, found a list"


def test_a_step_must_be_a_mapping() -> None:
    problem = only_problem(with_map("", steps="- echo hi"))
    assert problem.message == (
        "expected a step (a mapping with shell, claude or write_file), found a string ('echo hi')"
    )
    assert problem.path == "map.agent_template[0]"


def test_unsupported_step_keys_name_the_feature() -> None:
    found = problems(with_step("shell: a\nvalidate: {claude: /v}\nretry: {attempts: 3}"))
    assert [p.message for p in found] == [
        "unsupported: step key 'validate' (Prodigy validation blocks)"
        " is not supported by forkmerge",
        "unsupported: step key 'retry' (Prodigy per-step retry; use on_failure with max_attempts)"
        " is not supported by forkmerge",
    ]
    assert all(p.unsupported for p in found)


@pytest.mark.parametrize(
    ("lines", "capture"),
    [
        ("shell: a\ncapture_output: true", "shell.output"),
        ("claude: /a\ncapture_output: true", "claude.output"),
        ("shell: a\ncapture_output: false", None),
        ("shell: a\ncapture_output: lines_seen", "lines_seen"),
        ("shell: a\ncapture: shell.output", "shell.output"),
        ("shell: a\ncapture: x\ncapture_output: false", "x"),
    ],
)
def test_capture_forms(lines: str, capture: str | None) -> None:
    assert step_of(lines).capture == capture


def test_capture_problems() -> None:
    assert only_problem(with_step("shell: a\ncapture: x\ncapture_output: y")).message == (
        "give either capture or capture_output, not both"
    )
    assert only_problem(with_step("shell: a\ncapture: 2x")).message == (
        "expected a variable name like 'count' or 'shell.output', found '2x'"
    )
    assert only_problem(with_step("shell: a\ncapture: item.x")).message == (
        "cannot capture into 'item.x': item, map and merge are reserved variables"
    )
    assert only_problem(with_step("write_file: {path: a, content: b}\ncapture: x")).message == (
        "a write_file step has no output to capture"
    )
    assert only_problem(
        with_step("write_file: {path: a, content: b}\ncapture_output: true")
    ).path == ("map.agent_template[0].capture_output")
    assert only_problem(with_step("shell: a\ncapture_format: json")).message == (
        "capture_format has no effect without capture or capture_output"
    )
    assert only_problem(with_step("shell: a\ncapture: x\ncapture_format: xml")).expected == (
        "one of: string, json, lines, number, boolean"
    )


def test_capture_output_true_on_a_broken_command_adds_no_second_problem() -> None:
    assert only_problem(with_step("shell: ''\ncapture_output: true")).path == (
        "map.agent_template[0].shell"
    )


def test_step_env_problems() -> None:
    found = problems(with_step("shell: a\nenv: {1BAD: x, GOOD: [1], OK: 2}"))
    assert [(p.path, p.message) for p in found] == [
        ("map.agent_template[0].env.1BAD", "expected an environment variable name, found '1BAD'"),
        ("map.agent_template[0].env.GOOD", "expected a string, found a list"),
    ]
    assert only_problem(with_step("shell: a\nenv: [A]")).message == (
        "expected a mapping of variable names to values, found a list"
    )


def test_other_option_problems() -> None:
    found = problems(
        with_step("shell: a\ntimeout: 0\nworking_dir: ''\nwhen: 3\ncommit_required: yes please")
    )
    assert [p.path.rsplit(".", 1)[1] for p in found] == [
        "timeout",
        "working_dir",
        "when",
        "commit_required",
    ]
    assert only_problem(with_step("shell: a\nreads: config.json")).message == (
        "expected a list of strings, found a string ('config.json')"
    )


def test_steps_lists_and_the_commands_form() -> None:
    workflow = parse_ok(
        with_map("", steps="commands:\n  - shell: a\n  - claude: /b\n").replace(
            "    commands:", "    commands:"
        )
    )
    assert [type(s.command) for s in workflow.map.agent_template] == [ShellCommand, ClaudeCommand]
    problem = only_problem(
        "name: x\nmap:\n  input: i\n  agent_template:\n    commands: [{shell: a}]\n    x: 1\n"
    )
    assert problem.message.startswith("unknown key 'x' at map.agent_template")
    assert only_problem("name: x\nmap:\n  input: i\n  agent_template: {}\n").message == (
        "missing required key 'commands'"
    )
    assert only_problem("name: x\nmap:\n  input: i\n  agent_template: 3\n").message == (
        "expected a list of steps, found an integer (3)"
    )
    nested = only_problem(
        "name: x\nmap:\n  input: i\n  agent_template: {commands: {commands: []}}\n"
    )
    assert nested.message == "expected a list of steps, found a mapping"


def test_locations_of_steps_and_handlers_are_recorded() -> None:
    workflow = parse_ok(with_step("shell: a\non_failure: /fix"))
    assert workflow.locations["map.agent_template[0]"].line == 5
    assert workflow.locations["map.agent_template[0].on_failure"].line == 6

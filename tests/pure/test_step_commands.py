"""Planning a step: argv and display for shell/claude, checked path and bytes for write_file."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st
from returns.result import Failure, Result, Success

from pure.masking import mask
from pure.step_commands import (
    FileWrite,
    ProcessCommand,
    StepPlanError,
    command_kind,
    file_content,
    plan_step_command,
    safe_relative_path,
)
from pure.workflow import ClaudeCommand, Command, ShellCommand, Step, WriteFileCommand

SHELL = ("/bin/sh", "-c")
AGENT = ("claude", "--print")
SECRET = "hunter2"
VARIABLES: dict[str, Any] = {
    "item": {"name": "a b; rm -rf /", "file": "src/x.py", "n": 3, "tags": ["t1", "t2"]},
    "TOKEN": SECRET,
    "DIR": "reports",
}


def plan(command: Command, variables: dict[str, Any] | None = None) -> Result[Any, StepPlanError]:
    return plan_step_command(
        Step(command),
        VARIABLES if variables is None else variables,
        agent_command=AGENT,
        shell=SHELL,
        secrets=(SECRET,),
    )


def problem(command: Command) -> str:
    result = plan(command)
    assert isinstance(result, Failure), result
    error = result.failure()
    assert isinstance(error, StepPlanError)
    return str(error)


# --- command_kind -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        (ShellCommand("true"), "shell"),
        (ClaudeCommand("/fix"), "claude"),
        (WriteFileCommand("a.txt", "x"), "write_file"),
    ],
)
def test_command_kind_is_the_key_the_step_was_written_with(command: Command, kind: str) -> None:
    assert command_kind(Step(command)) == kind


# --- shell ------------------------------------------------------------------------------------


def test_shell_text_runs_through_the_shell_with_values_quoted() -> None:
    planned = plan(ShellCommand("echo ${item.name} ${item.n}"))
    assert planned == Success(
        ProcessCommand((*SHELL, "echo 'a b; rm -rf /' '3'"), "echo 'a b; rm -rf /' '3'")
    )


def test_shell_argv_keeps_the_secret_and_display_masks_it() -> None:
    planned = plan(ShellCommand("curl -H $TOKEN ${DIR}")).unwrap()
    assert planned.argv == (*SHELL, f"curl -H '{SECRET}' 'reports'")
    assert planned.display == "curl -H '***' 'reports'"


def test_shell_with_an_unresolved_reference_is_a_plan_error() -> None:
    assert problem(ShellCommand("echo ${item.missing}")) == (
        "unresolved reference ${item.missing}: item has no field 'missing'"
    )


def test_a_secret_in_an_interpolation_error_is_masked() -> None:
    assert problem(ShellCommand("echo ${item.hunter2}")) == (
        "unresolved reference ${item.***}: item has no field '***'"
    )
    assert problem(ClaudeCommand("/fix ${item.hunter2}")) == (
        "unresolved reference ${item.***}: item has no field '***'"
    )


def test_the_shell_prefix_is_whatever_the_environment_configures() -> None:
    planned = plan_step_command(
        Step(ShellCommand("true")), {}, agent_command=AGENT, shell=("bash", "-euc")
    )
    assert planned == Success(ProcessCommand(("bash", "-euc", "true"), "true"))


@given(st.lists(st.sampled_from(["hunter", "2", "'", " ", ";", "$", "x"]), max_size=8).map("".join))
def test_the_shell_display_is_the_masked_command_line(value: str) -> None:
    planned = plan(
        ShellCommand("printf %s ${item.v} $TOKEN"), {"item": {"v": value}, "TOKEN": SECRET}
    )
    command = planned.unwrap()
    assert command.argv[:2] == SHELL
    assert command.display == mask(command.argv[2], [SECRET])
    assert SECRET not in command.display


# --- claude -----------------------------------------------------------------------------------


def test_claude_text_is_one_argument_after_the_agent_command_never_shell_quoted() -> None:
    planned = plan(ClaudeCommand("/fix ${item.name} with ${TOKEN}"))
    assert planned == Success(
        ProcessCommand(
            (*AGENT, f"/fix a b; rm -rf / with {SECRET}"), "claude: /fix a b; rm -rf / with ***"
        )
    )


def test_claude_renders_non_string_values_as_json() -> None:
    planned = plan(ClaudeCommand("tags ${item.tags}")).unwrap()
    assert planned.argv == (*AGENT, 'tags ["t1","t2"]')


@given(st.text(max_size=30))
def test_any_value_reaches_the_agent_verbatim(value: str) -> None:
    planned = plan(ClaudeCommand("${item.v}"), {"item": {"v": value}}).unwrap()
    assert planned.argv == (*AGENT, value)


# --- write_file -------------------------------------------------------------------------------


def test_write_file_plans_the_checked_path_and_the_bytes() -> None:
    command = WriteFileCommand("${DIR}/./${item.n}.txt", "name=${item.name}\n", create_dirs=True)
    assert plan(command) == Success(
        FileWrite(
            "reports/3.txt",
            b"name=a b; rm -rf /\n",
            True,
            "write_file: reports/3.txt",
            0o644,
        )
    )


def test_write_file_keeps_mode_and_create_dirs() -> None:
    planned = plan(WriteFileCommand("run.sh", "#!/bin/sh\n", mode=0o755)).unwrap()
    assert (planned.mode, planned.create_dirs) == (0o755, False)
    assert FileWrite("p", b"", False, "d").mode == 0o644


def test_write_file_content_keeps_the_secret_and_the_display_masks_the_path() -> None:
    planned = plan(WriteFileCommand("${TOKEN}.env", "TOKEN=${TOKEN}\n")).unwrap()
    assert planned.path == f"{SECRET}.env"
    assert planned.content == f"TOKEN={SECRET}\n".encode()
    assert planned.display == "write_file: ***.env"


def test_write_file_json_content_is_validated_and_pretty_printed() -> None:
    planned = plan(WriteFileCommand("o.json", '{"n": ${item.n}, "é": [1]}', "json")).unwrap()
    assert planned.content == '{\n  "n": 3,\n  "é": [\n    1\n  ]\n}\n'.encode()


def test_write_file_yaml_content_is_validated_and_rewritten_in_order() -> None:
    planned = plan(WriteFileCommand("o.yml", "b: 1\na: [x, ${item.n}]\n", "yaml")).unwrap()
    assert planned.content == b"b: 1\na:\n- x\n- 3\n"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (
            WriteFileCommand("../${DIR}/x", "c"),
            "write_file: path '../reports/x' leaves the worktree",
        ),
        (
            WriteFileCommand("/etc/${DIR}", "c"),
            "write_file: expected a relative path inside the worktree, found absolute "
            "'/etc/reports'",
        ),
        (
            WriteFileCommand("${TOKEN}/../..", "c"),
            "write_file: path '***/../..' leaves the worktree",
        ),
        (
            WriteFileCommand("${DIR}/..", "c"),
            "write_file: expected a file path, found 'reports/..', the worktree itself",
        ),
        (
            WriteFileCommand("${TOKEN}/..", "c"),
            "write_file: expected a file path, found '***/..', the worktree itself",
        ),
        (
            WriteFileCommand("${item.nope}", "c"),
            "unresolved reference ${item.nope}: item has no field 'nope'",
        ),
        (
            WriteFileCommand("x", "${item.nope}"),
            "unresolved reference ${item.nope}: item has no field 'nope'",
        ),
        (
            WriteFileCommand("${TOKEN}.json", "{oops", "json"),
            "write_file ***.json: content is not valid JSON: "
            "Expecting property name enclosed in double quotes at line 1",
        ),
        (
            WriteFileCommand("c.yml", "a: [1, ${TOKEN}", "yaml"),
            "write_file c.yml: content is not valid YAML: while parsing a flow sequence: "
            "expected ',' or ']', but got '<stream end>' at line 1",
        ),
    ],
)
def test_write_file_problems(command: WriteFileCommand, message: str) -> None:
    assert problem(command) == message


def test_a_path_problem_is_checked_before_the_content() -> None:
    assert problem(WriteFileCommand("/abs", "${item.nope}")).startswith(
        "write_file: expected a relative path"
    )


# --- safe_relative_path -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        ("a.txt", "a.txt"),
        ("./a/b/../c.txt", "a/c.txt"),
        ("a//b/", "a/b"),
        ("a/..", "."),
        (".", "."),
        ("..a/b", "..a/b"),
        ("a/../..b", "..b"),
    ],
)
def test_safe_relative_path_normalises(path: str, normal: str) -> None:
    assert safe_relative_path(path) == Success(normal)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "expected a relative path inside the worktree, found ''"),
        ("a\x00b", "expected a relative path inside the worktree, found 'a\\x00b'"),
        (
            "/etc/passwd",
            "expected a relative path inside the worktree, found absolute '/etc/passwd'",
        ),
        ("//x", "expected a relative path inside the worktree, found absolute '//x'"),
        ("..", "path '..' leaves the worktree"),
        ("../x", "path '../x' leaves the worktree"),
        ("a/../../x", "path 'a/../../x' leaves the worktree"),
        ("./..", "path './..' leaves the worktree"),
    ],
)
def test_safe_relative_path_refuses(path: str, message: str) -> None:
    assert safe_relative_path(path) == Failure(message)


@given(st.lists(st.sampled_from(["a", "b", ".", "..", ""]), min_size=1, max_size=8))
def test_an_accepted_path_never_climbs_out(parts: list[str]) -> None:
    path = "/".join(parts)
    result = safe_relative_path(path)
    depth = 0
    climbs = False
    for part in path.split("/"):
        if part == "..":
            depth -= 1
            climbs = climbs or depth < 0
        elif part not in ("", "."):
            depth += 1
    assert isinstance(result, Success) == (not climbs and not path.startswith("/") and path != "")
    if isinstance(result, Success):
        normal = result.unwrap()
        assert not normal.startswith("/")
        assert ".." not in normal.split("/")


# --- file_content -----------------------------------------------------------------------------


def test_text_content_is_utf8_as_is() -> None:
    assert file_content("né\r\n  x", "text") == Success("né\r\n  x".encode())


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_content_refuses_what_is_not_json(constant: str) -> None:
    assert file_content(f"[1, {constant}]", "json") == Failure(
        f"content is not valid JSON: {constant} is not JSON"
    )


def test_json_content_python_cannot_read_is_a_failure_not_a_crash() -> None:
    assert file_content("9" * 5000, "json") == Failure(
        "content is not valid JSON: Exceeds the limit (4300 digits) for integer string "
        "conversion: value has 5000 digits"
    )
    assert file_content("[" * 100_000 + "]" * 100_000, "json") == Failure(
        "content is not valid JSON: nested too deeply"
    )


def test_json_content_error_names_the_line() -> None:
    assert file_content('{\n  "a": 1,\n}', "json") == Failure(
        "content is not valid JSON: Expecting property name enclosed in double quotes at line 3"
    )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)


# PyYAML reads the JSON escapes of a surrogate pair as two characters: stay in the BMP.
bmp_text = st.text(st.characters(max_codepoint=0xFFFF), max_size=5)
bmp_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | bmp_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(bmp_text, children, max_size=3)
    ),
    max_leaves=10,
)


@given(json_values)
def test_json_content_round_trips(value: Any) -> None:
    written = file_content(json.dumps(value), "json").unwrap()
    assert written.endswith(b"\n")
    assert json.loads(written) == value


@given(bmp_json_values)
@example({"k": "x\x85", "\x85": None})
def test_yaml_content_round_trips(value: Any) -> None:
    written = file_content(json.dumps(value), "yaml").unwrap()
    assert yaml.safe_load(written) == value


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a: b: c", "mapping values are not allowed here at line 1"),
        (
            "a:\n  - x\n - y",
            "while parsing a block mapping: expected <block end>, but found "
            "'<block sequence start>' at line 3",
        ),
        (
            "a: 1\n---\nb: 2",
            "expected a single document in the stream: but found another document at line 2",
        ),
        ("day: 2024-02-30", "day is out of range for month"),
        ("when: 2024-13-01", "month must be in 1..12"),
        ("[" * 5000, "nested too deeply"),
        (
            "x: !!python/object:os.system y",
            "could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object:os.system' at line 1",
        ),
    ],
)
def test_yaml_content_problems(content: str, message: str) -> None:
    assert file_content(content, "yaml") == Failure(f"content is not valid YAML: {message}")


def test_yaml_content_is_written_readably_unless_it_holds_a_next_line_character() -> None:
    assert file_content('{"name": "Zoë ✓"}', "yaml") == Success("name: Zoë ✓\n".encode())
    assert file_content('{"name": "Zoë\\u0085"}', "yaml") == Success(b'name: "Zo\\xEB\\N"\n')


def test_yaml_problems_never_quote_the_content() -> None:
    failure = file_content(f"key: {SECRET}: more", "yaml").failure()
    assert SECRET not in failure


def test_plan_error_str_is_its_message() -> None:
    assert str(StepPlanError("why")) == "why"

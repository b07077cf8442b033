"""Handlers: on_failure in every form Prodigy accepts, and on_success."""

from __future__ import annotations

from pure.workflow import ClaudeCommand, OnFailure, ShellCommand, Step
from tests.pure.workflow_helpers import only_problem, parse_ok, with_step


def step_of(text: str) -> Step:
    return parse_ok(with_step(text)).map.agent_template[0]


def handler_of(text: str) -> OnFailure | None:
    return step_of(text).on_failure


def test_on_failure_true_ignores_the_failure_and_false_is_the_default() -> None:
    assert handler_of("shell: a\non_failure: true") == OnFailure(fail_workflow=False)
    assert handler_of("shell: a\non_failure: false") is None


def test_on_failure_command_strings_are_claude_when_they_start_with_a_slash() -> None:
    assert handler_of("shell: a\non_failure: /fix ${shell.output}") == OnFailure(
        (Step(ClaudeCommand("/fix ${shell.output}")),)
    )
    assert handler_of("shell: a\non_failure: [npm ci, /fix, {shell: retry, timeout: 5}]") == (
        OnFailure(
            (
                Step(ShellCommand("npm ci")),
                Step(ClaudeCommand("/fix")),
                Step(ShellCommand("retry"), timeout=5.0),
            )
        )
    )


def test_on_failure_step_with_attempts_and_fail_workflow() -> None:
    handler = handler_of(
        """
        shell: just test
        on_failure:
          claude: /debug ${shell.output}
          max_attempts: 5
          fail_workflow: true
          commit_required: true
        """
    )
    assert handler == OnFailure(
        (Step(ClaudeCommand("/debug ${shell.output}"), commit_required=True),),
        max_attempts=5,
        fail_workflow=True,
    )


def test_on_failure_without_a_command_controls_retries_and_failure_only() -> None:
    assert handler_of("shell: a\non_failure: {fail_workflow: true}") == OnFailure(
        fail_workflow=True
    )
    assert handler_of("shell: a\non_failure: {max_retries: 3}") == OnFailure(max_attempts=3)


def test_on_failure_detailed_form() -> None:
    handler = handler_of(
        """
        shell: deploy
        on_failure:
          commands:
            - shell: rollback
              continue_on_error: true
            - claude: /analyze
            - notify-team
            - shell: keep
              continue_on_error: false
          fail_workflow: true
          handler_failure_fatal: true
          timeout: 300
          max_attempts: 2
        """
    )
    assert handler == OnFailure(
        (
            Step(ShellCommand("rollback"), on_failure=OnFailure()),
            Step(ClaudeCommand("/analyze")),
            Step(ShellCommand("notify-team")),
            Step(ShellCommand("keep")),
        ),
        max_attempts=2,
        fail_workflow=True,
        handler_failure_fatal=True,
        handler_timeout=300.0,
    )


def test_on_failure_problems() -> None:
    both = only_problem(with_step("shell: a\non_failure: {max_attempts: 2, max_retries: 3}"))
    assert both.message == "max_retries is another name for max_attempts; give only one"
    assert only_problem(with_step("shell: a\non_failure: {shell: b, max_attempts: 0}")).path == (
        "map.agent_template[0].on_failure.max_attempts"
    )
    assert only_problem(
        with_step("shell: a\non_failure: {shell: b, retry_original: true}")
    ).message == (
        "unsupported: step key 'retry_original' (a deprecated Prodigy flag; max_attempts > 1"
        " retries) is not supported by forkmerge"
    )
    assert only_problem(with_step("shell: a\non_failure: {timeout: 3}")).message.startswith(
        "a step needs exactly one of"
    )
    strategy = only_problem(with_step("shell: a\non_failure: {commands: [x], strategy: cleanup}"))
    assert strategy.message == (
        "unsupported: on_failure key 'strategy' (Prodigy handler strategies)"
        " is not supported by forkmerge"
    )
    assert only_problem(with_step("shell: a\non_failure: {commands: 3}")).message == (
        "expected a step (a mapping with shell, claude or write_file), found an integer (3)"
    )
    assert only_problem(with_step("shell: a\non_failure: ['']")).path == (
        "map.agent_template[0].on_failure[0]"
    )
    assert only_problem(with_step("shell: a\non_failure: [[x]]")).message.startswith(
        "expected a step"
    )


def test_continue_on_error_problems() -> None:
    conflict = only_problem(
        with_step(
            """
            shell: a
            on_failure:
              commands:
                - shell: b
                  continue_on_error: true
                  on_failure: /fix
            """
        )
    )
    assert conflict.message == "give either continue_on_error or on_failure, not both"
    assert only_problem(
        with_step("shell: a\non_failure: {commands: [{shell: b, continue_on_error: 1}]}")
    ).message == ("expected true or false, found an integer (1)")
    assert only_problem(
        with_step("shell: a\non_failure: {commands: [{continue_on_error: true}]}")
    ).message.startswith("a step needs exactly one of")
    outside = only_problem(with_step("shell: a\non_failure: [{shell: b, continue_on_error: true}]"))
    assert outside.message.startswith("unknown key 'continue_on_error'")


def test_on_success_is_a_step_or_a_list() -> None:
    assert step_of("shell: a\non_success: {shell: b, capture: m}").on_success == (
        Step(ShellCommand("b"), capture="m"),
    )
    assert step_of("shell: a\non_success: [notify, /doc]").on_success == (
        Step(ShellCommand("notify")),
        Step(ClaudeCommand("/doc")),
    )
    assert only_problem(with_step("shell: a\non_success: [{shell: ''}]")).path == (
        "map.agent_template[0].on_success[0].shell"
    )


def test_nested_handlers_are_steps_with_their_own_handlers() -> None:
    step = step_of(
        """
        shell: a
        on_failure:
          shell: b
          on_failure:
            claude: /c
        """
    )
    assert step.on_failure == OnFailure(
        (Step(ShellCommand("b"), on_failure=OnFailure((Step(ClaudeCommand("/c")),))),)
    )

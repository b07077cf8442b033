"""error_policy with its shortcut keys, and map.timeout_config."""

from __future__ import annotations

import pytest

from pure.workflow import (
    Backoff,
    CircuitBreakerConfig,
    ErrorCollection,
    ErrorPolicy,
    RetryConfig,
    TimeoutConfig,
)
from tests.pure.workflow_helpers import MINIMAL, only_problem, parse_ok, problems, with_map


def policy_of(extra: str) -> ErrorPolicy:
    return parse_ok(MINIMAL + extra).error_policy


def test_the_default_policy_is_prodigys() -> None:
    assert parse_ok(MINIMAL).error_policy == ErrorPolicy(
        on_item_failure="dlq",
        continue_on_failure=True,
        max_failures=None,
        failure_threshold=None,
        error_collection=ErrorCollection("aggregate"),
        retry_config=None,
        circuit_breaker=None,
    )


def test_a_full_error_policy() -> None:
    policy = policy_of(
        """\
error_policy:
  on_item_failure: retry
  continue_on_failure: false
  max_failures: 4
  failure_threshold: 0.2
  error_collection: batched:10
  retry_config:
    max_attempts: 5
    backoff:
      linear: {initial: 2s, increment: 500ms}
  circuit_breaker:
    failure_threshold: 3
    success_threshold: 2
    timeout: 1m
    half_open_requests: 1
"""
    )
    assert policy == ErrorPolicy(
        on_item_failure="retry",
        continue_on_failure=False,
        max_failures=4,
        failure_threshold=0.2,
        error_collection=ErrorCollection("batched", 10),
        retry_config=RetryConfig(5, Backoff("linear", initial_delay=2.0, increment=0.5)),
        circuit_breaker=CircuitBreakerConfig(3, 2, 60.0, 1),
    )


def test_top_level_shortcuts_fill_and_override_the_policy() -> None:
    policy = policy_of(
        """\
on_item_failure: skip
max_failures: 7
error_policy:
  on_item_failure: stop
  failure_threshold: 0.5
  error_collection: immediate
"""
    )
    assert policy.on_item_failure == "skip"
    assert policy.max_failures == 7
    assert policy.failure_threshold == 0.5
    assert policy.error_collection == ErrorCollection("immediate")


def test_retry_without_retry_config_uses_the_default_retry() -> None:
    assert policy_of("on_item_failure: retry\n").retry_config == RetryConfig(3, Backoff())


def test_retry_config_without_retry_is_a_problem() -> None:
    problem = only_problem(MINIMAL + "error_policy:\n  retry_config: {max_attempts: 2}\n")
    assert problem.message == (
        "retry_config has no effect unless on_item_failure is retry (it is dlq)"
    )
    assert problem.path == "error_policy.retry_config"


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [
        ("backoff: fixed", Backoff("fixed", initial_delay=1.0)),
        ("backoff: fibonacci\n    initial_delay: 3s", Backoff("fibonacci", initial_delay=3.0)),
        ("initial_delay: 0", Backoff("exponential", initial_delay=0.0)),
        ("backoff: {fixed: {delay: 4}}", Backoff("fixed", initial_delay=4.0)),
        (
            "backoff: {exponential: {initial: 1s, multiplier: 3}}",
            Backoff("exponential", 1.0, multiplier=3.0),
        ),
        ("backoff: {fibonacci: {}}", Backoff("fibonacci")),
    ],
)
def test_backoff_forms(backoff: str, expected: Backoff) -> None:
    policy = policy_of(f"on_item_failure: retry\nerror_policy:\n  retry_config:\n    {backoff}\n")
    assert policy.retry_config == RetryConfig(3, expected)


@pytest.mark.parametrize(
    ("backoff", "message"),
    [
        ("backoff: random", "expected one of: fixed, linear, exponential, fibonacci"),
        ("backoff: [fixed]", "expected a strategy name or {strategy: {...}}, found a list"),
        ("backoff: {fixed: {}, linear: {}}", "expected exactly one of: fixed, linear"),
        ("backoff: {random: {}}", "expected exactly one of: fixed, linear"),
        ("backoff: {fixed: 3}", "expected a mapping, found an integer (3)"),
        ("backoff: {fixed: {initial: 1}}", "unknown key 'initial'"),
        (
            "initial_delay: 1\n    backoff: {fixed: {delay: 2}}",
            "give the initial delay either in retry_config.initial_delay or here, not both",
        ),
        ("max_attempts: 0", "expected an integer >= 1, found 0"),
        ("initial_delay: -1", "expected a duration >= 0"),
        ("jitter: true", "unknown key 'jitter'"),
    ],
)
def test_retry_config_problems(backoff: str, message: str) -> None:
    problem = only_problem(
        MINIMAL + f"on_item_failure: retry\nerror_policy:\n  retry_config:\n    {backoff}\n"
    )
    assert problem.message.startswith(message)


def test_retry_config_must_be_a_mapping() -> None:
    problem = only_problem(MINIMAL + "on_item_failure: retry\nerror_policy:\n  retry_config: 3\n")
    assert problem.message == "expected a mapping, found an integer (3)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("aggregate", ErrorCollection("aggregate")),
        ("immediate", ErrorCollection("immediate")),
        ("'batched: 5'", ErrorCollection("batched", 5)),
        ("{batched: {size: 2}}", ErrorCollection("batched", 2)),
    ],
)
def test_error_collection_forms(text: str, expected: ErrorCollection) -> None:
    assert policy_of(f"error_collection: {text}\n").error_collection == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("batched", "expected aggregate, immediate, 'batched:N' or {batched: {size: N}}"),
        ("batched:0", "expected aggregate, immediate"),
        ("{batched: 3}", "expected {size: N}, found an integer (3)"),
        ("{batched: {}}", "missing required key 'size'"),
        ("{batched: {size: 0}}", "expected an integer >= 1, found 0"),
        ("{batched: {size: 1, x: 2}}", "unknown key 'x'"),
        ("{other: 1}", "expected aggregate, immediate"),
        ("3", "expected aggregate, immediate"),
    ],
)
def test_error_collection_problems(text: str, message: str) -> None:
    assert only_problem(MINIMAL + f"error_collection: {text}\n").message.startswith(message)


def test_policy_value_problems() -> None:
    found = problems(
        MINIMAL
        + "error_policy:\n  on_item_failure: panic\n  continue_on_failure: 1\n"
        + "  max_failures: -1\n  failure_threshold: 2\n  wat: 1\n"
    )
    assert [p.path for p in found] == [
        "error_policy.on_item_failure",
        "error_policy.continue_on_failure",
        "error_policy.max_failures",
        "error_policy.failure_threshold",
        "error_policy.wat",
    ]


def test_custom_item_failure_handlers_are_unsupported() -> None:
    problem = only_problem(MINIMAL + "on_item_failure: custom:notify\n")
    assert problem.unsupported
    assert problem.message == (
        "unsupported: custom item-failure handler 'custom:notify' is not supported by forkmerge"
        " (nor implemented by Prodigy)"
    )


def test_error_policy_must_be_a_mapping_and_circuit_breaker_too() -> None:
    assert only_problem(MINIMAL + "error_policy: dlq\n").message == (
        "expected a mapping, found a string ('dlq')"
    )
    assert only_problem(MINIMAL + "error_policy:\n  circuit_breaker: on\n").path == (
        "error_policy.circuit_breaker"
    )
    breaker = policy_of("error_policy:\n  circuit_breaker: {}\n").circuit_breaker
    assert breaker == CircuitBreakerConfig(5, 3, 30.0, 3)


# --- timeout_config -----------------------------------------------------------------------------


def timeouts_of(extra: str, steps: str = "- shell: a\n- claude: /b\n") -> TimeoutConfig:
    return parse_ok(with_map(extra, steps=steps)).map.timeout_config


def test_timeout_config_in_full() -> None:
    config = timeouts_of(
        """
        timeout_config:
          agent_timeout_secs: 600
          timeout_policy: hybrid
          cleanup_grace_period_secs: 10
          timeout_action: graceful_terminate
          enable_monitoring: true
          command_timeouts: {claude: 300, shell: 60, claude_1: 900}
        """
    )
    assert config == TimeoutConfig(
        agent_timeout_secs=600.0,
        command_timeouts={"claude": 300.0, "shell": 60.0, "claude_1": 900.0},
        timeout_policy="hybrid",
        cleanup_grace_period_secs=10.0,
        timeout_action="graceful_terminate",
    )


def test_prodigys_variant_spellings_are_accepted() -> None:
    config = timeouts_of(
        "timeout_config: {timeout_policy: PerCommand, timeout_action: GracefulTerminate}"
    )
    assert (config.timeout_policy, config.timeout_action) == ("per_command", "graceful_terminate")


def test_timeout_config_defaults() -> None:
    assert timeouts_of("timeout_config: {}") == TimeoutConfig()


def test_monitoring_cannot_be_switched_off() -> None:
    problem = only_problem(with_map("timeout_config: {enable_monitoring: false}"))
    assert problem.unsupported
    assert problem.path == "map.timeout_config.enable_monitoring"


def test_timeout_config_problems() -> None:
    found = problems(
        with_map(
            """
            timeout_config:
              timeout_policy: sometimes
              timeout_action: explode
              cleanup_grace_period_secs: -1
              command_timeouts: {python: 3, shell: 0, claude_7: 1, shell_1: 2}
            """,
            steps="- shell: a\n- claude: /b\n",
        )
    )
    assert [(p.path.removeprefix("map.timeout_config."), p.message) for p in found] == [
        ("timeout_policy", "expected one of: per_agent, per_command, hybrid, found a string"
         " ('sometimes')"),
        ("timeout_action", "expected one of: dlq, skip, fail, graceful_terminate, found a string"
         " ('explode')"),
        ("cleanup_grace_period_secs", "expected a duration >= 0 (seconds, or a text like '90s',"
         " '5m'), found an integer (-1)"),
        ("command_timeouts.python", "expected a key like claude, shell or claude_0,"
         " found 'python'"),
        ("command_timeouts.shell", "expected a duration > 0 (seconds, or a text like '90s', '5m'),"
         " found an integer (0)"),
    ]  # fmt: skip


def test_command_timeouts_must_name_existing_steps_of_their_kind() -> None:
    found = problems(
        with_map(
            "timeout_config: {command_timeouts: {claude_7: 1, shell_1: 2, write_file_0: 3}}",
            steps="- shell: a\n- claude: /b\n",
        )
    )
    assert [p.message for p in found] == [
        "agent_template has 2 steps; there is no step 7",
        "agent_template[1] is a claude step, not shell",
        "agent_template[0] is a shell step, not write_file",
    ]
    write = timeouts_of(
        "timeout_config: {command_timeouts: {write_file_0: 3}}",
        steps="- write_file: {path: a, content: b}\n",
    )
    assert write.command_timeouts == {"write_file_0": 3.0}


def test_timeout_config_must_be_a_mapping_and_command_timeouts_too() -> None:
    assert only_problem(with_map("timeout_config: 30")).message == (
        "expected a mapping, found an integer (30)"
    )
    assert only_problem(with_map("timeout_config: {command_timeouts: [1]}")).message == (
        "expected a mapping like {claude: 300, shell_2: 60}, found a list"
    )

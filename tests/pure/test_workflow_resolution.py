"""Run-time settings of a workflow: profiles, secrets, max_parallel, agent and command timeouts."""

from __future__ import annotations

import pytest
from returns.result import Failure, Success

from pure.workflow import EnvValue, Workflow
from pure.workflow_resolution import (
    agent_timeout,
    command_timeout,
    effective_env,
    env_text,
    resolve_max_parallel,
    secret_names,
    secret_values,
)
from tests.pure.workflow_helpers import parse_ok, with_map

PROFILED = """
name: p
env:
  MODE: normal
  TOKEN: {secret: true, value: base-token}
  EMPTY_SECRET: {secret: true, value: ""}
  WIDTH: "2"
profiles:
  development:
    MODE: debug
    TOKEN: dev-token
    WIDTH: "6"
  production:
    description: Production
    PASSWORD: {secret: true, value: hunter2}
map:
  input: items.json
  agent_template:
    - shell: echo
  max_parallel: ${WIDTH}
"""


def workflow() -> Workflow:
    return parse_ok(PROFILED)


def test_no_profile_is_the_env_itself() -> None:
    env = effective_env(workflow()).unwrap()
    assert env == workflow().env


def test_a_profile_overrides_and_adds_and_secrets_stay_secret() -> None:
    env = effective_env(workflow(), "development").unwrap()
    assert env["MODE"] == EnvValue("debug")
    assert env["TOKEN"] == EnvValue("dev-token", secret=True)
    assert env_text(env) == {
        "MODE": "debug",
        "TOKEN": "dev-token",
        "EMPTY_SECRET": "",
        "WIDTH": "6",
    }
    production = effective_env(workflow(), "production").unwrap()
    assert production["PASSWORD"] == EnvValue("hunter2", secret=True)
    assert production["TOKEN"] == EnvValue("base-token", secret=True)


def test_an_unknown_profile_is_a_problem_naming_the_known_ones() -> None:
    result = effective_env(workflow(), "developmnet")
    assert isinstance(result, Failure)
    (problem,) = result.failure().problems
    assert problem.message == (
        "unknown profile 'developmnet' (known profiles: development, production);"
        " did you mean 'development'?"
    )
    assert (problem.path, problem.line, problem.source) == ("profiles", 7, "wf.yml")
    plain = parse_ok(with_map(""))
    failure = effective_env(plain, "ci")
    assert isinstance(failure, Failure)
    (none_defined,) = failure.failure().problems
    assert none_defined.message == "unknown profile 'ci' (known profiles: none are defined)"
    assert (none_defined.line, none_defined.column) == (1, 1)


def test_secret_names_and_values_cover_env_and_all_profiles() -> None:
    assert secret_names(workflow()) == {"TOKEN", "EMPTY_SECRET", "PASSWORD"}
    assert secret_values(workflow()) == {"base-token", "dev-token", "hunter2"}


def test_max_parallel_resolution() -> None:
    assert resolve_max_parallel(workflow(), {"WIDTH": " 6 "}) == Success(6)
    assert resolve_max_parallel(parse_ok(with_map("max_parallel: 3")), {}) == Success(3)
    bare = parse_ok(with_map("max_parallel: $JOBS"))
    assert resolve_max_parallel(bare, {"JOBS": "12"}) == Success(12)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "max_parallel is ${WIDTH}, but WIDTH is not set"),
        ({"WIDTH": "wide"}, "max_parallel is ${WIDTH}, but WIDTH is 'wide', not an integer >= 1"),
        ({"WIDTH": "0"}, "max_parallel is ${WIDTH}, but WIDTH is '0', not an integer >= 1"),
    ],
)
def test_max_parallel_resolution_problems(env: dict[str, str], message: str) -> None:
    result = resolve_max_parallel(workflow(), env)
    assert isinstance(result, Failure)
    (problem,) = result.failure().problems
    assert problem.message == message
    assert (problem.path, problem.line) == ("map.max_parallel", 19)


def test_a_secret_max_parallel_value_is_not_shown() -> None:
    secret = parse_ok(
        with_map("max_parallel: ${TOKEN}") + "env:\n  TOKEN: {secret: true, value: '4'}\n"
    )
    result = resolve_max_parallel(secret, {"TOKEN": "s3cr3t"})
    assert isinstance(result, Failure)
    assert "s3cr3t" not in str(result.failure())
    assert "TOKEN is a secret value" in str(result.failure())


STEPS = """
- shell: a
- claude: /b
- write_file: {path: p, content: c}
- shell: d
  timeout: 7
"""


def timeouts(config: str) -> list[float | None]:
    map_config = parse_ok(with_map(config, steps=STEPS)).map
    return [command_timeout(map_config, index) for index in range(4)]


def test_command_timeouts_by_index_kind_and_step() -> None:
    assert timeouts("") == [None, None, None, 7.0]
    assert timeouts("timeout_config: {command_timeouts: {shell: 60, claude_1: 300}}") == [
        60.0,
        300.0,
        None,
        7.0,
    ]
    assert timeouts("timeout_config: {command_timeouts: {write_file: 5, shell_0: 9}}") == [
        9.0,
        None,
        5.0,
        7.0,
    ]


def test_per_command_policy_gives_each_command_the_agent_timeout() -> None:
    config = "agent_timeout_secs: 100\ntimeout_config: {timeout_policy: per_command}"
    assert timeouts(config) == [100.0, 100.0, 100.0, 7.0]
    map_config = parse_ok(with_map(config, steps=STEPS)).map
    assert agent_timeout(map_config) is None


@pytest.mark.parametrize("policy", ["per_agent", "hybrid"])
def test_per_agent_and_hybrid_bound_the_agent(policy: str) -> None:
    config = f"agent_timeout_secs: 100\ntimeout_config: {{timeout_policy: {policy}}}"
    map_config = parse_ok(with_map(config, steps=STEPS)).map
    assert agent_timeout(map_config) == 100.0
    assert timeouts(config) == [None, None, None, 7.0]

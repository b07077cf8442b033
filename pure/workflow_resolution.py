"""Settings of a parsed workflow that depend on the run: profile, environment, per-step timeouts.

Parsing keeps what the file says; these functions answer what applies for
one run: the environment after a profile's overrides, the secret values to
mask, ``max_parallel`` once its ``${VAR}`` is known, and the time limits of
an agent and of each of its commands.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from returns.result import Failure, Result, Success

from pure.map_parsing import MAX_PARALLEL_REFERENCE
from pure.workflow import ClaudeCommand, EnvValue, MapConfig, ShellCommand, Workflow
from pure.workflow_error import Location, Problem, WorkflowError

__all__ = [
    "agent_timeout",
    "command_timeout",
    "effective_env",
    "env_text",
    "resolve_max_parallel",
    "secret_names",
    "secret_values",
]


def _failure(
    workflow: Workflow, path: str, message: str, *, expected: str, found: str
) -> Failure[WorkflowError]:
    location = workflow.locations.get(path, Location(1, 1))
    problem = Problem(
        path, location.line, location.column, expected, found, message, workflow.source
    )
    return Failure(WorkflowError((problem,)))


def effective_env(
    workflow: Workflow, profile: str | None = None
) -> Result[dict[str, EnvValue], WorkflowError]:
    """The workflow's variables with ``profile``'s overrides applied (``None``: no profile).

    A variable that is secret in ``env`` stays secret when a profile
    overrides it. An unknown profile is a failure naming the known ones.
    """
    env = dict(workflow.env)
    if profile is None:
        return Success(env)
    if profile not in workflow.profiles:
        known = sorted(workflow.profiles)
        close = difflib.get_close_matches(profile, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        listing = ", ".join(known) if known else "none are defined"
        return _failure(
            workflow,
            "profiles",
            f"unknown profile {profile!r} (known profiles: {listing}){hint}",
            expected="one of: " + listing,
            found=repr(profile),
        )
    for name, value in workflow.profiles[profile].items():
        secret = value.secret or (name in env and env[name].secret)
        env[name] = EnvValue(value.value, secret)
    return Success(env)


def env_text(env: Mapping[str, EnvValue]) -> dict[str, str]:
    """The variables as plain name-to-text pairs (what commands see)."""
    return {name: value.value for name, value in env.items()}


def secret_names(workflow: Workflow) -> frozenset[str]:
    """Names of variables that are secret in ``env`` or in any profile."""
    names = {name for name, value in workflow.env.items() if value.secret}
    for overrides in workflow.profiles.values():
        names.update(name for name, value in overrides.items() if value.secret)
    return frozenset(names)


def secret_values(workflow: Workflow) -> frozenset[str]:
    """Every non-empty text a secret variable has in ``env`` or any profile, for masking.

    These are the texts as written. A secret written as a reference (``value:
    "${GITHUB_TOKEN}"``) gets its real value only when the run resolves it;
    the runner masks that resolved value too, by :func:`secret_names`.
    """
    names = secret_names(workflow)
    values = {value.value for name, value in workflow.env.items() if name in names}
    for overrides in workflow.profiles.values():
        values.update(value.value for name, value in overrides.items() if name in names)
    return frozenset(value for value in values if value)


def resolve_max_parallel(workflow: Workflow, env: Mapping[str, str]) -> Result[int, WorkflowError]:
    """``map.max_parallel`` as a number, resolving ``${VAR}`` / ``$VAR`` in ``env``.

    ``env`` is the run's environment: :func:`env_text` of :func:`effective_env`,
    with the process environment underneath it if the caller wants Prodigy's
    fallback to it.
    """
    value = workflow.map.max_parallel
    if isinstance(value, int):
        return Success(value)
    match = MAX_PARALLEL_REFERENCE.fullmatch(value)
    assert match is not None, "the parser admits only ${VAR} or $VAR here"
    name = match.group("braced") or match.group("bare")
    if name not in env:
        return _failure(
            workflow,
            "map.max_parallel",
            f"max_parallel is {value}, but {name} is not set",
            expected=f"a variable {name} holding an integer >= 1",
            found="no such variable",
        )
    text = env[name].strip()
    if not text.isdigit() or int(text) < 1:
        shown = "a secret value" if name in secret_names(workflow) else repr(text)
        return _failure(
            workflow,
            "map.max_parallel",
            f"max_parallel is {value}, but {name} is {shown}, not an integer >= 1",
            expected="an integer >= 1",
            found=shown,
        )
    return Success(int(text))


def agent_timeout(map_config: MapConfig) -> float | None:
    """Seconds one agent may run in all; ``None`` for no limit.

    ``per_command`` applies the agent timeout to each command instead.
    """
    if map_config.timeout_config.timeout_policy == "per_command":
        return None
    return map_config.agent_timeout_secs


def command_timeout(map_config: MapConfig, index: int) -> float | None:
    """Seconds ``agent_template[index]`` may run; ``None`` for no limit of its own.

    The step's own ``timeout`` wins; then ``command_timeouts`` for
    ``<kind>_<index>``, then for ``<kind>``; under ``per_command`` the agent
    timeout is the fallback. ``per_agent`` and ``hybrid`` behave alike: the
    agent limit applies as a whole, and command limits where given.
    """
    step = map_config.agent_template[index]
    if step.timeout is not None:
        return step.timeout
    command = step.command
    kind = (
        "shell"
        if isinstance(command, ShellCommand)
        else "claude"
        if isinstance(command, ClaudeCommand)
        else "write_file"
    )
    config = map_config.timeout_config
    for key in (f"{kind}_{index}", kind):
        if key in config.command_timeouts:
            return config.command_timeouts[key]
    if config.timeout_policy == "per_command":
        return map_config.agent_timeout_secs
    return None

"""The map phase: load the work items, plan the assignments, run one agent per item."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Never

from returns.result import Failure, Result, Success

from effects import Effect
from effects._service import call_map_service
from envs.environment import MapEnv
from envs.protocols import CommandResult, CommandSpec
from phases.results import MapResult, PhaseFailure
from phases.scheduler import schedule_agents
from pure.interpolation import try_interpolate
from pure.masking import mask
from pure.step_commands import safe_relative_path
from pure.work_planning import WorkAssignment, plan_work
from pure.workflow import MapConfig, Workflow

__all__ = ["load_work_items", "plan_assignments", "run_map_phase"]


def _looks_like_path(text: str) -> bool:
    return not any(char.isspace() or char in "|;&<>$`'\"(){}" for char in text)


def _parse_document(text: str, origin: str) -> Result[Any, PhaseFailure]:
    try:
        return Success(json.loads(text))
    except json.JSONDecodeError as error:
        return Failure(
            PhaseFailure.of_input(
                f"map.input: {origin} is not valid JSON: {error.msg} "
                f"at line {error.lineno} column {error.colno}",
            )
        )


def load_work_items(
    config: MapConfig, variables: Mapping[str, Any]
) -> Effect[Any, PhaseFailure, MapEnv]:
    """Load ``map.input`` in the job worktree: a JSON file, or a command that prints JSON.

    The input is interpolated first. When it names a file in the job
    worktree (after setup, which may have created it) that file is read;
    otherwise a path-like input that does not exist is an error, and
    anything else runs as a shell command whose stdout must be JSON.
    """

    async def load(env: MapEnv) -> Result[Any, PhaseFailure]:
        worktree = env.job.job_worktree
        interpolated = try_interpolate(config.input, variables, context="text")
        if isinstance(interpolated, Failure):
            return Failure(PhaseFailure.of_input(f"map.input: {interpolated.failure()}"))
        text = interpolated.unwrap().strip()
        relative = safe_relative_path(text)
        if isinstance(relative, Success):
            content = await env.services.worktrees.read_file(worktree, relative.unwrap())
            if isinstance(content, Success):
                return _parse_document(content.unwrap().decode(errors="replace"), f"file {text}")
            if _looks_like_path(text):
                return Failure(
                    PhaseFailure.of_input(
                        f"map.input: expected a JSON file or a command, found no file {text!r} "
                        f"in the job worktree ({content.failure()})",
                    )
                )
        command = try_interpolate(config.input, variables, context="shell").unwrap()
        spec = CommandSpec(
            (*env.config.shell, command),
            worktree.path,
            {**env.config.process_env, **env.config.workflow_env},
            None,
            mask(command, env.config.secrets),
        )
        result: CommandResult = await env.services.executor.run(spec)
        if not result.succeeded:
            return Failure(
                PhaseFailure(
                    "map",
                    f"map.input command {spec.display!r} failed with exit code "
                    f"{result.exit_code}: {mask(result.stderr.strip()[-500:], env.config.secrets)}",
                )
            )
        return _parse_document(result.stdout, f"the output of {spec.display!r}")

    return call_map_service(load)


def plan_assignments(
    config: MapConfig, document: Any
) -> Effect[list[WorkAssignment], PhaseFailure, object]:
    """Select, filter, sort and slice the items of ``document`` into assignments."""
    return Effect.from_result(
        plan_work(document, config).alt(
            lambda error: PhaseFailure.of_input(f"planning work items: {error}")
        )
    )


def run_map_phase(
    workflow: Workflow,
    assignments: Sequence[WorkAssignment],
    variables: Mapping[str, Any],
    *,
    max_parallel: int,
    keep_failed: bool = False,
    attempts_so_far: Mapping[str, int] | None = None,
) -> Effect[MapResult, Never, MapEnv]:
    """Run one agent per assignment, at most ``max_parallel`` at once; never fails.

    One agent's failure never stops the others (it is recorded in its
    :class:`AgentResult`) unless the workflow's ``error_policy`` says to
    stop; see :func:`phases.scheduler.schedule_agents`, which also records
    every item's progress in the job's event log. Cancellation cancels
    every running agent, each of which releases its worktree.
    """
    return schedule_agents(
        workflow,
        assignments,
        variables,
        max_parallel=max_parallel,
        keep_failed=keep_failed,
        attempts_so_far=attempts_so_far,
    )

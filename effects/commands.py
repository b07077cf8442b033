"""Command effects: run a phase's steps in a worktree, with captures, conditions and handlers.

Each step is planned by :func:`pure.step_commands.plan_step_command` (values
interpolated safely) and carried out by the environment's executor or
worktree manager. Secret values are masked in every output, record and error
this module produces.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Never

import attrs
from returns.result import Failure, Result, Success

from effects._effect import Effect
from effects._service import call_service, emit_event
from effects.worktree import head_commit
from envs.environment import ServiceEnv
from envs.protocols import CommandResult, CommandSpec, Worktree, WorktreeError
from pure.capture import convert_capture
from pure.filters import evaluate_condition
from pure.interpolation import try_interpolate
from pure.masking import mask
from pure.step_commands import (
    FileWrite,
    ProcessCommand,
    command_kind,
    plan_step_command,
    safe_relative_path,
)
from pure.workflow import Step

__all__ = [
    "CommandsOutcome",
    "StepTimeout",
    "own_timeout",
    "StepFailure",
    "StepRecord",
    "execute_commands",
    "run_step",
]

StepStatus = Literal["succeeded", "failed", "skipped", "recovered"]
OUTPUT_EXCERPT = 2000


def _excerpt(text: str, limit: int = OUTPUT_EXCERPT) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n... [{len(text) - limit} characters omitted] ...\n{text[-half:]}"


@attrs.frozen
class StepRecord:
    """What one step did: how it ended, its exit code, duration and an output excerpt."""

    index: int
    display: str
    status: StepStatus
    exit_code: int | None = None
    duration: float = 0.0
    output: str = ""


@attrs.frozen
class StepFailure:
    """A step that failed and was not handled: which one, why, and what it printed."""

    index: int
    display: str
    reason: str
    exit_code: int | None = None
    output: str = ""
    timed_out: bool = False

    def __str__(self) -> str:
        return f"step {self.index + 1} ({self.display}) failed: {self.reason}"


@attrs.frozen
class CommandsOutcome:
    """The variables after every step (captures included) and a record per step run."""

    variables: Mapping[str, Any]
    records: tuple[StepRecord, ...]


@attrs.frozen
class _Attempt:
    variables: Mapping[str, Any]
    record: StepRecord


StepTimeout = Callable[[int, Step], float | None]


def own_timeout(_index: int, step: Step) -> float | None:
    """The default :data:`StepTimeout`: the step's own ``timeout``."""
    return step.timeout


def _with_output(
    variables: Mapping[str, Any], step: Step, result: CommandResult, stdout: str, stderr: str
) -> Result[dict[str, Any], str]:
    """Variables updated with ``${shell.output}`` (or ``claude``) and the step's capture."""
    updated = dict(variables)
    kind = command_kind(step)
    outcome = {
        "output": stdout,
        "stderr": stderr,
        "exit_code": result.exit_code,
        "success": result.succeeded,
        "duration": result.duration,
    }
    updated[kind] = outcome
    if step.capture is None:
        return Success(updated)
    converted = convert_capture(stdout, step.capture_format)
    if isinstance(converted, Failure):
        return Failure(f"capture {step.capture!r} ({step.capture_format}): {converted.failure()}")
    value = converted.unwrap()
    if step.capture in (f"{kind}.output", "shell.output", "claude.output"):
        namespace = step.capture.split(".", 1)[0]
        updated[namespace] = {**outcome, "output": value}
    else:
        updated[step.capture] = value
        updated[f"{step.capture}.exit_code"] = result.exit_code
        updated[f"{step.capture}.success"] = result.succeeded
        updated[f"{step.capture}.stderr"] = stderr
    return Success(updated)


def _process_env(
    env: ServiceEnv, step: Step, variables: Mapping[str, Any]
) -> Result[dict[str, str], str]:
    process_env = {**env.config.process_env, **env.config.workflow_env}
    for name, template in step.env.items():
        value = try_interpolate(template, variables, context="text")
        if isinstance(value, Failure):
            return Failure(f"env {name}: {value.failure()}")
        process_env[name] = value.unwrap()
    return Success(process_env)


def _working_dir(worktree: Worktree, step: Step, variables: Mapping[str, Any]) -> Result[str, str]:
    if step.working_dir is None:
        return Success(worktree.path)
    interpolated = try_interpolate(step.working_dir, variables, context="text")
    if isinstance(interpolated, Failure):
        return Failure(f"working_dir: {interpolated.failure()}")
    relative = safe_relative_path(interpolated.unwrap())
    if isinstance(relative, Failure):
        return Failure(f"working_dir: {relative.failure()}")
    return Success(posixpath.join(worktree.path, relative.unwrap()))


def _run_process(
    step: Step,
    index: int,
    command: ProcessCommand,
    worktree: Worktree,
    variables: Mapping[str, Any],
    timeout: float | None,
) -> Effect[_Attempt, StepFailure, ServiceEnv]:
    async def run(env: ServiceEnv) -> Result[_Attempt, StepFailure]:
        secrets = env.config.secrets

        def failure(reason: str, **extra: Any) -> Failure[StepFailure]:
            return Failure(StepFailure(index, command.display, mask(reason, secrets), **extra))

        process_env = _process_env(env, step, variables)
        if isinstance(process_env, Failure):
            return failure(process_env.failure())
        cwd = _working_dir(worktree, step, variables)
        if isinstance(cwd, Failure):
            return failure(cwd.failure())
        spec = CommandSpec(
            command.argv,
            cwd.unwrap(),
            process_env.unwrap(),
            timeout,
            command.display,
            env.config.kill_grace,
        )
        result = await env.services.executor.run(spec)
        stdout, stderr = mask(result.stdout, secrets), mask(result.stderr, secrets)
        combined = _excerpt(stdout + ("\n" + stderr if stderr else ""))
        if not result.succeeded:
            reason = (
                f"timed out after {timeout:g} s"
                if result.timed_out and timeout is not None
                else f"exit code {result.exit_code}"
            )
            return failure(
                reason, exit_code=result.exit_code, output=combined, timed_out=result.timed_out
            )
        updated = _with_output(variables, step, result, stdout, stderr)
        if isinstance(updated, Failure):
            return failure(updated.failure(), exit_code=result.exit_code, output=combined)
        record = StepRecord(
            index, command.display, "succeeded", result.exit_code, result.duration, combined
        )
        return Success(_Attempt(updated.unwrap(), record))

    return Effect.from_async(run)


def _write_file(
    index: int, write: FileWrite, worktree: Worktree, variables: Mapping[str, Any]
) -> Effect[_Attempt, StepFailure, ServiceEnv]:
    return (
        call_service(
            lambda env: env.services.worktrees.write_file(
                worktree, write.path, write.content, create_dirs=write.create_dirs, mode=write.mode
            )
        )
        .map(lambda _: _Attempt(variables, StepRecord(index, write.display, "succeeded")))
        .map_err(lambda error: StepFailure(index, write.display, str(error)))
    )


def _attempt_once(
    step: Step,
    index: int,
    worktree: Worktree,
    variables: Mapping[str, Any],
    timeout_of: StepTimeout,
) -> Effect[_Attempt, StepFailure, ServiceEnv]:
    def plan(env: ServiceEnv) -> Effect[_Attempt, StepFailure, ServiceEnv]:
        planned = plan_step_command(
            step,
            variables,
            agent_command=env.config.agent_command,
            shell=env.config.shell,
            secrets=env.config.secrets,
        )
        if isinstance(planned, Failure):
            return Effect.fail(StepFailure(index, command_kind(step), str(planned.failure())))
        command = planned.unwrap()
        if isinstance(command, FileWrite):
            return _write_file(index, command, worktree, variables)
        timeout = timeout_of(index, step)
        return _run_process(step, index, command, worktree, variables, timeout)

    environment: Effect[ServiceEnv, Never, ServiceEnv] = Effect.ask()
    attempt = environment.and_then(plan)
    if not step.commit_required:
        return attempt
    return _head_or_failure(worktree, index).and_then(
        lambda before: attempt.and_then(
            lambda done: _head_or_failure(worktree, index).and_then(
                lambda after: (
                    Effect.pure(done)
                    if after != before
                    else Effect.fail(
                        StepFailure(
                            index,
                            done.record.display,
                            "commit_required: the step created no commit",
                            done.record.exit_code,
                            done.record.output,
                        )
                    )
                )
            )
        )
    )


def _head_or_failure(worktree: Worktree, index: int) -> Effect[str, StepFailure, ServiceEnv]:
    def to_failure(error: WorktreeError) -> StepFailure:
        return StepFailure(index, "commit_required", str(error))

    return head_commit(worktree).map_err(to_failure)


def _condition_holds(
    step: Step, index: int, variables: Mapping[str, Any]
) -> Effect[bool, StepFailure, ServiceEnv]:
    if step.when is None:
        return Effect.pure(True)
    when = step.when

    def evaluate(env: ServiceEnv) -> Result[bool, StepFailure]:
        def problem(message: object) -> StepFailure:
            return StepFailure(
                index, f"when: {when}", mask(f"when condition: {message}", env.config.secrets)
            )

        text = try_interpolate(when, variables, context="text")
        if isinstance(text, Failure):
            return Failure(problem(text.failure()))
        return evaluate_condition(text.unwrap(), variables).alt(problem)

    return Effect.from_fn(evaluate)


def _handle_failure(
    step: Step,
    index: int,
    worktree: Worktree,
    variables: Mapping[str, Any],
    timeout_of: StepTimeout,
    failure: StepFailure,
    attempt: int,
) -> Effect[_Attempt, StepFailure, ServiceEnv]:
    """After failed attempt ``attempt``: run the handler, then retry, recover or fail.

    The handler sees the failed attempt's output as ``${shell.output}`` (or
    ``claude``); then the step is tried again while attempts remain. A
    failing handler fails the step at once under ``handler_failure_fatal``,
    else after the last attempt. When the handler succeeded after the last
    attempt, the step counts as recovered unless ``fail_workflow`` is set.
    """
    policy = step.on_failure
    if policy is None:
        return Effect.fail(failure)
    handler_vars = {
        **variables,
        command_kind(step): {
            "output": failure.output,
            "exit_code": failure.exit_code,
            "success": False,
        },
    }
    handler: Effect[CommandsOutcome, StepFailure, ServiceEnv] = execute_commands(
        policy.handler, worktree, handler_vars
    )
    if policy.handler_timeout is not None:
        limit = policy.handler_timeout
        handler = handler.timeout(limit).map_err(
            lambda error: (
                error
                if isinstance(error, StepFailure)
                else StepFailure(
                    index, failure.display, f"on_failure handler timed out after {limit:g} s"
                )
            )
        )

    def after_handler(outcome: CommandsOutcome) -> Effect[_Attempt, StepFailure, ServiceEnv]:
        if attempt < policy.max_attempts:
            return _attempts(step, index, worktree, variables, timeout_of, attempt + 1)
        if policy.fail_workflow:
            return Effect.fail(
                attrs.evolve(failure, reason=f"{failure.reason} (after {attempt} attempts)")
            )
        record = StepRecord(
            index, failure.display, "recovered", failure.exit_code, 0.0, failure.output
        )
        return Effect.pure(_Attempt(outcome.variables, record))

    def handler_failed(error: StepFailure) -> Effect[_Attempt, StepFailure, ServiceEnv]:
        if attempt < policy.max_attempts and not policy.handler_failure_fatal:
            return _attempts(step, index, worktree, variables, timeout_of, attempt + 1)
        return Effect.fail(
            attrs.evolve(failure, reason=f"{failure.reason}; on_failure handler failed: {error}")
        )

    def decide(
        handled: Result[CommandsOutcome, StepFailure],
    ) -> Effect[_Attempt, StepFailure, ServiceEnv]:
        if isinstance(handled, Success):
            return after_handler(handled.unwrap())
        return handler_failed(handled.failure())

    settled: Effect[Result[CommandsOutcome, StepFailure], Never, ServiceEnv] = handler.map(
        Success
    ).recover(Failure)
    return settled.and_then(decide)


def _attempts(
    step: Step,
    index: int,
    worktree: Worktree,
    variables: Mapping[str, Any],
    timeout_of: StepTimeout,
    attempt: int,
) -> Effect[_Attempt, StepFailure, ServiceEnv]:
    return _attempt_once(step, index, worktree, variables, timeout_of).or_else(
        lambda failure: _handle_failure(
            step, index, worktree, variables, timeout_of, failure, attempt
        )
    )


def run_step(
    step: Step,
    index: int,
    worktree: Worktree,
    variables: Mapping[str, Any],
    *,
    timeout_of: StepTimeout = own_timeout,
) -> Effect[CommandsOutcome, StepFailure, ServiceEnv]:
    """Run one step in ``worktree``: condition, command, capture, handlers, ``on_success``.

    Success: the variables after the step and the records of the step and
    its ``on_success`` steps (a false ``when`` gives a ``skipped`` record).
    Failure: :class:`StepFailure` — non-zero exit, timeout (the process group
    is killed), a capture that does not convert, a missing commit under
    ``commit_required``, an unresolvable reference, or a path leaving the
    worktree — unless ``on_failure`` handled it. Cancellation kills the
    running process group and propagates.
    """

    def when_decided(holds: bool) -> Effect[CommandsOutcome, StepFailure, ServiceEnv]:
        if not holds:
            display = f"{command_kind(step)} (when: {step.when})"
            return Effect.pure(CommandsOutcome(variables, (StepRecord(index, display, "skipped"),)))
        return _attempts(step, index, worktree, variables, timeout_of, 1).and_then(after_attempt)

    def after_attempt(done: _Attempt) -> Effect[CommandsOutcome, StepFailure, ServiceEnv]:
        if not step.on_success or done.record.status != "succeeded":
            return Effect.pure(CommandsOutcome(done.variables, (done.record,)))
        return execute_commands(step.on_success, worktree, done.variables).map(
            lambda after: CommandsOutcome(after.variables, (done.record, *after.records))
        )

    def report(outcome: CommandsOutcome) -> Effect[object, StepFailure, ServiceEnv]:
        record = outcome.records[0]
        return emit_event(
            "step_finished",
            worktree=worktree.name,
            index=index,
            command=record.display,
            status=record.status,
            exit_code=record.exit_code,
            duration=record.duration,
        )

    return _condition_holds(step, index, variables).and_then(when_decided).tap(report)


def execute_commands(
    steps: Sequence[Step],
    worktree: Worktree,
    variables: Mapping[str, Any],
    *,
    timeout_of: StepTimeout = own_timeout,
) -> Effect[CommandsOutcome, StepFailure, ServiceEnv]:
    """Run ``steps`` in order in ``worktree``, each seeing the variables the previous set.

    Stops at the first step that fails (its :class:`StepFailure` is the
    result). See :func:`run_step` for what one step does.
    """

    def from_index(
        index: int, current: Mapping[str, Any], records: tuple[StepRecord, ...]
    ) -> Effect[CommandsOutcome, StepFailure, ServiceEnv]:
        if index == len(steps):
            return Effect.pure(CommandsOutcome(current, records))
        return run_step(steps[index], index, worktree, current, timeout_of=timeout_of).and_then(
            lambda outcome: from_index(index + 1, outcome.variables, records + outcome.records)
        )

    return Effect.defer(lambda: from_index(0, variables, ()))

"""The setup phase: prepare the job branch before any agent starts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Never

import attrs
from returns.result import Failure, Result, Success

from effects import Effect, Timeout, par_all
from effects.commands import CommandsOutcome, StepFailure, StepRecord, run_step
from effects.worktree import commit_changes
from envs.environment import MapEnv
from envs.protocols import WorktreeError
from phases.results import PhaseFailure
from pure.dependency_analysis import analyze_dependencies
from pure.setup_capture import extract_setup_capture
from pure.step_commands import command_kind
from pure.workflow import SetupConfig, Step

__all__ = ["SetupOutcome", "run_setup_phase"]


@attrs.frozen
class SetupOutcome:
    """The variables setup leaves for later phases, its step records, its commit."""

    variables: Mapping[str, Any]
    records: tuple[StepRecord, ...]
    commit: str | None


@attrs.frozen
class _BatchState:
    variables: Mapping[str, Any]
    records: tuple[StepRecord, ...]
    outputs: Mapping[int, Mapping[str, Any]]


def _merge_outcomes(
    before: Mapping[str, Any], outcomes: Sequence[CommandsOutcome]
) -> dict[str, Any]:
    """Combine the variables of steps that ran side by side from the same ``before``."""
    merged = dict(before)
    for outcome in outcomes:
        for name, value in outcome.variables.items():
            if name not in before or before[name] is not value:
                merged[name] = value
    return merged


def _run_batch(
    steps: Sequence[Step], batch: Sequence[int], state: _BatchState, env_worktree: Any
) -> Effect[_BatchState, StepFailure, MapEnv]:
    runs: list[Effect[CommandsOutcome, StepFailure, MapEnv]] = [
        run_step(steps[index], index, env_worktree, state.variables) for index in batch
    ]

    def combine(outcomes: list[CommandsOutcome]) -> _BatchState:
        outputs = dict(state.outputs)
        for index, outcome in zip(batch, outcomes, strict=True):
            kind = command_kind(steps[index])
            namespace = outcome.variables.get(kind)
            if isinstance(namespace, Mapping):
                outputs[index] = namespace
        records = state.records + tuple(r for outcome in outcomes for r in outcome.records)
        return _BatchState(_merge_outcomes(state.variables, outcomes), records, outputs)

    if len(runs) == 1:
        return runs[0].map(lambda outcome: combine([outcome]))
    return par_all(runs, mode="fail_fast").map_err(lambda errors: errors[0]).map(combine)


def _captures(config: SetupConfig, state: _BatchState) -> Result[dict[str, Any], str]:
    captured: dict[str, Any] = {}
    for name, capture in config.capture_outputs.items():
        output = state.outputs.get(capture.step_index)
        if output is None:
            return Failure(f"capture_outputs.{name}: setup step {capture.step_index} did not run")
        value = extract_setup_capture(
            capture, str(output.get("output", "")), str(output.get("stderr", ""))
        )
        if isinstance(value, Failure):
            return Failure(f"capture_outputs.{name}: {value.failure()}")
        captured[name] = value.unwrap()
    return Success(captured)


def run_setup_phase(
    config: SetupConfig, variables: Mapping[str, Any]
) -> Effect[SetupOutcome, PhaseFailure, MapEnv]:
    """Run the setup steps in the job worktree, then commit what they changed.

    Steps run in the batches of :func:`pure.analyze_dependencies`: a batch's
    steps run side by side (the first failure cancels the rest), batches in
    order; steps that declare no ``reads``/``writes`` run one by one. The
    captures of every step, and ``capture_outputs``, become variables of the
    later phases. Changes are committed to the job branch so agents start
    from them. ``setup.timeout`` bounds the whole phase. Failure:
    :class:`PhaseFailure` naming the failing step.
    """
    steps = config.steps
    batches = analyze_dependencies(steps).parallel_batches() if steps else []

    def run(env: MapEnv) -> Effect[SetupOutcome, PhaseFailure, MapEnv]:
        worktree = env.job.job_worktree

        def from_batch(number: int, state: _BatchState) -> Effect[_BatchState, StepFailure, MapEnv]:
            if number == len(batches):
                return Effect.pure(state)
            return _run_batch(steps, batches[number], state, worktree).and_then(
                lambda next_state: from_batch(number + 1, next_state)
            )

        phase: Effect[_BatchState, StepFailure | Timeout, MapEnv] = from_batch(
            0, _BatchState(variables, (), {})
        )
        if config.timeout is not None:
            phase = phase.timeout(config.timeout)

        def finish(state: _BatchState) -> Effect[SetupOutcome, PhaseFailure, MapEnv]:
            captured = _captures(config, state)
            if isinstance(captured, Failure):
                return Effect.fail(PhaseFailure("setup", captured.failure()))
            committed: Effect[str | None, WorktreeError, MapEnv] = commit_changes(
                worktree, "forkmerge: setup"
            )
            return committed.map_err(
                lambda error: PhaseFailure("setup", f"committing setup changes: {error}")
            ).map(
                lambda commit: SetupOutcome(
                    {**state.variables, **captured.unwrap()}, state.records, commit
                )
            )

        return phase.map_err(_phase_failure).and_then(finish)

    asked: Effect[MapEnv, Never, MapEnv] = Effect.ask()
    return asked.and_then(run)


def _phase_failure(error: StepFailure | Timeout) -> PhaseFailure:
    if isinstance(error, Timeout):
        return PhaseFailure("setup", f"setup {error}")
    return PhaseFailure("setup", str(error), step=error)

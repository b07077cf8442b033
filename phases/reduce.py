"""The reduce phase: summarise the map results in the job worktree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from effects import Effect
from effects.commands import CommandsOutcome, StepFailure, StepRecord, execute_commands
from effects.worktree import commit_changes, sync_worktree
from envs.environment import MapEnv
from envs.protocols import Worktree, WorktreeError
from phases.results import MapResult, PhaseFailure
from pure.workflow import Step

__all__ = ["ReduceOutcome", "run_reduce_phase"]


@attrs.frozen
class ReduceOutcome:
    """The reduce steps' records, final variables and the commit of their changes."""

    variables: Mapping[str, Any]
    records: tuple[StepRecord, ...]
    commit: str | None


def run_reduce_phase(
    steps: Sequence[Step], map_result: MapResult, variables: Mapping[str, Any], worktree: Worktree
) -> Effect[ReduceOutcome, PhaseFailure, MapEnv]:
    """Check out the job branch (moved by the merges) and run the reduce steps there.

    The steps see ``${map.total}``, ``${map.successful}``, ``${map.failed}``
    and ``${map.results}`` (a JSON list of every agent's item, status,
    output tail and commits); ``map.results`` is interpolated into commands
    only, never put into a process environment. What the steps change is
    committed to the job branch. Failure: :class:`PhaseFailure`.
    """
    reduce_vars = {**variables, "map": map_result.variables()}
    synced: Effect[None, WorktreeError, MapEnv] = sync_worktree(worktree)

    def run(_: None) -> Effect[CommandsOutcome, StepFailure | WorktreeError, MapEnv]:
        return execute_commands(steps, worktree, reduce_vars)

    def commit(outcome: CommandsOutcome) -> Effect[ReduceOutcome, WorktreeError, MapEnv]:
        return commit_changes(worktree, "forkmerge: reduce").map(
            lambda commit_id: ReduceOutcome(outcome.variables, outcome.records, commit_id)
        )

    def failure(error: StepFailure | WorktreeError) -> PhaseFailure:
        if isinstance(error, StepFailure):
            return PhaseFailure("reduce", str(error), step=error)
        return PhaseFailure("reduce", str(error))

    return synced.and_then(run).and_then(commit).map_err(failure)

"""Merge effects: bring an agent's commits into the job branch."""

from __future__ import annotations

from effects._effect import Effect
from effects._service import call_map_service
from envs.environment import MapEnv
from envs.protocols import MergeConflict, MergeOutcome, Worktree, WorktreeError

__all__ = ["merge_to_parent"]


def merge_to_parent(
    worktree: Worktree, *, message: str | None = None
) -> Effect[MergeOutcome, MergeConflict | WorktreeError, MapEnv]:
    """Merge the agent branch of ``worktree`` into the job branch, in memory.

    Success: ``MergeOutcome`` with the merge commit, or ``commit=None`` when
    the agent made no commits. Failure: ``MergeConflict`` (the job branch is
    left untouched) or ``WorktreeError``. Merges are serialized by the
    merger; cancellation waits for a merge in progress to finish.
    """
    return call_map_service(
        lambda env: env.services.merger.merge(
            worktree.branch,
            env.job.job_branch,
            message or f"Merge {worktree.branch} into {env.job.job_branch}",
        )
    )

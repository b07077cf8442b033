"""Reconciling a resumed job against git before anything runs again."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from returns.result import Failure, Result, Success

from effects import Effect
from envs.environment import MapEnv
from phases.prior_run import PriorRun
from phases.results import PhaseFailure
from pure.job_events import ItemFailed, ItemMerged, ItemRetried, ItemSucceeded, JobEvent
from pure.job_state import ItemStatus, JobState, apply, record_of
from pure.work_planning import WorkAssignment

__all__ = ["reconcile_interrupted"]

_INTERRUPTED = (ItemStatus.RUNNING, ItemStatus.SUCCEEDED)


def _settle(state: JobState, key: str, merged: bool | None, now: float) -> list[JobEvent]:
    """The events that bring an interrupted item in line with what git shows."""
    record = record_of(state, key)
    if record is None or record.status not in _INTERRUPTED:
        return []
    if merged:
        started = [ItemSucceeded(key, at=now)] if record.status is ItemStatus.RUNNING else []
        return [*started, ItemMerged(key, "", at=now)]
    if record.status is ItemStatus.SUCCEEDED:
        # Its commits never reached the job branch: run it again.
        return [ItemFailed(key, "interrupted before its merge", at=now), ItemRetried(key, at=now)]
    return []  # still running: it runs again


def reconcile_interrupted(
    prior: PriorRun, assignments: Sequence[WorkAssignment]
) -> Effect[PriorRun, PhaseFailure, MapEnv]:
    """Settle what an interrupted run left: records of items against git, and leftovers.

    Every agent branch or worktree of the job that still exists is a
    leftover (no process runs the job now). If its item was running and its
    commits are already in the job branch (the merge happened, its record
    did not), the item is recorded as merged; an item whose commits did not
    land runs again from scratch. Every leftover is then removed. With
    ``retry_failed`` the failed items (the dead-letter queue) go back to
    pending. Events are stored before the new state is returned. Failure: a
    git problem, as a :class:`PhaseFailure`.
    """

    async def run(env: MapEnv) -> Result[PriorRun, PhaseFailure]:
        state = prior.state
        job_branch = env.job.job_branch
        worktrees, merger, store = env.services.worktrees, env.services.merger, env.services.store
        keys = {assignment.worktree_name: assignment.item_key for assignment in assignments}
        leftovers = await worktrees.agent_leftovers(env.job.job_id)
        if isinstance(leftovers, Failure):
            return Failure(PhaseFailure("map", f"reconciling: {leftovers.failure()}"))
        for leftover in leftovers.unwrap():
            key = keys.get(_agent_name(leftover.branch))
            if key is not None:
                merged = await merger.is_merged(leftover.branch, job_branch)
                if isinstance(merged, Failure):
                    return Failure(PhaseFailure("map", f"reconciling: {merged.failure()}"))
                for event in _settle(state, key, merged.unwrap(), env.services.clock.now()):
                    await store.append(env.job.job_id, event)
                    state = apply(state, event)
            removed = await worktrees.remove_worktree(leftover)
            if isinstance(removed, Failure):
                return Failure(PhaseFailure("map", f"removing leftovers: {removed.failure()}"))
            env.services.events.emit({"event": "leftover_removed", "branch": leftover.branch})
        for assignment in assignments:
            # Items interrupted before their worktree existed, or after it was gone.
            for event in _settle(state, assignment.item_key, None, env.services.clock.now()):
                await store.append(env.job.job_id, event)
                state = apply(state, event)
        if prior.retry_failed:
            # Dead-letter items go back to pending, so this run starts them again.
            for record in state.records:
                if record.status is ItemStatus.FAILED:
                    event = ItemRetried(record.key, at=env.services.clock.now())
                    await store.append(env.job.job_id, event)
                    state = apply(state, event)
        return Success(attrs.evolve(prior, state=state))

    return Effect.from_async(run)


def _agent_name(branch: str) -> str:
    return branch.rsplit("/", 1)[-1]

"""Reconciling a resumed job's interrupted items against git before anything runs again."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from returns.result import Failure, Result, Success

from effects import Effect
from envs.environment import MapEnv
from phases.prior_run import PriorRun
from phases.results import PhaseFailure
from pure.job_events import ItemFailed, ItemMerged, ItemRetried, ItemSucceeded, JobEvent
from pure.job_state import ItemStatus, apply, record_of
from pure.work_planning import WorkAssignment

__all__ = ["reconcile_interrupted"]

_INTERRUPTED = (ItemStatus.RUNNING, ItemStatus.SUCCEEDED)


def reconcile_interrupted(
    prior: PriorRun, assignments: Sequence[WorkAssignment]
) -> Effect[PriorRun, PhaseFailure, MapEnv]:
    """Settle the items whose agents were running when the job stopped.

    For each such item the agent branch is looked up: if its commits are
    already in the job branch (the merge happened, its record did not), the
    item is recorded as merged; either way its leftover worktree and branch
    are removed, so an item that did not land runs again from scratch. With
    ``retry_failed`` the failed items (the dead-letter queue) go back to
    pending. The events are stored before the new state is returned. Failure: a git
    problem while checking, as a :class:`PhaseFailure`.
    """

    async def run(env: MapEnv) -> Result[PriorRun, PhaseFailure]:
        state = prior.state
        job_branch = env.job.job_branch
        worktrees, merger = env.services.worktrees, env.services.merger
        for assignment in assignments:
            record = record_of(state, assignment.item_key)
            if record is None or record.status not in _INTERRUPTED:
                continue
            located = worktrees.locate_agent_worktree(assignment.worktree_name, job_branch)
            if isinstance(located, Failure):
                return Failure(PhaseFailure("map", f"reconciling: {located.failure()}"))
            worktree = located.unwrap()
            merged = await merger.is_merged(worktree.branch, job_branch)
            if isinstance(merged, Failure):
                return Failure(PhaseFailure("map", f"reconciling: {merged.failure()}"))
            events: list[JobEvent] = []
            now = env.services.clock.now()
            key = assignment.item_key
            if merged.unwrap():
                if record.status is ItemStatus.RUNNING:
                    events.append(ItemSucceeded(key, at=now))
                events.append(ItemMerged(key, "", at=now))
            elif record.status is ItemStatus.SUCCEEDED:
                # Its commits never reached the job branch: run it again.
                events.append(ItemFailed(key, "interrupted before its merge", at=now))
                events.append(ItemRetried(key, at=now))
            for event in events:
                await env.services.store.append(env.job.job_id, event)
                state = apply(state, event)
            removed = await worktrees.remove_worktree(worktree)
            if isinstance(removed, Failure):
                return Failure(PhaseFailure("map", f"removing leftovers: {removed.failure()}"))
            env.services.events.emit(
                {
                    "event": "item_reconciled",
                    "item_key": assignment.item_key,
                    "merged": bool(merged.unwrap()),
                }
            )
        if prior.retry_failed:
            # Dead-letter items go back to pending, so this run starts them again.
            for assignment in assignments:
                record = record_of(state, assignment.item_key)
                if record is not None and record.status is ItemStatus.FAILED:
                    event = ItemRetried(assignment.item_key, at=env.services.clock.now())
                    await env.services.store.append(env.job.job_id, event)
                    state = apply(state, event)
        return Success(attrs.evolve(prior, state=state))

    return Effect.from_async(run)

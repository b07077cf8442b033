"""Orphaned pool slots (idle or lent when their process died) and kept worktrees are found."""

from __future__ import annotations

import os

from returns.result import Failure

from envs.git_worktrees import GitWorktreeManager
from envs.job_records import JobStatus
from envs.local import state_layout
from envs.orphan_cleaning import clean_leftovers
from envs.orphans import KnownJob, scan_leftovers
from envs.protocols import Worktree
from tests.envs.conftest import GitRepo, ok


async def test_idle_and_lent_pool_slots_are_orphans_and_get_cleaned(git_repo: GitRepo) -> None:
    layout = state_layout(git_repo.path)
    manager = GitWorktreeManager(git_repo.path, state_dir=layout.worktrees)
    job = ok(await manager.create_job_worktree("job9"))
    idle = ok(await manager.create_pool_worktree("job9", 0, job.branch))
    slot = ok(await manager.create_pool_worktree("job9", 1, job.branch))
    lent = ok(await manager.assign_pool_worktree(slot, "agent-0001-x", job.branch))
    scan = scan_leftovers(git_repo.path, layout, {})
    paths = {leftover.path for leftover in scan.leftovers if leftover.kind == "worktree"}
    assert {idle.path, lent.path} <= paths
    slots = [leftover for leftover in scan.leftovers if leftover.path in (idle.path, lent.path)]
    report = await clean_leftovers(git_repo.path, slots, dry_run=False, force=False)
    assert not report.failed
    assert not os.path.exists(idle.path) and not os.path.exists(lent.path)
    assert not git_repo.has_branch(lent.branch)
    assert git_repo.has_branch(job.branch)  # the job branch holds results: kept


async def test_an_idle_slot_of_a_running_job_is_listed_without_a_branch(
    git_repo: GitRepo,
) -> None:
    # An idle slot is on no branch: nothing to look up for an unrecorded merge.
    layout = state_layout(git_repo.path)
    manager = GitWorktreeManager(git_repo.path, state_dir=layout.worktrees)
    job = ok(await manager.create_job_worktree("job9"))
    idle = ok(await manager.create_pool_worktree("job9", 0, job.branch))
    running = {"job9": KnownJob("job9", JobStatus.RUNNING, job.branch)}

    scan = scan_leftovers(git_repo.path, layout, running)

    [slot] = [leftover for leftover in scan.leftovers if leftover.path == idle.path]
    assert (slot.branch, slot.unrecorded_merge, slot.kept) == ("", None, False)


async def test_a_kept_worktree_is_marked_and_listed_as_kept(git_repo: GitRepo) -> None:
    layout = state_layout(git_repo.path)
    manager = GitWorktreeManager(git_repo.path, state_dir=layout.worktrees)
    job = ok(await manager.create_job_worktree("job9"))
    agent = ok(await manager.create_agent_worktree("agent-0001-x", job.branch))

    ok(await manager.keep_worktree(agent))
    ok(await manager.keep_worktree(agent))  # idempotent

    scan = scan_leftovers(git_repo.path, layout, {})
    [kept] = [leftover for leftover in scan.leftovers if leftover.path == agent.path]
    assert kept.kept and kept.to_json(0.0)["kept"] is True
    assert os.path.isdir(agent.path) and git_repo.has_branch(agent.branch)
    stranger = Worktree(agent.name, "/elsewhere", agent.branch, "")
    assert isinstance(await manager.keep_worktree(stranger), Failure)

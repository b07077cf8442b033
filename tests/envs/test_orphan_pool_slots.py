"""Orphaned pool slots (idle or lent when their process died) are found and cleaned."""

from __future__ import annotations

import os

from envs.git_worktrees import GitWorktreeManager
from envs.local import state_layout
from envs.orphan_cleaning import clean_leftovers
from envs.orphans import scan_leftovers
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

"""Removing what forkmerge left behind: orphaned worktrees and agent branches.

Cleaning removes an orphaned worktree's directory and git's metadata of it (only
the metadata when the directory is already gone: git's worktree entry is pruned,
for forkmerge's worktrees only, never with a repository-wide ``git worktree prune``)
and its agent branch, through :class:`~envs.git_worktrees.GitWorktreeManager`,
which checks the worktree's marker once more; an orphaned agent branch without a
worktree is deleted. What :mod:`envs.orphans` does not find is never touched.

Skipped unless ``force``: leftovers of a job whose lock a live process holds
(looked up again right before each removal: a job may have started since the
scan), and an agent branch with an unrecorded merge (``resume`` needs it; its
worktree is still removed, the branch stays). A job's own branch always stays.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Literal, final

import attrs
from returns.result import Failure

from envs.git_repository import (
    GitProblem,
    RepositoryLocation,
    locate_repository,
    open_repository,
    run_git,
)
from envs.git_worktrees import GitWorktreeManager
from envs.job_lock import LockHolder
from envs.orphans import Leftover, LeftoverKind, checked_out_branches, live_holder
from envs.protocols import Worktree
from envs.worktree_layout import job_branch

__all__ = ["CleanAction", "CleanOutcome", "CleanReport", "clean_leftovers"]

CleanOutcome = Literal["removed", "skipped", "failed"]


@final
@attrs.frozen
class CleanAction:
    """What cleaning did (or, in a dry run, would do) with one leftover.

    ``outcome``: ``removed``, ``skipped`` (active, or kept for a resume) or
    ``failed``; ``reason`` says why it was skipped or failed, or what was kept
    of a removed worktree; ``branch_deleted``: its agent branch went too;
    ``freed_bytes``: the disk it took.
    """

    leftover: Leftover
    outcome: CleanOutcome
    reason: str | None = None
    branch_deleted: bool = False
    freed_bytes: int = 0


@final
@attrs.frozen
class CleanReport:
    """Every action of one cleaning, in order; ``dry_run``: nothing was changed."""

    actions: tuple[CleanAction, ...]
    dry_run: bool

    @property
    def freed_bytes(self) -> int:
        return sum(action.freed_bytes for action in self.actions)

    @property
    def failed(self) -> bool:
        return any(action.outcome == "failed" for action in self.actions)

    def count(self, outcome: CleanOutcome, kind: LeftoverKind | None = None) -> int:
        return sum(
            1
            for action in self.actions
            if action.outcome == outcome and (kind is None or action.leftover.kind == kind)
        )


def _kept_for_resume(leftover: Leftover) -> str:
    return (
        f"branch {leftover.branch} kept: its merge {(leftover.unrecorded_merge or '')[:12]} into "
        f"{job_branch(leftover.job_id)} is not recorded yet; `resume {leftover.job_id}` "
        "settles it (--force removes it anyway)"
    )


def _running(leftover: Leftover, holder: LockHolder) -> str:
    return (
        f"job {leftover.job_id} is running (process {holder.pid} on {holder.host}); "
        "--force removes it anyway"
    )


def _delete_branch(location: RepositoryLocation, branch: str) -> None:
    if branch in checked_out_branches(location):
        raise GitProblem(f"branch {branch} is checked out in a worktree now; it was left alone")
    reference = open_repository(location).lookup_branch(branch)
    if reference is not None:  # else already gone
        reference.delete()


async def _clean_one(
    leftover: Leftover,
    *,
    repo_path: str,
    location: RepositoryLocation,
    managers: dict[str, GitWorktreeManager],
    dry_run: bool,
    force: bool,
) -> CleanAction:
    # The lock is looked at again: a job may have started (or resumed) since the scan.
    holder = leftover.holder if dry_run else live_holder(leftover.lock_dirs, leftover.job_id)
    if holder is not None and not force:
        return CleanAction(leftover, "skipped", _running(leftover, holder))
    keep_for_resume = leftover.unrecorded_merge is not None and not force
    if leftover.kind == "branch":
        if keep_for_resume:
            return CleanAction(leftover, "skipped", _kept_for_resume(leftover))
        if not dry_run:
            deleted = await run_git(
                "clean",
                f"branch {leftover.branch}",
                lambda: _delete_branch(location, leftover.branch),
            )
            if isinstance(deleted, Failure):
                return CleanAction(leftover, "failed", deleted.failure().message)
        return CleanAction(leftover, "removed", branch_deleted=True)
    assert leftover.path is not None and leftover.worktree_id is not None
    reason = None
    if leftover.agent is None:
        reason = f"branch {leftover.branch} kept: it holds the job's result"
    elif keep_for_resume:
        reason = _kept_for_resume(leftover)
    if not dry_run:
        state_dir = os.path.dirname(os.path.normpath(leftover.path))
        manager = managers.get(state_dir)
        if manager is None:
            manager = managers[state_dir] = GitWorktreeManager(repo_path, state_dir=state_dir)
        worktree = Worktree(
            leftover.worktree_id, leftover.path, leftover.branch, leftover.base_commit
        )
        removed = await manager.remove_worktree(worktree, delete_branch=reason is None)
        if isinstance(removed, Failure):
            return CleanAction(leftover, "failed", removed.failure().message)
    return CleanAction(
        leftover, "removed", reason, branch_deleted=reason is None, freed_bytes=leftover.size_bytes
    )


async def clean_leftovers(
    repo_path: str, leftovers: Iterable[Leftover], *, dry_run: bool, force: bool
) -> CleanReport:
    """Remove ``leftovers`` (worktrees before branches); with ``dry_run``, only say what.

    Active leftovers (their job's lock held by a live process, checked again
    right before each removal) and agent branches a resume still needs are
    skipped unless ``force``. A removal that fails is reported as ``failed``
    and the others go on. Cancellation: a git operation already started
    finishes first (:func:`~envs.git_repository.run_git`), then
    ``trio.Cancelled`` propagates; what was done so far stays done.
    """
    ordered = sorted(leftovers, key=lambda leftover: leftover.kind != "worktree")
    location = locate_repository(repo_path)
    managers: dict[str, GitWorktreeManager] = {}
    actions = [
        await _clean_one(
            leftover,
            repo_path=repo_path,
            location=location,
            managers=managers,
            dry_run=dry_run,
            force=force,
        )
        for leftover in ordered
    ]
    return CleanReport(tuple(actions), dry_run)

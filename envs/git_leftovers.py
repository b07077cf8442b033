"""What earlier runs of a job left in the repository: agent worktrees, branches, lock files.

Functions of :class:`~envs.git_worktrees.GitWorktreeManager`'s that read (and, for
stale lock files, delete) what a killed or interrupted run left behind, so that a
resumed job can settle it. Blocking: call them in a worker thread.
"""

from __future__ import annotations

import contextlib
import os

from returns.result import Failure, Result, Success

from envs.git_pool_slots import leftover_slot
from envs.git_repository import RepositoryLocation, open_repository
from envs.protocols import Worktree, WorktreeError
from envs.worktree_layout import (
    agent_branch,
    job_branch,
    job_id_of_branch,
    name_problem,
    read_marker,
    worktree_id,
)

__all__ = ["agent_leftovers_of", "clear_stale_locks", "locate_agent"]


def agent_leftovers_of(location: RepositoryLocation, state_dir: str, job_id: str) -> list[Worktree]:
    """Agent branches ``forkmerge-agents/<job_id>/*``, marked agent worktrees and pool
    slots of the job (a slot as its marker records it)."""
    repo = open_repository(location)
    prefix = agent_branch(job_id, "")
    branches = {branch for branch in repo.branches.local if branch.startswith(prefix)}
    names: set[str] = set()
    slots: list[Worktree] = []
    admin_root = os.path.join(location.common_dir, "worktrees")
    if os.path.isdir(admin_root):
        for identifier in sorted(os.listdir(admin_root)):
            slot = leftover_slot(identifier, admin_root, job_id)
            if slot is not None:
                # Removing the slot deletes the agent branch its marker names.
                slots.append(slot)
                branches.discard(slot.branch)
                continue
            marker = read_marker(os.path.join(admin_root, identifier))
            if marker is not None and marker.job_id == job_id and marker.name is not None:
                names.add(marker.name)
    names.update(branch[len(prefix) :] for branch in branches)
    job = job_branch(job_id)
    found = [locate_agent(state_dir, name, job) for name in sorted(names)]
    return [located.unwrap() for located in found if isinstance(located, Success)] + slots


def locate_agent(state_dir: str, name: str, parent_branch: str) -> Result[Worktree, WorktreeError]:
    """The worktree agent ``name`` of ``parent_branch``'s job has or would have under
    ``state_dir``; ``base_commit`` is empty (unknown here). Reads nothing."""
    problem = name_problem("agent name", name)
    job_id = job_id_of_branch(parent_branch)
    if problem is None and job_id is None:
        problem = f"parent branch {parent_branch!r} is not a forkmerge job branch"
    if problem is not None or job_id is None:
        return Failure(WorktreeError("locate_agent_worktree", problem or ""))
    identifier = worktree_id(job_id, name)
    path = os.path.join(state_dir, identifier)
    return Success(Worktree(identifier, path, agent_branch(job_id, name), ""))


def clear_stale_locks(location: RepositoryLocation, job_id: str) -> None:
    """Delete the lock files a killed process left on this job's refs and worktrees.

    libgit2 (like git) refuses to touch a ref or index whose ``.lock`` file
    exists; a process killed in the middle of a merge or commit leaves one.
    Only the job's own refs (``forkmerge/<job>``, ``forkmerge-agents/<job>/*``)
    and the indexes of its marked worktrees are touched, and only when the
    job is being (re)started, which its caller does holding the job lock.
    """
    refs = os.path.join(location.common_dir, "refs", "heads")
    stale = [os.path.join(refs, f"{job_branch(job_id)}.lock")]
    agents = os.path.join(refs, agent_branch(job_id, ""))
    for folder, _dirs, files in os.walk(agents):
        stale.extend(os.path.join(folder, name) for name in files if name.endswith(".lock"))
    admin_root = os.path.join(location.common_dir, "worktrees")
    for identifier in os.listdir(admin_root) if os.path.isdir(admin_root) else ():
        admin = os.path.join(admin_root, identifier)
        marker = read_marker(admin)
        if marker is not None and marker.job_id == job_id:
            stale.append(os.path.join(admin, "index.lock"))
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

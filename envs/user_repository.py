"""Questions about, and the one opt-in change to, the user's own repository.

forkmerge never modifies the user's branch or working tree, except when the
user asks (``run --merge``) to merge the job branch into their current
branch at the end: that is :func:`merge_into_current_branch`.
"""

from __future__ import annotations

import pygit2
import trio
from pygit2.enums import FileStatus, ResetMode
from returns.result import Failure, Result, Success

from envs.git_repository import commit_signatures, locate_repository, open_repository

__all__ = ["committed_file_exists", "current_branch", "merge_into_current_branch", "workdir"]


def workdir(repo_path: str) -> str | None:
    """The user's working tree of the repository containing ``repo_path`` (``None`` if bare)."""
    repo = open_repository(locate_repository(repo_path))
    return None if repo.is_bare else str(repo.workdir)


def current_branch(repo_path: str) -> str | None:
    """The short name of the user's checked-out branch (``None`` when HEAD is detached)."""
    repo = open_repository(locate_repository(repo_path))
    if repo.head_is_detached or repo.head_is_unborn:
        return None
    return str(repo.head.shorthand)


def committed_file_exists(repo_path: str, relative_path: str) -> bool:
    """Whether ``relative_path`` is a file in the commit HEAD points at.

    Jobs start from HEAD, so an input file must be committed to be seen.
    """
    repo = open_repository(locate_repository(repo_path))
    if repo.head_is_unborn:
        return False
    tree = repo.head.peel(pygit2.Commit).tree
    try:
        entry = tree[relative_path]
    except KeyError:
        return False
    return entry.type_str == "blob"


def _merge_sync(repo_path: str, job_branch: str) -> Result[str, str]:
    repo = open_repository(locate_repository(repo_path))
    if repo.head_is_detached or repo.head_is_unborn:
        return Failure("HEAD is not on a branch: check out the branch to merge into first")
    status = repo.status()
    untracked = {path for path, flags in status.items() if flags == FileStatus.WT_NEW}
    dirty = [
        path
        for path, flags in status.items()
        if flags and not flags & FileStatus.IGNORED and path not in untracked
    ]
    if dirty:
        shown = ", ".join(sorted(dirty)[:5])
        return Failure(f"the working tree has uncommitted changes ({shown}): commit or stash them")
    branch = repo.head.shorthand
    ours = repo.head.peel(pygit2.Commit)
    job = repo.branches.local.get(job_branch)
    if job is None:
        return Failure(f"job branch {job_branch} does not exist")
    theirs = job.peel(pygit2.Commit)
    if repo.descendant_of(ours.id, theirs.id) or ours.id == theirs.id:
        return Success(f"{branch} already contains {job_branch}")
    in_the_way = sorted(path for path in untracked if path in theirs.tree)
    if in_the_way:
        shown = ", ".join(in_the_way[:5])
        return Failure(f"untracked files would be overwritten by the merge ({shown})")
    if repo.descendant_of(theirs.id, ours.id):
        # Clean working tree: a hard reset moves the branch and updates the files.
        repo.reset(theirs.id, ResetMode.HARD)
        return Success(f"fast-forwarded {branch} to {job_branch} ({str(theirs.id)[:10]})")
    index = repo.merge_commits(ours, theirs)
    if index.conflicts is not None:
        paths = sorted({entry.path for triple in index.conflicts for entry in triple if entry})
        return Failure(f"merging {job_branch} into {branch} conflicts in {', '.join(paths)}")
    tree_id = index.write_tree(repo)
    author, committer = commit_signatures(repo)
    message = f"Merge {job_branch} into {branch}"
    commit = repo.create_commit(None, author, committer, message, tree_id, [ours.id, theirs.id])
    repo.reset(commit, ResetMode.HARD)
    return Success(f"merged {job_branch} into {branch} ({str(commit)[:10]})")


async def merge_into_current_branch(repo_path: str, job_branch: str) -> Result[str, str]:
    """Merge ``job_branch`` into the user's checked-out branch and update their working tree.

    Refused (a ``Failure`` saying why, nothing changed) when HEAD is
    detached, the working tree has uncommitted changes, or the merge
    conflicts. Success: a one-line description of what happened.
    """
    return await trio.to_thread.run_sync(_merge_sync, repo_path, job_branch)

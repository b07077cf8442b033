"""The files and commits of one worktree, through pygit2: what an agent's steps change.

Each function blocks and opens its own ``pygit2.Repository``: call it through
:func:`envs.git_repository.run_git` (a worker thread). They touch only the
worktree given (its files, index and branch), so calls on different worktrees run
side by side; :class:`~envs.git_worktrees.GitWorktreeManager` exposes them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

import pygit2
from returns.result import Failure, Result

from envs.git_repository import (
    GitProblem,
    branch_head,
    commit_signatures,
    open_worktree_repository,
)
from envs.paths import PathError, read_inside, write_inside
from envs.protocols import Worktree

__all__ = ["commit_all", "read_confined", "sync_to_branch", "write_confined"]

T = TypeVar("T")


def commit_all(worktree: Worktree, message: str) -> str | None:
    """Stage every change of the worktree (ignored files stay out) and commit it on its
    branch; the commit (hex), ``None`` when the tree is unchanged (see
    :meth:`GitWorktreeManager.commit_changes`)."""
    repo = open_worktree_repository(worktree.path, worktree.branch)
    parent = repo.head.peel(pygit2.Commit)
    index = repo.index
    # libgit2's add_all also stages deletions (files gone from the working tree).
    index.add_all()
    index.write()
    tree = index.write_tree()
    # A merge started in the worktree (``git merge --no-commit``) is concluded, as
    # ``git commit`` would: its heads become parents and MERGE_HEAD goes away.
    merging = repo.listall_mergeheads()
    if tree == parent.tree_id and not merging:
        return None
    author, committer = commit_signatures(repo)
    # Committing through HEAD makes libgit2 check that the branch still points at
    # ``parent`` when it moves it, so a concurrent update is an error, not lost.
    parents = [parent.id, *merging]
    commit = repo.create_commit("HEAD", author, committer, message, tree, parents)
    repo.state_cleanup()
    return str(commit)


def sync_to_branch(worktree: Worktree) -> None:
    """``git reset --hard`` to the worktree's branch head (untracked files stay)."""
    repo = open_worktree_repository(worktree.path, worktree.branch)
    repo.reset(branch_head(repo, worktree.branch), pygit2.enums.ResetMode.HARD)


def write_confined(
    worktree: Worktree, relative_path: str, content: bytes, *, create_dirs: bool, mode: int
) -> None:
    """Write a file inside the worktree (:func:`envs.paths.write_inside`'s rules)."""
    root = worktree.path
    _confined(
        root,
        lambda: write_inside(root, relative_path, content, create_dirs=create_dirs, mode=mode),
    )


def read_confined(worktree: Worktree, relative_path: str) -> bytes:
    """Read a file inside the worktree (:func:`envs.paths.read_inside`'s rules)."""
    return _confined(worktree.path, lambda: read_inside(worktree.path, relative_path))


def _confined(root: str, access: Callable[[], Result[T, PathError]]) -> T:
    """The outcome of a file access under ``root``; a refused path is a :class:`GitProblem`."""
    if not os.path.isdir(root):
        raise GitProblem(f"worktree {root} does not exist")
    result = access()
    if isinstance(result, Failure):
        raise GitProblem(f"{result.failure()} (worktree {root})")
    value: T = result.unwrap()
    return value

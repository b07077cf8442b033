"""The real merger: merges one branch into another in memory with pygit2, no checkout."""

from __future__ import annotations

from typing import final

import pygit2
import trio
from returns.result import Failure, Result, Success

from envs.git_repository import (
    branch_head,
    commit_signatures,
    locate_repository,
    open_repository,
    run_git,
    update_branch_if_unchanged,
)
from envs.protocols import MergeConflict, MergeOutcome, WorktreeError
from envs.tree_merge import disjoint_merge, unique_merge_base

__all__ = ["GitMerger"]


def _conflicting_paths(index: pygit2.Index) -> tuple[str, ...]:
    conflicts = index.conflicts
    if conflicts is None:
        return ()
    paths = {
        entry.path
        for ancestor, ours, theirs in conflicts
        for entry in (ancestor, ours, theirs)
        if entry is not None
    }
    return tuple(sorted(paths))


def _disjoint_merge(
    repo: pygit2.Repository, target: pygit2.Oid, source: pygit2.Oid
) -> pygit2.Oid | None:
    """The merged tree when the two sides changed disjoint paths (see :mod:`envs.tree_merge`)."""
    base = unique_merge_base(repo, target, source)
    if base is None:
        return None
    trees = (repo[commit].peel(pygit2.Commit).tree_id for commit in (base, target, source))
    return disjoint_merge(repo, *trees)


@final
class GitMerger:
    """Merges branches of one repository in memory, one merge at a time.

    A merge reads both branch heads, merges their trees (only the subtrees on
    paths changed on one side when the sides changed disjoint paths, see
    :mod:`envs.tree_merge`; otherwise libgit2's ``merge_commits`` into an
    in-memory index), and, without conflicts, writes a merge commit
    with parents ``[target head, source head]`` (always a merge commit, like
    ``git merge --no-ff``) and moves the target branch to it only if it still
    points at the head that was merged (compare and swap). No working tree is
    checked out or changed: a worktree that has the target branch checked out
    is stale afterwards until it is synced.

    Merges run one at a time in a worker thread; cancellation waits for the
    running merge to finish (it is never abandoned half-way).

    Args:
        repo_path: any directory inside the repository.

    Raises:
        NotARepositoryError: ``repo_path`` is not inside a git repository.
    """

    def __init__(self, repo_path: str) -> None:
        self._location = locate_repository(repo_path)
        self._lock = trio.Lock()

    async def merge(
        self, source_branch: str, target_branch: str, message: str
    ) -> Result[MergeOutcome, MergeConflict | WorktreeError]:
        """Merge ``source_branch`` into ``target_branch``; the merge commit on success.

        ``MergeOutcome(None, target)`` when the source has no commit the
        target lacks; ``MergeConflict`` (target untouched) when the changes
        overlap; ``WorktreeError`` for a missing branch or a target moved by
        someone else during the merge.
        """
        async with self._lock:
            outcome = await run_git(
                "merge",
                f"merging {source_branch} into {target_branch}",
                lambda: self._merge(source_branch, target_branch, message),
            )
        if isinstance(outcome, Failure):
            return Failure(outcome.failure())
        merged = outcome.unwrap()
        if isinstance(merged, MergeConflict):
            return Failure(merged)
        return Success(merged)

    async def is_merged(
        self, source_branch: str, target_branch: str
    ) -> Result[bool | None, WorktreeError]:
        """Whether a merge on ``target_branch`` brought in ``source_branch``'s head.

        ``None`` when there is no such source branch. A source branch with no
        commits of its own (its head is an older target commit) is not merged.
        """
        return await run_git(
            "is_merged",
            f"checking {source_branch} against {target_branch}",
            lambda: self._is_merged(source_branch, target_branch),
        )

    def _is_merged(self, source_branch: str, target_branch: str) -> bool | None:
        repo = open_repository(self._location)
        if repo.lookup_branch(source_branch) is None:
            return None
        source = branch_head(repo, source_branch)
        commit = repo[branch_head(repo, target_branch)].peel(pygit2.Commit)
        # Merged means: a merge commit on the target's first-parent line took the
        # source head as a later parent. A source without commits of its own is an
        # ancestor of the target too, but was never merged.
        while True:
            if commit.id == source or repo.descendant_of(source, commit.id):
                return False
            if source in commit.parent_ids[1:]:
                return True
            if not commit.parent_ids:
                return False
            commit = commit.parents[0]

    def _merge(
        self, source_branch: str, target_branch: str, message: str
    ) -> MergeOutcome | MergeConflict:
        repo = open_repository(self._location)
        source = branch_head(repo, source_branch)
        target = branch_head(repo, target_branch)
        if source == target or repo.descendant_of(target, source):
            return MergeOutcome(None, target_branch)
        tree = _disjoint_merge(repo, target, source)
        if tree is None:
            index = repo.merge_commits(target, source)
            paths = _conflicting_paths(index)
            if paths:
                return MergeConflict(source_branch, target_branch, paths)
            tree = index.write_tree(repo)
        author, committer = commit_signatures(repo)
        commit = repo.create_commit(None, author, committer, message, tree, [target, source])
        update_branch_if_unchanged(
            repo, target_branch, target, commit, f"forkmerge: merge {source_branch}"
        )
        return MergeOutcome(str(commit), target_branch)

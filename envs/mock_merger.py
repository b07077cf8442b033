"""The in-memory merger: 3-way merges by file on the mock repository, one at a time."""

from __future__ import annotations

from typing import final

import trio
from returns.result import Failure, Result, Success

from envs.mock_failures import FailureInjector
from envs.mock_repository import MockRepository, three_way_merge
from envs.mock_store import CallRecorder
from envs.protocols import MergeConflict, MergeOutcome, WorktreeError

__all__ = ["MockMerger"]


@final
class MockMerger:
    """A ``Merger`` over the same in-memory repository: 3-way merges by file, one at a time.

    ``duration`` is how long each merge takes on trio's clock (waiting for the
    lock may be cancelled; a merge under way is not). Every call is recorded
    as ``("merger", "merge", (source, target, message))``. ``fail`` makes
    merges of a source branch (or the ``nth`` merge) fail with a
    ``WorktreeError``.
    """

    def __init__(
        self,
        repository: MockRepository,
        *,
        recorder: CallRecorder | None = None,
        duration: float = 0.0,
    ) -> None:
        if duration < 0:
            raise ValueError(f"`duration` must be non-negative, got {duration}")
        self.repository = repository
        self.recorder = recorder if recorder is not None else CallRecorder()
        self.duration = duration
        self._lock = trio.Lock()
        self._failures = FailureInjector(("merge",))

    def fail(
        self,
        *,
        source_branch: str | None = None,
        nth: int | None = None,
        times: int | None = None,
        error: WorktreeError | None = None,
    ) -> None:
        """Make merges of ``source_branch`` (any when ``None``), or the ``nth`` merge, fail."""
        self._failures.add("merge", name=source_branch, nth=nth, times=times, error=error)

    async def merge(
        self, source_branch: str, target_branch: str, message: str
    ) -> Result[MergeOutcome, MergeConflict | WorktreeError]:
        self.recorder.record("merger", "merge", source_branch, target_branch, message)
        async with self._lock:
            if self.duration > 0:
                with trio.CancelScope(shield=True):
                    await trio.sleep(self.duration)
            error = self._failures.check("merge", source_branch)
            if error is not None:
                return Failure(error)
            return self._merge(source_branch, target_branch, message)

    async def is_merged(
        self, source_branch: str, target_branch: str
    ) -> Result[bool | None, WorktreeError]:
        self.recorder.record("merger", "is_merged", source_branch, target_branch)
        branches = self.repository.branches
        if source_branch not in branches:
            return Success(None)
        if target_branch not in branches:
            return Failure(WorktreeError("is_merged", f"no branch named {target_branch!r}"))
        source, target = branches[source_branch], branches[target_branch]
        commits = self.repository.commits
        merged = any(
            source in commits[commit].parents[1:]
            for commit in self.repository.ancestors(target) | {target}
        )
        return Success(merged)

    def _merge(
        self, source_branch: str, target_branch: str, message: str
    ) -> Result[MergeOutcome, MergeConflict | WorktreeError]:
        branches = self.repository.branches
        for branch in (source_branch, target_branch):
            if branch not in branches:
                return Failure(WorktreeError("merge", f"no branch named {branch!r}"))
        source, target = branches[source_branch], branches[target_branch]
        base = self.repository.merge_base(source, target)
        if base == source:
            return Success(MergeOutcome(None, target_branch))
        base_files = self.repository.files_at(base) if base is not None else {}
        merged, conflicts = three_way_merge(
            base_files, self.repository.files_at(target), self.repository.files_at(source)
        )
        if conflicts:
            return Failure(MergeConflict(source_branch, target_branch, tuple(conflicts)))
        commit_id = self.repository.commit(merged, (target, source), message)
        branches[target_branch] = commit_id
        return Success(MergeOutcome(commit_id, target_branch))

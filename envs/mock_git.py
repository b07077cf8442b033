"""The in-memory worktree manager: git worktrees without git, for fast tests.

:class:`MockWorktreeManager` implements the ``WorktreeManager`` protocol
over a :class:`~envs.mock_repository.MockRepository` (shared with
:class:`~envs.mock_merger.MockMerger`), with the real services'
branch names (``forkmerge/<job>``, ``forkmerge-agents/<job>/<name>``), name
and path rules. A worktree is a mutable dict of files. Tests can make any
operation fail (:meth:`MockWorktreeManager.fail`) and give operations a
duration on trio's clock.

Pool slots (``create_pool_worktree`` and friends) are named ``pool-<slot>``
and live at ``<root>/fm-<job>-pool-<slot>``; idle, their ``branch`` is ``""``.
Assigning one resets its files to exactly the parent's head, except files a
test made sticky (:meth:`MockWorktreeManager.stick_file`), which model a file
git cannot delete and so a slot that is never clean again.

Like the real services, which run git in a worker thread, an operation may
be cancelled before it starts but, once started (its simulated latency
included), runs to the end shielded from cancellation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, final

import attrs
import trio
from returns.result import Failure, Result, Success

from envs.mock_failures import FailureInjector
from envs.mock_repository import (
    MockCommit,
    MockRepository,
    is_ignored,
    normalize_relative_path,
    parent_dirs,
    valid_name,
)
from envs.mock_store import CallRecorder
from envs.protocols import Worktree, WorktreeError

__all__ = ["MockWorktreeManager"]

JOB_BRANCH_PREFIX: Final = "forkmerge/"
AGENT_BRANCH_PREFIX: Final = "forkmerge-agents/"
_POOL_NAME: Final = re.compile(r"pool-[0-9]+")
MOCK_WORKTREE_ROOT: Final = "/mock/worktrees"

WORKTREE_OPERATIONS: Final = (
    "create_job_worktree",
    "create_agent_worktree",
    "remove_worktree",
    "commit_changes",
    "head_commit",
    "sync_worktree",
    "write_file",
    "read_file",
    "create_pool_worktree",
    "assign_pool_worktree",
    "release_pool_worktree",
    "pool_worktree_clean",
    "keep_worktree",
)


async def _start(latency: float) -> None:
    """Where a simulated git operation may be cancelled; then its latency, shielded."""
    await trio.lowlevel.checkpoint()
    if latency > 0:
        with trio.CancelScope(shield=True):
            await trio.sleep(latency)


@attrs.define
class _WorktreeState:
    worktree: Worktree
    files: dict[str, bytes]
    dirs: set[str]
    index_commit: str  # what the worktree's index holds: its last checkout or commit
    pool_job: str | None = None  # the job of a pool slot; None for other worktrees
    sticky: dict[str, bytes] = attrs.Factory(dict)  # files no reset removes (stick_file)
    kept: bool = False  # keep_worktree marked it


def _dirs_of(files: Iterable[str]) -> set[str]:
    return {directory for path in files for directory in parent_dirs(path)}


def _as_bytes(content: bytes | str) -> bytes:
    return content.encode() if isinstance(content, str) else content


@final
class MockWorktreeManager:
    """A ``WorktreeManager`` over an in-memory repository; worktrees are dicts of files.

    ``latency`` gives operations (by method name) a duration on trio's clock.
    Every call is recorded in ``recorder`` as ``("worktrees", method, args)``.
    Test helpers (:meth:`files`, :meth:`set_file`, :meth:`branch_files`, ...)
    act at once and are not recorded; they raise ``KeyError`` for an unknown
    worktree or branch and ``ValueError`` for a path outside the worktree,
    since those are mistakes in the test.
    """

    def __init__(
        self,
        repository: MockRepository | None = None,
        *,
        recorder: CallRecorder | None = None,
        latency: Mapping[str, float] | None = None,
        root: str = MOCK_WORKTREE_ROOT,
    ) -> None:
        self.repository = repository if repository is not None else MockRepository()
        self.recorder = recorder if recorder is not None else CallRecorder()
        self.latency = dict(latency or {})
        unknown = set(self.latency) - set(WORKTREE_OPERATIONS)
        if unknown:
            raise ValueError(f"`latency` names unknown operations {sorted(unknown)}")
        self.root = root
        self._failures = FailureInjector(WORKTREE_OPERATIONS)
        self._states: dict[str, _WorktreeState] = {}

    def fail(
        self,
        operation: str,
        *,
        name: str | None = None,
        nth: int | None = None,
        times: int | None = None,
        error: WorktreeError | None = None,
    ) -> None:
        """Make ``operation`` fail for the worktree ``name`` (the job id for
        ``create_job_worktree``), or on its ``nth`` call, at most ``times`` times.

        The failing call changes nothing. ``name`` is the agent name for
        ``assign_pool_worktree`` and the worktree's name (``pool-<slot>`` for a
        slot) for the other operations. Example:
        ``manager.fail("remove_worktree", name="agent-0002-b-1234abcd", times=1)``.
        """
        self._failures.add(operation, name=name, nth=nth, times=times, error=error)

    # --- the protocol ---------------------------------------------------------------------

    async def create_job_worktree(
        self, job_id: str, *, base: str | None = None
    ) -> Result[Worktree, WorktreeError]:
        error = await self._begin("create_job_worktree", job_id, job_id, base)
        return Failure(error) if error else self._create_job_worktree(job_id, base)

    async def create_agent_worktree(
        self, name: str, parent_branch: str
    ) -> Result[Worktree, WorktreeError]:
        error = await self._begin("create_agent_worktree", name, name, parent_branch)
        return Failure(error) if error else self._create_agent_worktree(name, parent_branch)

    async def agent_leftovers(self, job_id: str) -> Result[list[Worktree], WorktreeError]:
        self.recorder.record("worktrees", "agent_leftovers", job_id)
        await trio.lowlevel.checkpoint()
        prefix = f"{AGENT_BRANCH_PREFIX}{job_id}/"
        slots = [state.worktree for state in self._states.values() if state.pool_job == job_id]
        held = {slot.branch for slot in slots}  # removing the slot deletes its agent's branch
        names = sorted(
            branch[len(prefix) :]
            for branch in self.repository.branches
            if branch.startswith(prefix) and branch not in held
        )
        parent = f"{JOB_BRANCH_PREFIX}{job_id}"
        agents = [self.locate_agent_worktree(name, parent).unwrap() for name in names]
        return Success(agents + slots)

    def locate_agent_worktree(
        self, name: str, parent_branch: str
    ) -> Result[Worktree, WorktreeError]:
        self.recorder.record("worktrees", "locate_agent_worktree", name, parent_branch)
        if not valid_name(name) or not parent_branch.startswith(JOB_BRANCH_PREFIX):
            return _error("locate_agent_worktree", f"no agent {name!r} of {parent_branch!r}")
        job_id = parent_branch.removeprefix(JOB_BRANCH_PREFIX)
        path = f"{self.root}/fm-{job_id}-{name}"
        return Success(Worktree(name, path, f"{AGENT_BRANCH_PREFIX}{job_id}/{name}", ""))

    async def remove_worktree(
        self, worktree: Worktree, *, delete_branch: bool = True
    ) -> Result[None, WorktreeError]:
        error = await self._begin("remove_worktree", worktree.name, worktree, delete_branch)
        return Failure(error) if error else self._remove_worktree(worktree, delete_branch)

    async def create_pool_worktree(
        self, job_id: str, slot: int, parent_branch: str
    ) -> Result[Worktree, WorktreeError]:
        name = f"pool-{slot}"
        error = await self._begin("create_pool_worktree", name, job_id, slot, parent_branch)
        return Failure(error) if error else self._create_pool(job_id, slot, parent_branch)

    async def assign_pool_worktree(
        self, slot_worktree: Worktree, name: str, parent_branch: str
    ) -> Result[Worktree, WorktreeError]:
        error = await self._begin("assign_pool_worktree", name, slot_worktree, name, parent_branch)
        return Failure(error) if error else self._assign_pool(slot_worktree, name, parent_branch)

    async def release_pool_worktree(self, worktree: Worktree) -> Result[None, WorktreeError]:
        error = await self._begin("release_pool_worktree", worktree.name, worktree)
        return Failure(error) if error else self._release_pool(worktree)

    async def pool_worktree_clean(self, worktree: Worktree) -> Result[bool, WorktreeError]:
        error = await self._begin("pool_worktree_clean", worktree.name, worktree)
        return Failure(error) if error else self._pool_clean(worktree)

    async def keep_worktree(self, worktree: Worktree) -> Result[None, WorktreeError]:
        error = await self._begin("keep_worktree", worktree.name, worktree)
        if error:
            return Failure(error)
        state = self._states.get(worktree.path)
        if state is None:
            return _error("keep_worktree", f"{worktree.path} is not an active worktree")
        state.kept = True
        return Success(None)

    async def commit_changes(
        self, worktree: Worktree, message: str
    ) -> Result[str | None, WorktreeError]:
        error = await self._begin("commit_changes", worktree.name, worktree, message)
        return Failure(error) if error else self._commit_changes(worktree, message)

    async def head_commit(self, worktree: Worktree) -> Result[str, WorktreeError]:
        error = await self._begin("head_commit", worktree.name, worktree)
        return Failure(error) if error else self._head_commit(worktree)

    async def sync_worktree(self, worktree: Worktree) -> Result[None, WorktreeError]:
        error = await self._begin("sync_worktree", worktree.name, worktree)
        return Failure(error) if error else self._sync_worktree(worktree)

    async def write_file(
        self,
        worktree: Worktree,
        relative_path: str,
        content: bytes,
        *,
        create_dirs: bool,
        mode: int = 0o644,
    ) -> Result[None, WorktreeError]:
        error = await self._begin(
            "write_file", worktree.name, worktree, relative_path, content, create_dirs, mode
        )
        if error:
            return Failure(error)
        return self._write_file(worktree, relative_path, content, create_dirs)

    async def read_file(
        self, worktree: Worktree, relative_path: str
    ) -> Result[bytes, WorktreeError]:
        error = await self._begin("read_file", worktree.name, worktree, relative_path)
        return Failure(error) if error else self._read_file(worktree, relative_path)

    async def _begin(self, operation: str, name: str, *args: Any) -> WorktreeError | None:
        """Record the call, let it start (latency included); the injected error, if any."""
        self.recorder.record("worktrees", operation, *args)
        await _start(self.latency.get(operation, 0.0))
        return self._failures.check(operation, name)

    # --- the operations, done at once -----------------------------------------------------

    def _create_job_worktree(
        self, job_id: str, base: str | None
    ) -> Result[Worktree, WorktreeError]:
        if not valid_name(job_id):
            return _error("create_job_worktree", f"job id {job_id!r} is not a safe name")
        branch = JOB_BRANCH_PREFIX + job_id
        path = f"{self.root}/fm-{job_id}"
        if path in self._states:
            return Success(self._states[path].worktree)
        if branch not in self.repository.branches:
            start = self.repository.resolve(base or self.repository.head)
            if start is None:
                return _error("create_job_worktree", f"no branch or commit named {base!r}")
            self.repository.branches[branch] = start
        return Success(self._check_out(job_id, path, branch))

    def _create_agent_worktree(
        self, name: str, parent_branch: str
    ) -> Result[Worktree, WorktreeError]:
        operation = "create_agent_worktree"
        if not valid_name(name):
            return _error(operation, f"worktree name {name!r} is not a safe name")
        if not parent_branch.startswith(JOB_BRANCH_PREFIX):
            return _error(
                operation, f"expected a job branch forkmerge/<job id>, got {parent_branch!r}"
            )
        if parent_branch not in self.repository.branches:
            return _error(operation, f"no branch named {parent_branch!r}")
        job_id = parent_branch.removeprefix(JOB_BRANCH_PREFIX)
        path = f"{self.root}/fm-{job_id}-{name}"
        if path in self._states:
            return _error(operation, f"worktree {name!r} already exists at {path}")
        branch = f"{AGENT_BRANCH_PREFIX}{job_id}/{name}"
        # A branch left by an earlier, interrupted attempt starts over from the parent.
        self.repository.branches[branch] = self.repository.branches[parent_branch]
        return Success(self._check_out(name, path, branch))

    def _check_out(self, name: str, path: str, branch: str) -> Worktree:
        head = self.repository.branches[branch]
        files = dict(self.repository.files_at(head))
        worktree = Worktree(name=name, path=path, branch=branch, base_commit=head)
        self._states[path] = _WorktreeState(worktree, files, _dirs_of(files), head)
        return worktree

    def _remove_worktree(
        self, worktree: Worktree, delete_branch: bool
    ) -> Result[None, WorktreeError]:
        state = self._states.get(worktree.path)
        branches = [worktree.branch]
        if state is not None and state.worktree == worktree:
            del self._states[worktree.path]
        elif state is not None and (slot_branches := _slot_branches(state, worktree)) is not None:
            # A slot's branch changes with each agent: either its old or its current one.
            del self._states[worktree.path]
            branches = slot_branches
        for branch in branches:
            checked_out = any(other.worktree.branch == branch for other in self._states.values())
            forkmerge_branch = branch.startswith((JOB_BRANCH_PREFIX, AGENT_BRANCH_PREFIX))
            if delete_branch and forkmerge_branch and not checked_out:
                self.repository.branches.pop(branch, None)
        return Success(None)

    def _create_pool(
        self, job_id: str, slot: int, parent_branch: str
    ) -> Result[Worktree, WorktreeError]:
        operation = "create_pool_worktree"
        if not valid_name(job_id) or slot < 0:
            return _error(operation, f"no pool slot {slot} of job {job_id!r}")
        if parent_branch != JOB_BRANCH_PREFIX + job_id:
            return _error(operation, f"{parent_branch!r} is not the branch of job {job_id}")
        if parent_branch not in self.repository.branches:
            return _error(operation, f"no branch named {parent_branch!r}")
        name = f"pool-{slot}"
        path = f"{self.root}/fm-{job_id}-{name}"
        if path in self._states:
            return _error(operation, f"pool worktree {name!r} already exists at {path}")
        head = self.repository.branches[parent_branch]
        files = dict(self.repository.files_at(head))
        worktree = Worktree(name, path, "", head)
        self._states[path] = _WorktreeState(worktree, files, _dirs_of(files), head, job_id)
        return Success(worktree)

    def _assign_pool(
        self, slot: Worktree, name: str, parent_branch: str
    ) -> Result[Worktree, WorktreeError]:
        operation = "assign_pool_worktree"
        state = self._pool_state(slot)
        if state is None or state.pool_job is None:
            return _error(operation, f"{slot.path} is not a pool worktree")
        if not valid_name(name) or _POOL_NAME.fullmatch(name):
            return _error(operation, f"agent name {name!r} is not a safe agent name")
        if parent_branch != JOB_BRANCH_PREFIX + state.pool_job:
            return _error(operation, f"{parent_branch!r} is not the branch of job {state.pool_job}")
        if parent_branch not in self.repository.branches:
            return _error(operation, f"no branch named {parent_branch!r}")
        branch = f"{AGENT_BRANCH_PREFIX}{state.pool_job}/{name}"
        if any(other.worktree.branch == branch for other in self._states.values()):
            return _error(operation, f"branch {branch} is checked out in another worktree")
        head = self.repository.branches[parent_branch]
        previous = state.worktree.branch
        self.repository.branches[branch] = head
        if previous and previous != branch:
            self.repository.branches.pop(previous, None)
        # Like reset --hard then clean -ffdx: exactly the head's files, but the sticky ones,
        # which make the assignment fail (as the real one does when a path still differs).
        files = {**self.repository.files_at(head), **state.sticky}
        state.files, state.dirs, state.index_commit = files, _dirs_of(files), head
        state.worktree = Worktree(slot.name, slot.path, branch, head)
        if state.sticky:
            stuck = ", ".join(sorted(state.sticky))
            return _error(
                operation,
                f"pool worktree {slot.path} still differs from its commit after its reset: {stuck}",
            )
        return Success(state.worktree)

    def _release_pool(self, worktree: Worktree) -> Result[None, WorktreeError]:
        state = self._pool_state(worktree)
        branches = None if state is None else _slot_branches(state, worktree)
        if state is None or branches is None:
            return _error("release_pool_worktree", f"{worktree.path} is not a pool worktree")
        current = state.worktree.branch
        commit = self.repository.branches.get(current, state.index_commit)
        state.worktree = Worktree(worktree.name, worktree.path, "", commit)
        for branch in branches:
            self.repository.branches.pop(branch, None)
        return Success(None)

    def _pool_clean(self, worktree: Worktree) -> Result[bool, WorktreeError]:
        state = self._pool_state(worktree)
        if state is None or state.pool_job is None:
            return _error("pool_worktree_clean", f"{worktree.path} is not a pool worktree")
        if worktree.branch != state.worktree.branch:
            return Success(False)
        head = self.repository.branches.get(worktree.branch, state.worktree.base_commit)
        exact = state.files == dict(self.repository.files_at(head))
        return Success(exact and state.index_commit == head)

    def _pool_state(self, worktree: Worktree) -> _WorktreeState | None:
        state = self._states.get(worktree.path)
        if state is None or state.pool_job is None or state.worktree.name != worktree.name:
            return None
        return state

    def _commit_changes(
        self, worktree: Worktree, message: str
    ) -> Result[str | None, WorktreeError]:
        state = self._state("commit_changes", worktree)
        if isinstance(state, WorktreeError):
            return Failure(state)
        head = self.repository.branches[worktree.branch]
        tracked = self.repository.files_at(state.index_commit)
        staged = {
            path: content
            for path, content in state.files.items()
            if path in tracked or not is_ignored(path, state.files)
        }
        if staged == dict(self.repository.files_at(head)):
            return Success(None)
        commit_id = self.repository.commit(staged, (head,), message)
        self.repository.branches[worktree.branch] = commit_id
        state.index_commit = commit_id
        return Success(commit_id)

    def _head_commit(self, worktree: Worktree) -> Result[str, WorktreeError]:
        head = self.repository.branches.get(worktree.branch)
        if head is None:
            return _error("head_commit", f"no branch named {worktree.branch!r}")
        return Success(head)

    def _sync_worktree(self, worktree: Worktree) -> Result[None, WorktreeError]:
        state = self._state("sync_worktree", worktree)
        if isinstance(state, WorktreeError):
            return Failure(state)
        head = self.repository.branches[worktree.branch]
        files = dict(self.repository.files_at(head))
        tracked = self.repository.files_at(state.index_commit)
        # Like `git reset --hard`: untracked files stay unless the head has a file there.
        for path, content in state.files.items():
            if path not in tracked and path not in files:
                files[path] = content
        state.files = files
        state.dirs |= _dirs_of(files)
        state.index_commit = head
        return Success(None)

    def _write_file(
        self, worktree: Worktree, relative_path: str, content: bytes, create_dirs: bool
    ) -> Result[None, WorktreeError]:
        state = self._state("write_file", worktree)
        if isinstance(state, WorktreeError):
            return Failure(state)
        problem = _write_problem(state, relative_path, create_dirs)
        if problem is not None:
            return _error("write_file", problem)
        _store(state, relative_path, content)
        return Success(None)

    def _read_file(self, worktree: Worktree, relative_path: str) -> Result[bytes, WorktreeError]:
        state = self._state("read_file", worktree)
        if isinstance(state, WorktreeError):
            return Failure(state)
        path = normalize_relative_path(relative_path)
        if path is None:
            return _error("read_file", _outside(relative_path, worktree))
        if path not in state.files:
            return _error("read_file", f"no file {path} in worktree {worktree.path}")
        return Success(state.files[path])

    def _state(self, operation: str, worktree: Worktree) -> _WorktreeState | WorktreeError:
        state = self._states.get(worktree.path)
        if state is None or state.worktree != worktree:
            return WorktreeError(operation, f"no worktree {worktree.name!r} at {worktree.path}")
        if worktree.branch not in self.repository.branches:
            return WorktreeError(operation, f"no branch named {worktree.branch!r}")
        return state

    # --- test helpers ---------------------------------------------------------------------

    def add_job_worktree(self, job_id: str, *, base: str | None = None) -> Worktree:
        """Test setup: :meth:`create_job_worktree` at once, not recorded, never injected to fail."""
        result = self._create_job_worktree(job_id, base)
        if isinstance(result, Failure):
            raise ValueError(str(result.failure()))
        return result.unwrap()

    def worktree_at(self, worktree_or_path: Worktree | str) -> Worktree:
        """The active worktree at a path (``KeyError`` when there is none)."""
        return self._lookup(worktree_or_path).worktree

    def files(self, worktree_or_path: Worktree | str) -> dict[str, bytes]:
        """A copy of the worktree's files."""
        return dict(self._lookup(worktree_or_path).files)

    def set_file(
        self, worktree_or_path: Worktree | str, relative_path: str, content: bytes | str
    ) -> None:
        """Write a file as a process in the worktree would (parents created; ``str`` as UTF-8)."""
        state = self._lookup(worktree_or_path)
        problem = _write_problem(state, relative_path, create_dirs=True)
        if problem is not None:
            raise ValueError(problem)
        _store(state, relative_path, _as_bytes(content))

    def stick_file(
        self, worktree_or_path: Worktree | str, relative_path: str, content: bytes | str
    ) -> None:
        """Write a file no reset of a pool slot removes (as a root-owned file would resist
        git): the slot is never clean again."""
        self.set_file(worktree_or_path, relative_path, content)
        path = normalize_relative_path(relative_path)
        assert path is not None  # set_file refused it otherwise
        self._lookup(worktree_or_path).sticky[path] = _as_bytes(content)

    def delete_file(self, worktree_or_path: Worktree | str, relative_path: str) -> None:
        """Delete a file of the worktree (``KeyError`` when there is none)."""
        state = self._lookup(worktree_or_path)
        path = normalize_relative_path(relative_path)
        if path is None:
            raise ValueError(_outside(relative_path, state.worktree))
        del state.files[path]

    def branch_files(self, branch: str) -> dict[str, bytes]:
        """A copy of the files at the head of ``branch``."""
        return dict(self.repository.files_at(self.repository.branches[branch]))

    def head_of(self, branch: str) -> str:
        """The commit ``branch`` points at."""
        return self.repository.branches[branch]

    def branches(self) -> list[str]:
        """Every branch name, sorted."""
        return sorted(self.repository.branches)

    def active_worktrees(self) -> list[Worktree]:
        """The worktrees created and not yet removed, oldest first."""
        return [state.worktree for state in self._states.values()]

    def kept_worktrees(self) -> list[Worktree]:
        """The active worktrees :meth:`keep_worktree` marked, oldest first."""
        return [state.worktree for state in self._states.values() if state.kept]

    def commit_log(self, branch: str) -> list[MockCommit]:
        """Every commit reachable from ``branch``, newest first (like ``git log``)."""
        return self.repository.log(self.repository.branches[branch])

    def _lookup(self, worktree_or_path: Worktree | str) -> _WorktreeState:
        path = worktree_or_path if isinstance(worktree_or_path, str) else worktree_or_path.path
        if path not in self._states:
            active = sorted(self._states)
            raise KeyError(f"no active mock worktree at {path!r}; active: {active}")
        return self._states[path]


def _slot_branches(state: _WorktreeState, worktree: Worktree) -> list[str] | None:
    """The agent branches ``worktree`` (a pool slot, maybe in an older state) may delete;
    ``None`` when ``state`` is no slot of that name or the branch is not its job's."""
    if state.pool_job is None or state.worktree.name != worktree.name:
        return None
    prefix = f"{AGENT_BRANCH_PREFIX}{state.pool_job}/"
    if worktree.branch and not worktree.branch.startswith(prefix):
        return None
    return sorted({worktree.branch, state.worktree.branch} - {""})


def _error(operation: str, message: str) -> Failure[WorktreeError]:
    return Failure(WorktreeError(operation, message))


def _outside(relative_path: str, worktree: Worktree) -> str:
    return f"path {relative_path!r} must stay inside the worktree {worktree.path}"


def _write_problem(state: _WorktreeState, relative_path: str, create_dirs: bool) -> str | None:
    path = normalize_relative_path(relative_path)
    if path is None:
        return _outside(relative_path, state.worktree)
    for directory in parent_dirs(path):
        if directory in state.files:
            return f"{directory} is a file, not a directory, in {state.worktree.path}"
        if not create_dirs and directory not in state.dirs:
            return f"no directory {directory} in {state.worktree.path} (create_dirs is off)"
    if path in state.dirs:
        return f"{path} is a directory in {state.worktree.path}"
    return None


def _store(state: _WorktreeState, relative_path: str, content: bytes) -> None:
    path = normalize_relative_path(relative_path)
    assert path is not None  # checked by _write_problem
    state.files[path] = content
    state.dirs.update(parent_dirs(path))

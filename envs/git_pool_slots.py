"""Pool slots on real git: worktrees a job reuses across agents, through pygit2.

A *pool slot* is a worktree :class:`~envs.pool.WorktreePool` keeps for a job and
hands to one agent after another, instead of checking a whole worktree out per
agent. Its layout follows :mod:`envs.worktree_layout`: slot ``n`` of job ``j`` is
named ``pool-<n>``, its worktree id is ``worktree_id(j, "pool-<n>")`` and it has
the usual marker, whose ``branch`` records the slot's state:

- ``forkmerge-agents/<j>/pool-<n>`` while it is being created (a temporary
  branch: libgit2 adds a worktree on a branch, never detached);
- ``""`` while idle: HEAD detached, no branch of its own;
- ``forkmerge-agents/<j>/<agent>`` while assigned to that agent.

The marker is rewritten after the branch it names is created and before the branch
it named is deleted, so whatever instant a process dies at, every agent branch a
slot touched is either named by its marker or found as an agent branch of the job:
:meth:`GitWorktreeManager.agent_leftovers` reports both, and removing the slot
deletes the branch its marker names as well as the one asked for.

:class:`GitPoolSlots` does the work for :class:`~envs.git_worktrees.GitWorktreeManager`,
which delegates its ``*_pool_worktree`` methods to it and lends it its lock and
the helpers that add and recognise worktrees (this keeps ``git_worktrees.py`` to
one concept: creating and removing worktrees).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable
from functools import partial
from typing import final

import attrs
import pygit2
import trio
from pygit2.enums import RepositoryOpenFlag
from returns.result import Failure, Result

from envs.git_checkout import placeholder_commit
from envs.git_repository import (
    GitProblem,
    RepositoryLocation,
    branch_head,
    open_repository,
    run_git,
)
from envs.protocols import Worktree, WorktreeError
from envs.slot_reset import reset_slot, stray_paths
from envs.tree_removal import remove_tree
from envs.worktree_layout import (
    WorktreeMarker,
    agent_branch,
    job_id_of_branch,
    name_problem,
    pool_slot_name,
    read_marker,
    worktree_id,
    worktree_id_problem,
    write_marker,
)

__all__ = [
    "GitPoolSlots",
    "is_pool_slot",
    "leftover_slot",
    "slot_branches",
]

_SLOT_NAME = re.compile(r"pool-(0|[1-9][0-9]{0,8})")
_LOADED_AT = time.time()  # as in envs.git_worktrees: older markers with our pid are not ours

AddWorktree = Callable[[pygit2.Repository, pygit2.Reference, str, WorktreeMarker], None]
FillWorktree = Callable[[str, pygit2.Oid], None]
Discard = Callable[[pygit2.Repository, str, str], None]


def is_pool_slot(identifier: str, marker: WorktreeMarker) -> bool:
    """Whether ``marker``, found for git worktree ``identifier``, is a pool slot's marker."""
    return (
        marker.name is not None
        and _SLOT_NAME.fullmatch(marker.name) is not None
        and identifier == worktree_id(marker.job_id, marker.name)
    )


def slot_branches(identifier: str, marker: WorktreeMarker, branch: str) -> list[str] | None:
    """The agent branches removing slot ``identifier`` as ``branch`` may delete, or ``None``
    when ``marker`` is no slot marker or ``branch`` is no branch of the slot's job.

    A slot's branch changes with every agent; whoever removes it may know an older
    state (``""``, a previous agent) than its marker records, so both go.
    """
    if not is_pool_slot(identifier, marker):
        return None
    prefix = agent_branch(marker.job_id, "")
    if branch and not branch.startswith(prefix):
        return None
    named = {branch, marker.branch} - {""}
    return sorted(each for each in named if each.startswith(prefix))


@final
@attrs.frozen
class _EmptySlot:
    """A slot just added on its temporary branch, its files not checked out yet."""

    worktree: Worktree
    marker: WorktreeMarker


def _open_slot(path: str) -> pygit2.Repository:
    if not os.path.isdir(path):
        raise GitProblem(f"pool worktree {path} does not exist")
    try:
        return pygit2.Repository(path, RepositoryOpenFlag.NO_SEARCH)
    except pygit2.GitError:
        raise GitProblem(f"{path} is not a git worktree") from None


def _detach(repo: pygit2.Repository) -> str:
    """Detach the worktree's HEAD at the commit it is on; that commit (hex)."""
    if repo.head_is_unborn:
        raise GitProblem(f"worktree {repo.workdir} has no commit checked out")
    commit = repo.head.peel(pygit2.Commit).id
    if not repo.head_is_detached:
        repo.set_head(commit)
    return str(commit)


def _delete_branch(repo: pygit2.Repository, branch: str) -> None:
    reference = repo.lookup_branch(branch)
    if reference is not None:
        reference.delete()


@final
class GitPoolSlots:
    """The pool-slot operations of one repository's worktree manager.

    Created by :class:`~envs.git_worktrees.GitWorktreeManager` with its location,
    state directory and lock (slot operations move refs, so they take turns with
    the manager's own), and with its helpers: ``add`` adds and marks a worktree
    (undoing it all on failure), ``fill`` checks a commit's files out into a new,
    empty worktree (:func:`envs.git_checkout.fill_worktree`), ``discard`` deletes
    one quietly, ``marker`` reads a worktree's marker (pending ones included).
    """

    def __init__(
        self,
        location: RepositoryLocation,
        state_dir: str,
        lock: trio.Lock,
        *,
        add: AddWorktree,
        fill: FillWorktree,
        discard: Discard,
        marker: Callable[[str], WorktreeMarker | None],
    ) -> None:
        self._location = location
        self._state_dir = state_dir
        self._lock = lock
        self._add = add
        self._fill = fill
        self._discard = discard
        self._marker = marker
        # Slots created and not lent yet, by path: the commit whose files they hold
        # (nothing else has touched them, so assigning that commit needs no reset).
        self._fresh: dict[str, str] = {}

    # -- create ---------------------------------------------------------------------------

    async def create(
        self, job_id: str, slot: int, parent_branch: str
    ) -> Result[Worktree, WorktreeError]:
        """Add slot ``slot`` of job ``job_id``, detached at ``parent_branch``'s head.

        ``parent_branch`` must be the job's branch. A slot of that number left by
        an earlier process is replaced; one this process made is an error.
        Cancellation is possible while waiting for the manager's lock; once
        started, the creation runs to its end (a cancelled caller would lose the
        worktree it made). The checkout of the files runs without the lock,
        beside other slots' and agents' operations.
        """
        operation = "create_pool_worktree"
        problem = name_problem("job id", job_id)
        if problem is None and not 0 <= slot < 10**9:
            problem = f"pool slot must be a number from 0 to 999999999, got {slot}"
        if problem is None and job_id_of_branch(parent_branch) != job_id:
            problem = f"parent branch {parent_branch!r} is not the branch of job {job_id}"
        if problem is not None:
            return Failure(WorktreeError(operation, problem))
        subject = f"pool slot {slot} of job {job_id}"
        async with self._lock:  # waiting may be cancelled: nothing has changed yet
            with trio.CancelScope(shield=True):
                added = await run_git(
                    operation, subject, partial(self._add_empty, job_id, slot, parent_branch)
                )
        if isinstance(added, Failure):
            return added
        empty = added.unwrap()
        with trio.CancelScope(shield=True):
            filled = await run_git(operation, subject, partial(self._fill_slot, empty))
            async with self._lock:
                if isinstance(filled, Failure):
                    await run_git(operation, subject, partial(self._undo, empty))
                    settled: Result[Worktree, WorktreeError] = Failure(filled.failure())
                else:
                    settled = await run_git(operation, subject, partial(self._settle, empty))
        return settled

    def _add_empty(self, job_id: str, slot: int, parent_branch: str) -> _EmptySlot:
        """Add the slot's worktree on a temporary branch at the placeholder commit."""
        repo = open_repository(self._location)
        start = repo[branch_head(repo, parent_branch)].peel(pygit2.Commit)
        name = pool_slot_name(slot)
        identifier = worktree_id(job_id, name)
        path = os.path.join(self._state_dir, identifier)
        admin = self._location.admin_dir(identifier)
        if os.path.isdir(admin):
            self._replace_leftover(repo, identifier, path)
        elif os.path.lexists(path):
            remove_tree(path)  # our directory without git metadata: a crash leftover
        temporary = agent_branch(job_id, name)
        placeholder = repo[placeholder_commit(repo)].peel(pygit2.Commit)
        reference = repo.create_branch(temporary, placeholder, True)
        marker = WorktreeMarker(
            job_id, name, temporary, path, str(start.id), time.time(), os.getpid()
        )
        try:
            self._add(repo, reference, identifier, marker)
        except BaseException:
            with contextlib.suppress(pygit2.GitError, KeyError):
                _delete_branch(repo, temporary)
            raise
        return _EmptySlot(Worktree(identifier, path, "", str(start.id)), marker)

    def _fill_slot(self, empty: _EmptySlot) -> None:
        """Check the start commit's files out and detach the slot's HEAD at it."""
        start = pygit2.Oid(hex=empty.worktree.base_commit)
        self._fill(empty.worktree.path, start)
        _open_slot(empty.worktree.path).set_head(start)

    def _settle(self, empty: _EmptySlot) -> Worktree:
        """Record the slot as idle and delete its temporary branch."""
        try:
            write_marker(
                self._location.admin_dir(empty.worktree.name),
                attrs.evolve(empty.marker, branch=""),
            )
            _delete_branch(open_repository(self._location), empty.marker.branch)
        except BaseException:
            self._undo(empty)
            raise
        self._fresh[empty.worktree.path] = empty.worktree.base_commit
        return empty.worktree

    def _undo(self, empty: _EmptySlot) -> None:
        repo = open_repository(self._location)
        self._discard(repo, empty.worktree.name, empty.worktree.path)
        with contextlib.suppress(pygit2.GitError, KeyError):
            _delete_branch(repo, empty.marker.branch)

    def _replace_leftover(self, repo: pygit2.Repository, identifier: str, path: str) -> None:
        recorded = repo.lookup_worktree(identifier).path
        if os.path.realpath(recorded) != os.path.realpath(path):
            raise GitProblem(f"git worktree {identifier} is at {recorded}, not at {path}")
        old = self._marker(identifier)
        if old is None or not is_pool_slot(identifier, old):
            raise GitProblem(f"git worktree {identifier} exists and is not a forkmerge pool slot")
        if old.pid == os.getpid() and old.created >= _LOADED_AT:
            raise GitProblem(f"pool worktree {path} already exists in this process")
        self._discard(repo, identifier, path)  # left over by an earlier process
        for branch in slot_branches(identifier, old, "") or []:
            _delete_branch(repo, branch)

    # -- assign ---------------------------------------------------------------------------

    async def assign(
        self, slot_worktree: Worktree, name: str, parent_branch: str
    ) -> Result[Worktree, WorktreeError]:
        """Give the slot to agent ``name``: its branch at ``parent_branch``'s current head,
        checked out by a hard reset (only changed files are written), every untracked
        and ignored file and every untracked directory deleted, nested repositories
        included; the paths it touched are checked, and a slot that still differs is
        a failure.

        A leftover agent branch of that name is replaced; the branch of a previous
        agent still recorded on the slot is deleted. Cancellation is possible while
        waiting for the manager's lock (nothing changed yet); once started, the
        assignment runs to its end.
        """
        operation = "assign_pool_worktree"
        problem = worktree_id_problem(slot_worktree.name) or name_problem("agent name", name)
        if problem is None and _SLOT_NAME.fullmatch(name):
            problem = f"agent name {name!r} is reserved for pool slots"
        job_id = job_id_of_branch(parent_branch)
        if problem is None and job_id is None:
            problem = f"parent branch {parent_branch!r} is not a forkmerge job branch"
        if problem is not None or job_id is None:
            return Failure(WorktreeError(operation, problem or ""))
        subject = f"pool worktree {slot_worktree.path}"
        async with self._lock:  # waiting may be cancelled: nothing has changed yet
            with trio.CancelScope(shield=True):
                switched = await run_git(
                    operation,
                    subject,
                    partial(self._switch, slot_worktree, job_id, name, parent_branch),
                )
        if isinstance(switched, Failure):
            return switched
        # The reset touches this worktree only: other slots' refs need not wait for it.
        with trio.CancelScope(shield=True):
            assigned = switched.unwrap()
            if self._fresh.pop(assigned.path, None) == assigned.base_commit:
                return switched  # just checked out at that commit: nothing to reset
            reset = await run_git(operation, subject, partial(self._reset, assigned))
        return reset

    def _slot_marker(self, worktree: Worktree, job_id: str | None = None) -> WorktreeMarker:
        """The slot's marker, checked to describe ``worktree`` (and job ``job_id``)."""
        marker = self._marker(worktree.name)
        if (
            marker is None
            or not is_pool_slot(worktree.name, marker)
            or os.path.realpath(marker.path) != os.path.realpath(worktree.path)
            or (job_id is not None and marker.job_id != job_id)
        ):
            owner = "" if job_id is None else f" of job {job_id}"
            raise GitProblem(f"{worktree.path} is not a forkmerge pool worktree{owner}")
        return marker

    def _switch(self, slot: Worktree, job_id: str, name: str, parent_branch: str) -> Worktree:
        marker = self._slot_marker(slot, job_id)
        repo = open_repository(self._location)
        head = branch_head(repo, parent_branch)
        slot_repo = _open_slot(slot.path)
        _detach(slot_repo)
        branch = agent_branch(job_id, name)
        admin = self._location.admin_dir(slot.name)
        repo.create_branch(branch, repo[head].peel(pygit2.Commit), True)
        write_marker(admin, attrs.evolve(marker, branch=branch, base_commit=str(head)))
        slot_repo.set_head(f"refs/heads/{branch}")
        for previous in slot_branches(slot.name, marker, "") or []:
            if previous != branch:
                _delete_branch(repo, previous)
        return Worktree(slot.name, slot.path, branch, str(head))

    def _reset(self, assigned: Worktree) -> Worktree:
        """``git reset --hard`` and ``git clean -ffdx`` in one scan of the worktree, the
        paths it touched checked (:func:`envs.slot_reset.reset_slot`)."""
        reset_slot(_open_slot(assigned.path), pygit2.Oid(hex=assigned.base_commit))
        return assigned

    # -- release and check ----------------------------------------------------------------

    async def release(self, worktree: Worktree) -> Result[None, WorktreeError]:
        """Detach the slot's HEAD where it is and delete its agent branch; files stay.

        Idempotent. Cancellation is possible while waiting for the manager's lock;
        once started, the release runs to its end.
        """
        operation = "release_pool_worktree"
        problem = worktree_id_problem(worktree.name)
        if problem is not None:
            return Failure(WorktreeError(operation, problem))
        async with self._lock:  # waiting may be cancelled: nothing has changed yet
            with trio.CancelScope(shield=True):
                released = await run_git(
                    operation, f"pool worktree {worktree.path}", partial(self._release, worktree)
                )
        return released

    def _release(self, worktree: Worktree) -> None:
        marker = self._slot_marker(worktree)
        branches = slot_branches(worktree.name, marker, worktree.branch)
        if branches is None:
            raise GitProblem(f"branch {worktree.branch} is not an agent branch of {worktree.path}")
        commit = _detach(_open_slot(worktree.path))
        idle = attrs.evolve(marker, branch="", base_commit=commit)
        write_marker(self._location.admin_dir(worktree.name), idle)
        repo = open_repository(self._location)
        for branch in branches:
            _delete_branch(repo, branch)

    async def is_clean(self, worktree: Worktree) -> Result[bool, WorktreeError]:
        """Whether the slot has ``worktree.branch`` checked out (detached when ``""``) and its
        files, index and directories are exactly that commit's tree."""

        def check() -> bool:
            self._slot_marker(worktree)
            repo = _open_slot(worktree.path)
            if repo.head_is_unborn:
                return False
            if worktree.branch:
                if repo.head_is_detached or repo.head.shorthand != worktree.branch:
                    return False
            elif not repo.head_is_detached:
                return False
            return not stray_paths(repo)

        return await run_git("pool_worktree_clean", f"pool worktree {worktree.path}", check)


def leftover_slot(identifier: str, admin_root: str, job_id: str) -> Worktree | None:
    """The pool slot of job ``job_id`` whose admin directory is ``admin_root/identifier``,
    as its marker records it (``branch`` its current agent's, or ``""``)."""
    marker = read_marker(os.path.join(admin_root, identifier))
    if marker is None or marker.job_id != job_id or not is_pool_slot(identifier, marker):
        return None
    return Worktree(identifier, marker.path, marker.branch, marker.base_commit)

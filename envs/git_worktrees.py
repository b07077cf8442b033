"""The real worktree manager: forkmerge's worktrees and branches, through pygit2."""

from __future__ import annotations

import contextlib
import os
import time
from functools import partial
from typing import TypeVar, final

import attrs
import pygit2
import trio
from returns.result import Failure, Result

from envs.git_checkout import CheckoutFilters, fill_worktree, placeholder_commit
from envs.git_leftovers import agent_leftovers_of, clear_stale_locks, locate_agent
from envs.git_pool_slots import GitPoolSlots, slot_branches
from envs.git_repository import (
    GitProblem,
    RepositoryLocation,
    branch_head,
    locate_repository,
    open_repository,
    run_git,
)
from envs.protocols import Worktree, WorktreeError
from envs.tree_removal import remove_tree
from envs.worktree_contents import commit_all, read_confined, sync_to_branch, write_confined
from envs.worktree_layout import (
    MARKER_FILE,
    WorktreeMarker,
    agent_branch,
    job_branch,
    job_id_of_branch,
    name_problem,
    owns_branch,
    read_marker,
    worktree_id,
    worktree_id_problem,
    write_marker,
)

__all__ = ["GitWorktreeManager"]

T = TypeVar("T")

# Markers written by this process are newer than this; an older marker with our
# pid was left by an earlier process that happened to have the same pid.
_LOADED_AT = time.time()


def _same_path(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _checked_out_branch(path: str) -> str | None:
    try:
        repo = pygit2.Repository(path, pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
    except pygit2.GitError:
        return None
    if repo.head_is_detached or repo.head_is_unborn:
        return None
    return repo.head.shorthand


def _resolve_commit(repo: pygit2.Repository, revision: str) -> pygit2.Commit:
    try:
        commit = repo.revparse_single(revision).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError):
        raise GitProblem(f"base {revision!r} names no commit in the repository") from None
    return commit


@final
class GitWorktreeManager:
    """Creates, commits in and removes forkmerge's worktrees of one repository, with pygit2.

    Worktrees live in the state directory (default ``<git dir>/forkmerge/worktrees``),
    outside the user's working tree; their names, branches and markers are laid out
    as :mod:`envs.worktree_layout` describes. Creating and removing worktrees
    changes shared metadata (refs, ``<git dir>/worktrees``), so those run one at a
    time; committing, syncing and file access touch only their own worktree and
    run concurrently. Every pygit2 call runs in a worker thread on a fresh
    ``pygit2.Repository``. The user's branch, HEAD and working tree are never
    touched.

    Args:
        repo_path: any directory inside the repository.
        state_dir: where to create worktrees instead of the default.

    Raises:
        NotARepositoryError: ``repo_path`` is not inside a git repository.
    """

    def __init__(self, repo_path: str, *, state_dir: str | None = None) -> None:
        self._location = locate_repository(repo_path)
        self._state_dir = os.path.abspath(state_dir or self._location.default_state_dir)
        self._lock = trio.Lock()
        self._filters = CheckoutFilters()
        self._pool_slots = GitPoolSlots(
            self._location,
            self._state_dir,
            self._lock,
            add=self._add,
            fill=self._fill,
            discard=self._discard_quietly,
            marker=self._marker,
        )

    @property
    def location(self) -> RepositoryLocation:
        return self._location

    @property
    def state_dir(self) -> str:
        return self._state_dir

    # -- creation ---------------------------------------------------------------------

    async def create_job_worktree(
        self, job_id: str, *, base: str | None = None
    ) -> Result[Worktree, WorktreeError]:
        """Create (or, for a resumed job, reuse) the job branch and its worktree.

        A new job branch starts at ``base`` (any revision; default: HEAD of the
        repository ``repo_path`` is in). An existing job branch is kept as it
        is and ``base`` is ignored; its worktree is reused when it is still
        checked out at the expected path, and added again otherwise. Lock files
        a killed run left on the job's refs and worktrees are cleared first (the
        caller holds the job's lock).
        """
        problem = name_problem("job id", job_id)
        if problem is not None:
            return Failure(WorktreeError("create_job_worktree", problem))
        async with self._lock:
            return await run_git(
                "create_job_worktree",
                f"branch {job_branch(job_id)}",
                partial(self._create_job, job_id, base),
            )

    async def create_agent_worktree(
        self, name: str, parent_branch: str
    ) -> Result[Worktree, WorktreeError]:
        """Create the agent branch ``forkmerge-agents/<job>/<name>`` at ``parent_branch``'s
        head, and its worktree.

        ``parent_branch`` must be a job branch ``forkmerge/<job>``. A leftover
        worktree and branch of the same agent from an earlier process (a
        resumed job) are replaced; one this process still uses is an error.
        Only adding the (empty) worktree and its branch takes the manager's turn;
        the checkout of the files runs beside other agents' operations. Once the
        worktree is added, cancellation waits for the creation to end (or to be
        undone after a failure).
        """
        operation = "create_agent_worktree"
        problem = name_problem("agent name", name)
        job_id = job_id_of_branch(parent_branch)
        if problem is None and job_id is None:
            problem = f"parent branch {parent_branch!r} is not a forkmerge job branch"
        if problem is not None or job_id is None:
            return Failure(WorktreeError(operation, problem or ""))
        subject = f"branch {agent_branch(job_id, name)}"
        async with self._lock:
            added = await run_git(
                operation, subject, partial(self._create_agent, job_id, name, parent_branch)
            )
        if isinstance(added, Failure):
            return added
        empty = added.unwrap()
        with trio.CancelScope(shield=True):
            filled = await run_git(operation, subject, partial(self._fill_agent, empty))
            if isinstance(filled, Failure):
                async with self._lock:
                    await run_git(operation, subject, partial(self._undo_agent, empty))
        return filled

    async def agent_leftovers(self, job_id: str) -> Result[list[Worktree], WorktreeError]:
        """Agent branches ``forkmerge-agents/<job_id>/*`` and marked agent worktrees of the job."""
        problem = name_problem("job id", job_id)
        if problem is not None:
            return Failure(WorktreeError("agent_leftovers", problem))
        return await run_git(
            "agent_leftovers",
            f"job {job_id}",
            partial(agent_leftovers_of, self._location, self._state_dir, job_id),
        )

    def locate_agent_worktree(
        self, name: str, parent_branch: str
    ) -> Result[Worktree, WorktreeError]:
        """The worktree agent ``name`` of ``parent_branch``'s job has or would have.

        Nothing is read or changed; ``base_commit`` is empty (unknown here).
        """
        return locate_agent(self._state_dir, name, parent_branch)

    def _create_job(self, job_id: str, base: str | None) -> Worktree:
        clear_stale_locks(self._location, job_id)
        repo = open_repository(self._location)
        branch = job_branch(job_id)
        reference = repo.lookup_branch(branch)
        if reference is None:
            reference = repo.create_branch(branch, _resolve_commit(repo, base or "HEAD"))
        head = str(reference.target)
        identifier = worktree_id(job_id, None)
        path = os.path.join(self._state_dir, identifier)
        marker = self._reusable_job_worktree(repo, job_id, path, head)
        if marker is None:
            marker = WorktreeMarker(job_id, None, branch, path, head, time.time(), os.getpid())
            self._add(repo, reference, identifier, marker)
        return Worktree(identifier, path, branch, marker.base_commit)

    def _reusable_job_worktree(
        self, repo: pygit2.Repository, job_id: str, path: str, head: str
    ) -> WorktreeMarker | None:
        """The marker of the job's worktree if it can be reused; clears a broken one."""
        identifier = worktree_id(job_id, None)
        branch = job_branch(job_id)
        admin = self._location.admin_dir(identifier)
        if not os.path.isdir(admin):
            if os.path.lexists(path):
                remove_tree(path)  # our directory without git metadata: a crash leftover
            return None
        self._check_recorded_path(repo, identifier, path)
        marker = read_marker(admin)
        if marker is not None and marker.branch != branch:
            raise GitProblem(f"git worktree {identifier} belongs to branch {marker.branch}")
        if _checked_out_branch(path) != branch:
            self._discard(repo, identifier, path)
            return None
        if marker is None:  # added, then interrupted before the marker was written
            marker = WorktreeMarker(job_id, None, branch, path, head, time.time(), os.getpid())
            write_marker(admin, marker)
        return marker

    def _create_agent(self, job_id: str, name: str, parent_branch: str) -> Worktree:
        """Add the agent's worktree on its branch at the placeholder commit (no files yet)."""
        repo = open_repository(self._location)
        start = repo[branch_head(repo, parent_branch)].peel(pygit2.Commit)
        branch = agent_branch(job_id, name)
        identifier = worktree_id(job_id, name)
        path = os.path.join(self._state_dir, identifier)
        admin = self._location.admin_dir(identifier)
        if os.path.isdir(admin):
            self._check_recorded_path(repo, identifier, path)
            old = self._marker(identifier)
            if old is None or old.branch != branch:
                raise GitProblem(f"git worktree {identifier} exists and is not forkmerge's")
            if old.pid == os.getpid() and old.created >= _LOADED_AT:
                raise GitProblem(f"worktree {path} of branch {branch} is already in use")
            self._discard(repo, identifier, path)  # left over by an earlier process
        elif os.path.lexists(path):
            remove_tree(path)
        placeholder = repo[placeholder_commit(repo)].peel(pygit2.Commit)
        reference = repo.create_branch(branch, placeholder, True)
        marker = WorktreeMarker(job_id, name, branch, path, str(start.id), time.time(), os.getpid())
        self._add(repo, reference, identifier, marker)
        return Worktree(identifier, path, branch, marker.base_commit)

    def _fill_agent(self, empty: Worktree) -> Worktree:
        """Check the base commit's files out into the agent's new worktree, then move its
        branch there from the placeholder."""
        start = pygit2.Oid(hex=empty.base_commit)
        self._fill(empty.path, start)
        repo = open_repository(self._location)
        reference = repo.lookup_branch(empty.branch)
        if reference is None:
            raise GitProblem(f"branch {empty.branch} vanished while its files were checked out")
        reference.set_target(start)
        return empty

    def _fill(self, path: str, commit: pygit2.Oid) -> None:
        fill_worktree(path, commit, self._filters)

    def _undo_agent(self, worktree: Worktree) -> None:
        repo = open_repository(self._location)
        self._discard_quietly(repo, worktree.name, worktree.path)
        with contextlib.suppress(pygit2.GitError, KeyError):
            reference = repo.lookup_branch(worktree.branch)
            if reference is not None:
                reference.delete()

    def _check_recorded_path(self, repo: pygit2.Repository, identifier: str, path: str) -> None:
        recorded = repo.lookup_worktree(identifier).path
        if not _same_path(recorded, path):
            raise GitProblem(f"git worktree {identifier} is at {recorded}, not at {path}")

    def _add(
        self,
        repo: pygit2.Repository,
        reference: pygit2.Reference,
        identifier: str,
        marker: WorktreeMarker,
    ) -> None:
        """Add the worktree (checking its files out) and mark it; undo it all on failure."""
        os.makedirs(self._state_dir, exist_ok=True)
        # The marker goes next to the worktree first: a process killed during the
        # (slow) checkout leaves a worktree this manager can still recognise.
        pending = self._pending_marker_dir(identifier)
        os.makedirs(pending, exist_ok=True)
        write_marker(pending, marker)
        try:
            repo.add_worktree(identifier, marker.path, reference)
            write_marker(self._location.admin_dir(identifier), marker)
        except BaseException:
            self._discard_quietly(repo, identifier, marker.path)
            raise
        self._drop_pending_marker(identifier)

    def _drop_pending_marker(self, identifier: str) -> None:
        pending = self._pending_marker_dir(identifier)
        if os.path.lexists(pending):
            remove_tree(pending)
        with contextlib.suppress(OSError):  # the last one out removes the directory
            os.rmdir(os.path.dirname(pending))

    def _pending_marker_dir(self, identifier: str) -> str:
        return os.path.join(self._state_dir, ".pending", identifier)

    def _marker(self, identifier: str) -> WorktreeMarker | None:
        """The worktree's marker: in its admin directory, or still pending beside it."""
        marker = read_marker(self._location.admin_dir(identifier))
        if marker is None and not os.path.lexists(
            os.path.join(self._location.admin_dir(identifier), MARKER_FILE)
        ):
            marker = read_marker(self._pending_marker_dir(identifier))
        return marker

    # -- pool slots (the work is in envs.git_pool_slots) ---------------------------------

    async def create_pool_worktree(
        self, job_id: str, slot: int, parent_branch: str
    ) -> Result[Worktree, WorktreeError]:
        """Create pool slot ``slot`` of the job: a worktree detached at ``parent_branch``'s
        head, ``branch`` ``""``; see :mod:`envs.git_pool_slots`."""
        return await self._pool_slots.create(job_id, slot, parent_branch)

    async def assign_pool_worktree(
        self, slot_worktree: Worktree, name: str, parent_branch: str
    ) -> Result[Worktree, WorktreeError]:
        """Give the slot to agent ``name``: a fresh agent branch at the parent's current
        head, the files reset to it, untracked and ignored files deleted."""
        return await self._pool_slots.assign(slot_worktree, name, parent_branch)

    async def release_pool_worktree(self, worktree: Worktree) -> Result[None, WorktreeError]:
        """Detach the slot's HEAD and delete its agent branch; the files stay. Idempotent."""
        return await self._pool_slots.release(worktree)

    async def pool_worktree_clean(self, worktree: Worktree) -> Result[bool, WorktreeError]:
        """Whether the slot is exactly its branch head's tree (nothing changed, untracked
        or ignored)."""
        return await self._pool_slots.is_clean(worktree)

    async def keep_worktree(self, worktree: Worktree) -> Result[None, WorktreeError]:
        """Record ``kept`` in the worktree's marker (:class:`~envs.worktree_layout.WorktreeMarker`).

        A worktree without forkmerge's marker for ``worktree.path`` is refused.
        """
        problem = worktree_id_problem(worktree.name)
        if problem is not None:
            return Failure(WorktreeError("keep_worktree", problem))

        def keep() -> None:
            admin = self._location.admin_dir(worktree.name)
            marker = read_marker(admin)
            if marker is None or not _same_path(marker.path, worktree.path):
                raise GitProblem(f"{worktree.path} has no forkmerge marker to record it in")
            if not marker.kept:
                write_marker(admin, attrs.evolve(marker, kept=True))

        async with self._lock:  # pool slots rewrite their markers under it too
            return await run_git("keep_worktree", f"worktree {worktree.path}", keep)

    # -- removal ----------------------------------------------------------------------

    async def remove_worktree(
        self, worktree: Worktree, *, delete_branch: bool = True
    ) -> Result[None, WorktreeError]:
        """Delete the worktree's directory and git metadata, and its branch unless told not to.

        Idempotent: whatever is already gone is skipped. A worktree without
        forkmerge's marker, or a branch outside forkmerge's namespaces, is
        refused and left alone. The files are deleted first, beside other
        operations; only pruning git's metadata and deleting the branch take the
        manager's turn. Once the files are being deleted, cancellation waits for
        the removal to end.
        """
        operation = "remove_worktree"
        problem = worktree_id_problem(worktree.name)
        if problem is not None:
            return Failure(WorktreeError(operation, problem))
        subject = f"worktree {worktree.path}"
        with trio.CancelScope(shield=True):
            deleted = await run_git(
                operation, subject, partial(self._delete_files, worktree, delete_branch)
            )
            if isinstance(deleted, Failure):
                return deleted
            async with self._lock:
                unregistered = await run_git(
                    operation, subject, partial(self._unregister, worktree, deleted.unwrap())
                )
        return unregistered

    def _delete_files(self, worktree: Worktree, delete_branch: bool) -> list[str]:
        """Check that ``worktree`` is forkmerge's and delete its directory; the branches
        to delete with it."""
        if delete_branch and worktree.branch and not owns_branch(worktree.branch):
            raise GitProblem(f"branch {worktree.branch} is not forkmerge's; nothing was removed")
        admin = self._location.admin_dir(worktree.name)
        branches = [worktree.branch] if worktree.branch else []
        if os.path.isdir(admin):
            marker = self._marker(worktree.name)
            # A pool slot's branch changes with each agent: its marker may know a newer one.
            in_slot = (
                None if marker is None else slot_branches(worktree.name, marker, worktree.branch)
            )
            if in_slot is not None:
                branches = in_slot
            if (
                marker is None
                or (marker.branch != worktree.branch and in_slot is None)
                or not _same_path(marker.path, worktree.path)
            ):
                raise GitProblem(
                    f"git worktree {worktree.name} has no {MARKER_FILE} matching "
                    f"{worktree.path} on {worktree.branch}; it was left alone"
                )
        elif not _same_path(worktree.path, os.path.join(self._state_dir, worktree.name)):
            raise GitProblem(
                f"{worktree.path} is not {worktree.name} in the state directory "
                f"{self._state_dir}; it was left alone"
            )
        if os.path.lexists(worktree.path):
            remove_tree(worktree.path)
        return branches if delete_branch else []

    def _unregister(self, worktree: Worktree, branches: list[str]) -> None:
        """Prune the (deleted) worktree's git metadata and delete ``branches``."""
        repo = open_repository(self._location)
        self._discard(repo, worktree.name, worktree.path)
        for branch in branches:
            reference = repo.lookup_branch(branch)
            if reference is not None:
                reference.delete()

    def _discard(self, repo: pygit2.Repository, identifier: str, path: str) -> None:
        """Delete a worktree's directory and prune its metadata (ownership already checked)."""
        if os.path.lexists(path):
            remove_tree(path)
        admin = self._location.admin_dir(identifier)
        if os.path.isdir(admin):
            try:
                repo.lookup_worktree(identifier).prune(True)
            except (KeyError, OSError, pygit2.GitError):
                remove_tree(admin)  # metadata too damaged for libgit2: remove it as prune would
        self._drop_pending_marker(identifier)

    def _discard_quietly(self, repo: pygit2.Repository, identifier: str, path: str) -> None:
        # The original error is the one to report.
        with contextlib.suppress(OSError, KeyError, pygit2.GitError):
            self._discard(repo, identifier, path)

    # -- work inside a worktree (the work is in envs.worktree_contents) -------------------

    async def commit_changes(
        self, worktree: Worktree, message: str
    ) -> Result[str | None, WorktreeError]:
        """Stage every change (new, modified, deleted; ignored files stay out) and commit it.

        The commit goes on the worktree's branch with the author from the
        environment or git config; ``None`` when the tree is unchanged. A merge
        left uncommitted in the worktree is concluded with a merge commit. If
        the branch was moved by a merge since the worktree was last synced,
        call :meth:`sync_worktree` first, or the commit would undo the merge.
        """
        return await run_git(
            "commit_changes", f"worktree {worktree.path}", partial(commit_all, worktree, message)
        )

    async def head_commit(self, worktree: Worktree) -> Result[str, WorktreeError]:
        """The commit (hex) the worktree's branch points at."""

        def head() -> str:
            return str(branch_head(open_repository(self._location), worktree.branch))

        return await run_git("head_commit", f"branch {worktree.branch}", head)

    async def sync_worktree(self, worktree: Worktree) -> Result[None, WorktreeError]:
        """Reset the worktree's index and files to its branch head (like ``git reset --hard``).

        Files the branch no longer tracks are deleted; untracked files stay.
        """
        return await run_git(
            "sync_worktree", f"worktree {worktree.path}", partial(sync_to_branch, worktree)
        )

    async def write_file(
        self,
        worktree: Worktree,
        relative_path: str,
        content: bytes,
        *,
        create_dirs: bool,
        mode: int = 0o644,
    ) -> Result[None, WorktreeError]:
        """Write ``content`` to ``relative_path`` inside the worktree (see :mod:`envs.paths`).

        Missing parent directories are created only with ``create_dirs``; a
        symlink as the file itself is followed only if it stays inside.
        """
        return await run_git(
            "write_file",
            f"{relative_path!r} in worktree {worktree.path}",
            partial(
                write_confined, worktree, relative_path, content, create_dirs=create_dirs, mode=mode
            ),
        )

    async def read_file(
        self, worktree: Worktree, relative_path: str
    ) -> Result[bytes, WorktreeError]:
        """Read ``relative_path`` inside the worktree (same path rules as :meth:`write_file`)."""
        return await run_git(
            "read_file",
            f"{relative_path!r} in worktree {worktree.path}",
            partial(read_confined, worktree, relative_path),
        )

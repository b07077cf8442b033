"""The repository forkmerge works on, and the helpers its pygit2 services share.

:func:`locate_repository` finds the repository containing a path, once, when a
service is built; a path outside any repository is a :class:`NotARepositoryError`
(the command line turns it into exit code 2). Afterwards every operation opens
a fresh ``pygit2.Repository`` inside the worker thread that runs it
(:func:`run_git`): pygit2 objects are not safe to share between threads, and
opening a repository is cheap next to the work done with it.

Expected git problems (a missing branch, a ref that moved, a file that cannot
be written) leave :func:`run_git` as ``Failure(WorktreeError(...))`` with a
one-line message; nothing else is caught, so bugs still surface as exceptions.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar, final

import attrs
import pygit2
import trio
from pygit2.enums import RepositoryOpenFlag
from returns.result import Failure, Result, Success

from envs.protocols import WorktreeError

__all__ = [
    "DEFAULT_IDENTITY",
    "GitProblem",
    "NotARepositoryError",
    "RepositoryLocation",
    "branch_head",
    "commit_signatures",
    "locate_repository",
    "one_line",
    "open_repository",
    "open_worktree_repository",
    "run_git",
    "update_branch_if_unchanged",
]

T = TypeVar("T")

DEFAULT_IDENTITY = ("forkmerge", "forkmerge@localhost")
"""The name and e-mail of commits when neither the environment nor git config sets one."""


@final
class NotARepositoryError(Exception):
    """``path`` is not inside a git repository (or does not exist)."""

    def __init__(self, path: str, reason: str = "not a git repository (nor inside one)") -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@final
@attrs.frozen
class RepositoryLocation:
    """Where a repository keeps its data.

    ``git_dir`` is the directory discovered from the path (a linked
    worktree's own admin directory when the path is inside one: its ``HEAD``
    is the user's current branch there); ``common_dir`` is shared by all the
    worktrees and holds the refs, the objects and ``worktrees/``.
    """

    git_dir: str
    common_dir: str

    @property
    def default_state_dir(self) -> str:
        """Where forkmerge's worktrees live unless configured: inside the git directory."""
        return os.path.join(self.common_dir, "forkmerge", "worktrees")

    def admin_dir(self, worktree_id: str) -> str:
        """The git metadata directory of the linked worktree ``worktree_id``."""
        return os.path.join(self.common_dir, "worktrees", worktree_id)


@final
class GitProblem(Exception):
    """An expected git problem, raised inside a worker thread and returned by :func:`run_git`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def one_line(text: str) -> str:
    """``text`` on one line (libgit2 messages sometimes span several)."""
    return " ".join(text.split())


def _trust_our_own_objects() -> None:
    """Skip libgit2's check that every object a new tree or commit names exists.

    forkmerge only writes trees from an index or a merge of objects already
    in the repository, so the check (a lookup per tree entry: 5,000 for a
    5,000-file tree, on every commit and merge) buys nothing; measured, it
    halved the cost of a commit on a repository of loose objects.
    """
    pygit2.settings.enable_strict_object_creation(False)


_trust_our_own_objects()


def locate_repository(path: str) -> RepositoryLocation:
    """The repository containing ``path``; :class:`NotARepositoryError` if there is none."""
    if not os.path.isdir(path):
        raise NotARepositoryError(path, "no such directory")
    try:
        git_dir = pygit2.discover_repository(os.path.abspath(path))
    except pygit2.GitError as error:
        raise NotARepositoryError(path, one_line(str(error))) from None
    if git_dir is None:
        raise NotARepositoryError(path)
    git_dir = os.path.normpath(git_dir)
    common_dir = git_dir
    commondir_file = os.path.join(git_dir, "commondir")
    if os.path.isfile(commondir_file):
        with open(commondir_file, encoding="utf-8") as file:
            common_dir = os.path.normpath(os.path.join(git_dir, file.read().strip()))
    return RepositoryLocation(git_dir, common_dir)


def open_repository(location: RepositoryLocation) -> pygit2.Repository:
    """A fresh handle on the repository (use it in one thread only)."""
    return pygit2.Repository(location.git_dir, RepositoryOpenFlag.NO_SEARCH)


def open_worktree_repository(path: str, branch: str) -> pygit2.Repository:
    """A handle on the worktree at ``path``, checked to have ``branch`` checked out.

    The search for a repository does not go up from ``path``: a worktree whose
    ``.git`` link is gone must not be mistaken for the repository it sits in.
    """
    if not os.path.isdir(path):
        raise GitProblem(f"worktree {path} does not exist")
    try:
        repo = pygit2.Repository(path, RepositoryOpenFlag.NO_SEARCH)
    except pygit2.GitError:
        raise GitProblem(f"{path} is not a git worktree") from None
    if repo.head_is_detached or repo.head_is_unborn or repo.head.shorthand != branch:
        found = "a detached HEAD" if repo.head_is_detached else repo.head.name
        raise GitProblem(f"worktree {path} has {found} checked out, expected branch {branch}")
    return repo


def branch_head(repo: pygit2.Repository, branch: str) -> pygit2.Oid:
    """The commit ``branch`` points at; :class:`GitProblem` if there is no such branch."""
    reference = repo.lookup_branch(branch)
    if reference is None:
        raise GitProblem(f"branch {branch} does not exist")
    return reference.target  # type: ignore[return-value]  # a branch is a direct reference


def update_branch_if_unchanged(
    repo: pygit2.Repository, branch: str, expected: pygit2.Oid, new: pygit2.Oid, message: str
) -> None:
    """Point ``branch`` at ``new`` if it still points at ``expected`` (compare and swap).

    libgit2 writes the ref under its lock file and checks the old value there,
    so a concurrent writer between our read and our write is detected, not lost.
    """
    reference = repo.lookup_branch(branch)
    if reference is None:
        raise GitProblem(f"branch {branch} does not exist")
    if reference.target != expected:
        raise GitProblem(f"branch {branch} moved from {expected} to {reference.target} meanwhile")
    try:
        reference.set_target(new, message)
    except pygit2.GitError as error:
        problem = one_line(str(error))
        raise GitProblem(f"branch {branch} was changed concurrently: {problem}") from None


def _identity(repo: pygit2.Repository, role: str) -> tuple[str, str]:
    config = repo.config
    found: list[str] = []
    for variable, key, default in (
        (f"GIT_{role}_NAME", "user.name", DEFAULT_IDENTITY[0]),
        (f"GIT_{role}_EMAIL", "user.email", DEFAULT_IDENTITY[1]),
    ):
        value = os.environ.get(variable)
        if not value:
            try:
                value = config[key]
            except KeyError:
                value = default
        found.append(value if isinstance(value, str) and value else default)
    return found[0], found[1]


def commit_signatures(repo: pygit2.Repository) -> tuple[pygit2.Signature, pygit2.Signature]:
    """The author and committer of a new commit, dated now in the local time zone.

    Like git: ``GIT_AUTHOR_NAME``/``GIT_AUTHOR_EMAIL`` (``GIT_COMMITTER_*``)
    from the environment, else ``user.name``/``user.email`` from git config,
    else :data:`DEFAULT_IDENTITY`.
    """
    now = time.time()
    offset_minutes = (time.localtime(now).tm_gmtoff or 0) // 60  # like git: the local zone
    author = pygit2.Signature(*_identity(repo, "AUTHOR"), int(now), offset_minutes)
    committer = pygit2.Signature(*_identity(repo, "COMMITTER"), int(now), offset_minutes)
    return author, committer


def _guarded(operation: str, subject: str, function: Callable[[], T]) -> Result[T, WorktreeError]:
    try:
        return Success(function())
    except GitProblem as problem:
        return Failure(WorktreeError(operation, one_line(problem.message)))
    except (pygit2.GitError, KeyError, ValueError, OSError) as error:
        # KeyError/ValueError: pygit2's "not found" and "already exists" errors.
        message = one_line(str(error)) or type(error).__name__
        return Failure(WorktreeError(operation, f"{subject}: {message}"))


async def run_git(
    operation: str, subject: str, function: Callable[[], T]
) -> Result[T, WorktreeError]:
    """Run the blocking ``function`` in a worker thread; expected git problems become failures.

    ``subject`` (``"branch forkmerge/x"``, ``"worktree /path"``) prefixes the
    message of an error raised by pygit2 or the OS, so that it names what failed;
    a :class:`GitProblem` already does. Cancellation waits for ``function`` to
    finish (a git operation is never abandoned half-way), then ``trio.Cancelled``
    propagates.
    """
    return await trio.to_thread.run_sync(_guarded, operation, subject, function)

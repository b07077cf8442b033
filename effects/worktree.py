"""Worktree effects: create, commit in, and remove agent worktrees; scoped sessions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import trio
from returns.result import Result, Success

from effects._bracket import bracket
from effects._effect import Effect
from effects._errors import BracketError
from effects._exit import Exit
from effects._service import call_map_service, call_service
from envs.environment import MapEnv, ServiceEnv
from envs.protocols import Worktree, WorktreeError

__all__ = [
    "commit_changes",
    "create_job_worktree",
    "create_worktree",
    "head_commit",
    "read_file",
    "remove_worktree",
    "sync_worktree",
    "worktree_session",
    "WorktreeTimes",
]

T = TypeVar("T")
E = TypeVar("E")


def create_worktree(name: str) -> Effect[Worktree, WorktreeError, MapEnv]:
    """Create an agent branch and worktree ``name`` from the job branch's current head.

    Failure: ``WorktreeError``. Cancellation: the service finishes or undoes
    its git work before the cancellation propagates; use
    :func:`worktree_session` to guarantee removal.
    """
    return call_map_service(
        lambda env: env.services.worktrees.create_agent_worktree(name, env.job.job_branch)
    )


def remove_worktree(
    worktree: Worktree, *, delete_branch: bool = True
) -> Effect[None, WorktreeError, ServiceEnv]:
    """Remove ``worktree``'s directory, its git metadata and (by default) its branch.

    Idempotent: removing what is already gone succeeds.
    """
    return call_service(
        lambda env: env.services.worktrees.remove_worktree(worktree, delete_branch=delete_branch)
    )


def create_job_worktree(job_id: str) -> Effect[Worktree, WorktreeError, ServiceEnv]:
    """Create (or, for a resumed job, reuse) the job branch and the job's worktree."""
    return call_service(lambda env: env.services.worktrees.create_job_worktree(job_id))


def sync_worktree(worktree: Worktree) -> Effect[None, WorktreeError, ServiceEnv]:
    """Make the worktree's files match its branch head after in-memory merges moved it."""
    return call_service(lambda env: env.services.worktrees.sync_worktree(worktree))


def read_file(worktree: Worktree, relative_path: str) -> Effect[bytes, WorktreeError, ServiceEnv]:
    """Read a file inside ``worktree`` (a path leaving it is refused)."""
    return call_service(lambda env: env.services.worktrees.read_file(worktree, relative_path))


def commit_changes(
    worktree: Worktree, message: str
) -> Effect[str | None, WorktreeError, ServiceEnv]:
    """Commit every change in ``worktree``: the new commit id, or ``None`` if nothing changed."""
    return call_service(lambda env: env.services.worktrees.commit_changes(worktree, message))


def head_commit(worktree: Worktree) -> Effect[str, WorktreeError, ServiceEnv]:
    """The commit the worktree's branch points at."""
    return call_service(lambda env: env.services.worktrees.head_commit(worktree))


@attrs.define
class WorktreeTimes:
    """How long an agent's worktree took to acquire and to release (trio's clock)."""

    acquire_seconds: float = 0.0
    release_seconds: float = 0.0


def _acquire(name: str, times: WorktreeTimes) -> Effect[Worktree, WorktreeError, MapEnv]:
    async def run(env: MapEnv) -> Result[Worktree, WorktreeError]:
        started = trio.current_time()
        try:
            if env.pool is not None:
                return await env.pool.acquire(name)
            return await env.services.worktrees.create_agent_worktree(name, env.job.job_branch)
        finally:
            times.acquire_seconds = trio.current_time() - started

    return call_map_service(run)


def _release(
    worktree: Worktree, keep: bool, times: WorktreeTimes
) -> Effect[None, WorktreeError, MapEnv]:
    async def run(env: MapEnv) -> Result[None, WorktreeError]:
        started = trio.current_time()
        try:
            if env.pool is not None:
                return await env.pool.release(worktree, keep=keep)
            if keep:
                return Success(None)
            return await env.services.worktrees.remove_worktree(worktree)
        finally:
            times.release_seconds = trio.current_time() - started

    return call_map_service(run)


def worktree_session(
    name: str,
    use: Callable[[Worktree], Effect[T, E, MapEnv]],
    *,
    keep: Callable[[Exit[Any, Any]], bool] = lambda _exit: False,
    times: WorktreeTimes | None = None,
) -> Effect[T, E | WorktreeError | BracketError[WorktreeError], MapEnv]:
    """Run ``use`` in a worktree of agent ``name`` that is given back afterwards.

    The worktree comes from the environment's pool (reset to a fresh agent
    branch at the job branch's head) or, without a pool, is created for the
    agent and removed after it. A ``bracket``: the worktree is given back
    exactly once on success, failure, defect and cancellation (shielded, so
    it completes while the caller is being cancelled); ``keep(exit)`` keeps
    it as it is, for debugging a failed agent. A failed acquisition is the
    result and nothing is given back; a failed release gives ``BracketError``
    carrying the outcome of ``use``. ``times`` receives how long acquiring
    and releasing took.
    """
    spent = times if times is not None else WorktreeTimes()

    def release(worktree: Worktree, exit_: Exit[T, E]) -> Effect[None, WorktreeError, MapEnv]:
        return _release(worktree, keep(exit_), spent)

    return bracket(_acquire(name, spent), use, release)

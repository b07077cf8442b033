"""What a :class:`~envs.pool.WorktreePool` needs and reports: the protocols of its worktree
manager and of the resource limits it asks, and its metrics."""

from __future__ import annotations

from typing import Protocol, final

import attrs
from returns.result import Result

from envs.protocols import Worktree, WorktreeError

__all__ = ["PoolMetrics", "PoolSlots", "WorktreeAdmission"]


class WorktreeAdmission(Protocol):
    """The resource limits a pool asks before it makes a worktree or starts an agent
    (:class:`envs.limits.LimitGuard` in production)."""

    async def reserve(self, key: str) -> WorktreeError | None:
        """Room for one new worktree ``key`` (its directory name), held until
        :meth:`release`; or why there is none (a limit reached, the disk full)."""
        ...

    async def release(self, key: str) -> None:
        """Worktree ``key`` now exists or was not made: its reservation ends."""
        ...

    async def may_start(self) -> WorktreeError | None:
        """Why no agent may start now in a worktree that already exists, or ``None``."""
        ...


class PoolSlots(Protocol):
    """What a :class:`WorktreePool` needs of a worktree manager (``WorktreeManager`` has it)."""

    async def create_pool_worktree(
        self, job_id: str, slot: int, parent_branch: str
    ) -> Result[Worktree, WorktreeError]: ...

    async def assign_pool_worktree(
        self, slot_worktree: Worktree, name: str, parent_branch: str
    ) -> Result[Worktree, WorktreeError]: ...

    async def release_pool_worktree(self, worktree: Worktree) -> Result[None, WorktreeError]: ...

    async def pool_worktree_clean(self, worktree: Worktree) -> Result[bool, WorktreeError]: ...

    async def create_agent_worktree(
        self, name: str, parent_branch: str
    ) -> Result[Worktree, WorktreeError]: ...

    async def remove_worktree(
        self, worktree: Worktree, *, delete_branch: bool = True
    ) -> Result[None, WorktreeError]: ...

    async def keep_worktree(self, worktree: Worktree) -> Result[None, WorktreeError]: ...


@final
@attrs.frozen
class PoolMetrics:
    """What a pool has done so far.

    ``hits``: acquisitions served by an existing slot; ``misses``: worktrees
    created (every acquisition without ``reuse``); ``discarded``: slots removed
    because they were broken or dirty after a reset, or their release failed;
    ``kept``: worktrees handed over with ``keep=True``. ``acquired`` and
    ``released`` count successful calls. ``acquire_seconds`` and
    ``release_seconds`` total the time spent preparing and giving back
    worktrees, ``wait_seconds`` the time acquisitions waited for a free slot
    (all on trio's clock). ``slots`` is how many worktrees the pool holds now
    (free or lent), ``in_use`` how many are lent, ``peak_slots`` the most it
    ever held at once.
    """

    hits: int
    misses: int
    discarded: int
    kept: int
    acquired: int
    released: int
    acquire_seconds: float
    release_seconds: float
    wait_seconds: float
    slots: int
    in_use: int
    peak_slots: int

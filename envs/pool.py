"""A pool of worktrees that a job's agents take turns in, instead of one new worktree each.

Checking out a whole worktree for every agent and deleting it afterwards costs a
copy of the repository per item; a pool keeps ``size`` worktrees (its *slots*) for
the job and resets a free one to a fresh agent branch for the next agent, writing
only the files that differ. The pool is environment-independent: it drives any
:class:`PoolSlots` (the real and the mock worktree managers both are one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar, final

import attrs
import trio
from returns.result import Failure, Result, Success

from envs.pool_types import PoolMetrics, PoolSlots, WorktreeAdmission
from envs.protocols import Worktree, WorktreeError
from envs.worktree_layout import pool_slot_name, worktree_id

__all__ = ["PoolMetrics", "PoolSlots", "WorktreeAdmission", "WorktreePool"]

T = TypeVar("T")


@attrs.define
class _Lease:
    slot: Worktree | None  # the idle slot lent out (None without reuse)
    worktree: Worktree  # what the agent got
    removed: bool = False  # by close(), while lent


async def _shielded(call: Awaitable[T]) -> T:
    # A service call that changes git state runs to its end: cancelling it half-way
    # would lose track of what it made.
    with trio.CancelScope(shield=True):
        result = await call
    return result


@final
class WorktreePool:
    """Up to ``size`` worktrees of job ``job_id``, lent to one agent at a time and reused.

    Mental model: a row of ``size`` desks. An agent takes a free desk, which is
    cleared for it (a fresh agent branch at ``parent_branch``'s *current* head,
    the files reset, untracked and ignored files gone); when it leaves, the desk
    goes back to the row as it is and is cleared for the next one. Desks are set
    up as agents first need them, never more than ``size``; a desk that cannot
    be cleared is thrown away and a new one set up. ``close`` removes them all.

    Example::

        pool = WorktreePool(manager, "job1", "forkmerge/job1", size=4)
        try:
            worktree = (await pool.acquire("agent-0001-x")).unwrap()
            ...  # run commands in worktree.path, commit, merge worktree.branch
            await pool.release(worktree)
        finally:
            await pool.close()

    With ``reuse=False`` (``--no-pool``) each acquisition creates an agent
    worktree (``create_agent_worktree``) and each release removes it, with the
    same limit and metrics.

    Expected failures are ``Failure(WorktreeError)`` values; cancellation is
    described on each method; whatever happens, a worktree the pool made is
    either in the pool, lent out, handed over by ``keep``, or remembered so
    that :meth:`close` removes it.

    Args:
        manager: the worktree manager that does the git work.
        job_id: the job whose slots these are.
        parent_branch: the job branch agents start from.
        size: the most worktrees the pool holds at once (at least 1).
        reuse: pool the worktrees (default); ``False`` creates and removes one per agent.
        guard: the resource limits: a new worktree is made only with a reservation
            from it, and a free slot is lent only when it lets an agent start; a
            refusal (e.g. a full disk) is the acquisition's failure.
        observer: called with the pool's :attr:`metrics` after every acquisition,
            release and close (to publish a running job's figures); it must not
            block, and what it raises propagates.

    Raises:
        ValueError: ``size`` is below 1.
    """

    def __init__(
        self,
        manager: PoolSlots,
        job_id: str,
        parent_branch: str,
        size: int,
        *,
        reuse: bool = True,
        guard: WorktreeAdmission | None = None,
        observer: Callable[[PoolMetrics], None] | None = None,
    ) -> None:
        if size < 1:
            raise ValueError(f"`size` must be at least 1, got {size}")
        self._manager = manager
        self._job_id = job_id
        self._parent_branch = parent_branch
        self._size = size
        self._reuse = reuse
        self._guard = guard
        self._observer = observer
        self._tokens = trio.Semaphore(size)  # one per worktree lent or being prepared
        self._idle: list[Worktree] = []
        self._leases: dict[str, _Lease] = {}  # by path
        self._undisposed: list[Worktree] = []  # removals that failed: close() tries again
        self._next_slot = 0
        self._closed = False
        self._slots = 0
        self._peak = 0
        self._hits = self._misses = self._discarded = self._kept = 0
        self._acquired = self._released = 0
        self._acquire_seconds = self._release_seconds = self._wait_seconds = 0.0

    @property
    def size(self) -> int:
        return self._size

    @property
    def reuse(self) -> bool:
        return self._reuse

    @property
    def metrics(self) -> PoolMetrics:
        """A snapshot of what the pool has done so far."""
        return PoolMetrics(
            hits=self._hits,
            misses=self._misses,
            discarded=self._discarded,
            kept=self._kept,
            acquired=self._acquired,
            released=self._released,
            acquire_seconds=self._acquire_seconds,
            release_seconds=self._release_seconds,
            wait_seconds=self._wait_seconds,
            slots=self._slots,
            in_use=sum(1 for lease in self._leases.values() if not lease.removed),
            peak_slots=self._peak,
        )

    # -- acquire ----------------------------------------------------------------------------

    async def acquire(self, name: str) -> Result[Worktree, WorktreeError]:
        """A worktree for agent ``name``: its branch at the parent's current head, exactly
        that commit's files.

        Waits while all ``size`` worktrees are lent out. A free slot is reused
        (a hit); without one a slot is created (a miss). A slot that cannot be
        assigned (its reset could not make it exactly the head's tree) is
        discarded and replaced by a new one; if the new one fails too, its
        error is the result. A closed
        pool gives a failure.

        Cancellation: waiting for a free slot may be cancelled, with nothing
        taken. The git work is shielded; if the caller is cancelled during it,
        the slot goes back to the pool (or is discarded) and ``trio.Cancelled``
        propagates: a cancelled acquire never lends a worktree.
        """
        if self._closed:
            return self._closed_failure()
        waiting_since = trio.current_time()
        await self._tokens.acquire()
        started = trio.current_time()
        self._wait_seconds += started - waiting_since
        if self._closed:  # closed while this one waited
            self._tokens.release()
            return self._closed_failure()
        try:
            if self._reuse:
                result = await self._lend_slot(name)
            else:
                result = await self._lend_new(name)
        except BaseException:
            self._tokens.release()
            raise
        finally:
            self._acquire_seconds += trio.current_time() - started
        if isinstance(result, Failure):
            self._tokens.release()
        else:
            self._acquired += 1
        self._observe()
        return result

    async def _lend_slot(self, name: str) -> Result[Worktree, WorktreeError]:
        slot = self._idle.pop() if self._idle else None
        reused = slot is not None
        assigned: Worktree | None = None
        try:
            while True:
                if slot is None:
                    number = self._take_slot_number()
                    key = worktree_id(self._job_id, pool_slot_name(number))
                    created = await self._create(
                        key,
                        partial(
                            self._manager.create_pool_worktree,
                            self._job_id,
                            number,
                            self._parent_branch,
                        ),
                    )
                    if isinstance(created, Failure):
                        return created
                    slot = created.unwrap()
                    await trio.lowlevel.checkpoint_if_cancelled()
                elif (refused := await self._may_start()) is not None:
                    await self._park(slot)
                    return Failure(refused)
                outcome = await _shielded(
                    self._manager.assign_pool_worktree(slot, name, self._parent_branch)
                )
                if isinstance(outcome, Success):
                    assigned = outcome.unwrap()
                    await trio.lowlevel.checkpoint_if_cancelled()
                    if self._closed:
                        await self._give_back(slot, assigned)
                        return self._closed_failure()
                    self._leases[assigned.path] = _Lease(slot, assigned)
                    if reused:
                        self._hits += 1
                    return Success(assigned)
                problem = outcome.failure()
                await self._discard(slot)
                slot = None
                if not reused:
                    return Failure(problem)  # a brand-new slot failed: another would too
                reused = False
                await trio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._give_back(slot, assigned)
            raise

    async def _create(
        self, key: str, make: Callable[[], Awaitable[Result[Worktree, WorktreeError]]]
    ) -> Result[Worktree, WorktreeError]:
        """Make worktree ``key`` with ``make`` under a reservation of the limits.

        Creations run side by side: the limits count reservations, so two agents
        (of this job or of another process's) cannot both take the last room.
        """
        if self._guard is not None:
            refused = await self._guard.reserve(key)
            if refused is not None:
                return Failure(refused)
        try:
            created = await _shielded(make())
        finally:
            if self._guard is not None:
                await _shielded(self._guard.release(key))
        if isinstance(created, Success):
            self._count_new_worktree()
        return created

    async def _may_start(self) -> WorktreeError | None:
        """Why no agent may start in an existing slot now (a limit), or ``None``."""
        return None if self._guard is None else await self._guard.may_start()

    async def _lend_new(self, name: str) -> Result[Worktree, WorktreeError]:
        created = await self._create(
            worktree_id(self._job_id, name),
            partial(self._manager.create_agent_worktree, name, self._parent_branch),
        )
        if isinstance(created, Failure):
            return created
        worktree = created.unwrap()
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._remove(worktree)
            raise
        if self._closed:
            await _shielded(self._remove(worktree))
            return self._closed_failure()
        self._leases[worktree.path] = _Lease(None, worktree)
        return Success(worktree)

    # -- release ----------------------------------------------------------------------------

    async def release(
        self, worktree: Worktree, *, keep: bool = False
    ) -> Result[None, WorktreeError]:
        """Give back a worktree :meth:`acquire` lent: detached, its agent branch deleted,
        and free for the next agent (removed, without ``reuse``).

        If the slot cannot be released it is discarded instead; the result is
        then a failure only if discarding failed too (:meth:`close` tries again).
        ``keep=True`` takes the worktree out of the pool untouched, branch and
        files included (to debug a failed agent), and marks it kept
        (``keep_worktree``): it is the caller's to remove, whatever the result
        (a failure then says the mark could not be written), and a new slot
        replaces it when needed. A worktree the pool did not
        lend, or already took back, is a failure. After :meth:`close` removed
        a lent worktree, releasing it just succeeds.

        Cancellation: none; release runs to its end, shielded, so that it can
        run while its caller is being cancelled.
        """
        with trio.CancelScope(shield=True):
            started = trio.current_time()
            lease = self._leases.get(worktree.path)
            if lease is None or lease.worktree != worktree:
                return Failure(
                    WorktreeError(
                        "release_worktree",
                        f"{worktree.path} on {worktree.branch or 'no branch'} is not a "
                        f"worktree this pool of job {self._job_id} lent out (released twice?)",
                    )
                )
            del self._leases[worktree.path]
            try:
                result = await self._take_back(lease, keep)
            finally:
                self._tokens.release()
                self._release_seconds += trio.current_time() - started
            if isinstance(result, Success):
                self._released += 1
        self._observe()
        return result

    async def _take_back(self, lease: _Lease, keep: bool) -> Result[None, WorktreeError]:
        if lease.removed:
            return Success(None)
        if keep:
            self._slots -= 1
            self._kept += 1
            return await _shielded(self._manager.keep_worktree(lease.worktree))
        if lease.slot is None:
            return await self._remove(lease.worktree)
        released = await _shielded(self._manager.release_pool_worktree(lease.worktree))
        if isinstance(released, Failure):
            return await self._discard(lease.worktree)
        await self._park(lease.slot)
        return Success(None)

    # -- close ------------------------------------------------------------------------------

    async def close(self) -> Result[None, WorktreeError]:
        """Remove every worktree of the pool, free or lent, with its agent branch.

        Worktrees handed over with ``keep=True`` stay. Every removal is tried
        even when one fails; the first failure is the result, and a later
        ``close`` tries the failed ones again. Afterwards :meth:`acquire` fails
        and a worktree an acquisition was preparing is removed when it is ready.
        Idempotent.

        Cancellation: none; close runs to its end, shielded.
        """
        with trio.CancelScope(shield=True):
            self._closed = True
            first: WorktreeError | None = None
            targets: list[Worktree] = []
            while self._idle:
                targets.append(self._idle.pop())
                self._slots -= 1
            for lease in self._leases.values():
                if not lease.removed:
                    lease.removed = True
                    targets.append(lease.worktree)
                    self._slots -= 1
            targets.extend(self._undisposed)
            self._undisposed.clear()
            for worktree in targets:
                removed = await _shielded(
                    self._manager.remove_worktree(worktree, delete_branch=True)
                )
                if isinstance(removed, Failure):
                    self._undisposed.append(worktree)
                    first = first or removed.failure()
        self._observe()
        return Success(None) if first is None else Failure(first)

    # -- bookkeeping ------------------------------------------------------------------------

    def _observe(self) -> None:
        if self._observer is not None:
            self._observer(self.metrics)

    def _take_slot_number(self) -> int:
        # Never reused within the pool: a kept slot keeps its name and directory.
        number = self._next_slot
        self._next_slot += 1
        return number

    def _count_new_worktree(self) -> None:
        self._misses += 1
        self._slots += 1
        self._peak = max(self._peak, self._slots)

    async def _park(self, slot: Worktree) -> None:
        """Put an idle slot back in the pool (remove it if the pool was closed meanwhile)."""
        if self._closed:
            await self._remove(slot)
        else:
            self._idle.append(slot)

    async def _give_back(self, slot: Worktree | None, assigned: Worktree | None) -> None:
        """Undo an acquisition that will not lend its slot (cancelled, or the pool closed)."""
        if assigned is not None:
            released = await _shielded(self._manager.release_pool_worktree(assigned))
            if isinstance(released, Failure):
                await self._discard(assigned)
                return
        if slot is not None:
            await self._park(slot)

    async def _discard(self, worktree: Worktree) -> Result[None, WorktreeError]:
        """Remove a broken or dirty slot (close tries again if this fails)."""
        self._discarded += 1
        return await self._remove(worktree)

    async def _remove(self, worktree: Worktree) -> Result[None, WorktreeError]:
        self._slots -= 1
        removed = await _shielded(self._manager.remove_worktree(worktree, delete_branch=True))
        if isinstance(removed, Failure):
            self._undisposed.append(worktree)
        return removed

    def _closed_failure(self) -> Failure[WorktreeError]:
        return Failure(
            WorktreeError("acquire_worktree", f"the worktree pool of job {self._job_id} is closed")
        )

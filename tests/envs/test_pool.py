"""WorktreePool over the mock manager: reuse, limits, discards, keep, close, cancellation."""

from __future__ import annotations

import math
from collections import Counter

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from envs.mock_git import AGENT_BRANCH_PREFIX, MockWorktreeManager
from envs.mock_merger import MockMerger
from envs.mock_repository import MockRepository
from envs.pool import PoolMetrics, PoolSlots, WorktreePool
from envs.protocols import Worktree, WorktreeError, WorktreeManager
from tests.envs.conftest import error_of, ok

FILES = {"README.md": b"hello\n", ".gitignore": b"*.log\n", "src/a.py": b"a = 1\n"}
JOB_ID = "job1"
JOB = "forkmerge/job1"


@attrs.frozen
class Kit:
    worktrees: MockWorktreeManager
    merger: MockMerger
    job: Worktree


def kit(latency: dict[str, float] | None = None) -> Kit:
    repository = MockRepository(FILES)
    worktrees = MockWorktreeManager(repository, latency=latency)
    merger = MockMerger(repository, recorder=worktrees.recorder)
    return Kit(worktrees, merger, worktrees.add_job_worktree(JOB_ID))


def pool_of(k: Kit, size: int = 2, *, reuse: bool = True) -> WorktreePool:
    return WorktreePool(k.worktrees, JOB_ID, JOB, size, reuse=reuse)


def calls(k: Kit, method: str) -> int:
    return k.worktrees.recorder.methods("worktrees").count(f"worktrees.{method}")


def agent_branches(k: Kit) -> list[str]:
    return [branch for branch in k.worktrees.branches() if branch.startswith(AGENT_BRANCH_PREFIX)]


def leaked(k: Kit) -> list[Worktree]:
    return [worktree for worktree in k.worktrees.active_worktrees() if worktree != k.job]


async def work_and_merge(k: Kit, worktree: Worktree, name: str) -> None:
    """What an agent does: a file of its own committed and merged, junk left behind."""
    k.worktrees.set_file(worktree, f"out/{name}.txt", name)
    ok(await k.worktrees.commit_changes(worktree, f"work of {name}"))
    ok(await k.merger.merge(worktree.branch, JOB, f"merge {name}"))
    k.worktrees.set_file(worktree, f"scratch-{name}.tmp", "untracked")
    k.worktrees.set_file(worktree, f"{name}.log", "ignored")
    k.worktrees.set_file(worktree, "src/a.py", "a = 'changed, not committed'\n")


# -- the service side of the mock -------------------------------------------------------------


def test_both_managers_are_pool_slots() -> None:
    manager: WorktreeManager = MockWorktreeManager()
    slots: PoolSlots = manager  # checked by mypy
    assert slots is manager


async def test_mock_slot_lifecycle_and_leftovers() -> None:
    k = kit()
    slot = ok(await k.worktrees.create_pool_worktree(JOB_ID, 3, JOB))
    assert slot == Worktree(
        "pool-3", "/mock/worktrees/fm-job1-pool-3", "", k.worktrees.head_of(JOB)
    )
    assert ok(await k.worktrees.pool_worktree_clean(slot)) is True
    assigned = ok(await k.worktrees.assign_pool_worktree(slot, "agent-1", JOB))
    assert assigned == Worktree(
        slot.name, slot.path, f"{AGENT_BRANCH_PREFIX}job1/agent-1", slot.base_commit
    )
    k.worktrees.set_file(assigned, "x.txt", "x")
    assert ok(await k.worktrees.pool_worktree_clean(assigned)) is False
    # The slot is reported once, with its agent's branch; its branch is not reported again.
    assert ok(await k.worktrees.agent_leftovers(JOB_ID)) == [assigned]
    ok(await k.worktrees.release_pool_worktree(assigned))
    ok(await k.worktrees.release_pool_worktree(assigned))  # idempotent
    assert agent_branches(k) == []
    assert k.worktrees.worktree_at(slot.path).branch == ""
    # Removing the slot by the handle of an older state still removes it.
    ok(await k.worktrees.remove_worktree(assigned))
    assert leaked(k) == []


async def test_mock_refuses_what_is_no_slot_and_unsafe_names() -> None:
    k = kit()
    assert error_of(await k.worktrees.assign_pool_worktree(k.job, "agent-1", JOB)).operation == (
        "assign_pool_worktree"
    )
    slot = ok(await k.worktrees.create_pool_worktree(JOB_ID, 0, JOB))
    for bad in ("../x", "pool-7"):
        assert (
            "not a safe agent name"
            in error_of(await k.worktrees.assign_pool_worktree(slot, bad, JOB)).message
        )
    assert (
        "not the branch of job"
        in error_of(await k.worktrees.create_pool_worktree(JOB_ID, 1, "main")).message
    )
    assert (
        "already exists" in error_of(await k.worktrees.create_pool_worktree(JOB_ID, 0, JOB)).message
    )
    assert agent_branches(k) == []


# -- reuse ------------------------------------------------------------------------------------


async def test_two_slots_serve_ten_agents_each_at_the_current_head() -> None:
    k = kit()
    pool = pool_of(k, 2)
    for round_ in range(5):
        names = [f"agent-{round_}a", f"agent-{round_}b"]
        lent = [ok(await pool.acquire(name)) for name in names]
        for worktree in lent:
            # Fresh: exactly the job branch's current head, merges of earlier agents included.
            assert worktree.base_commit == k.worktrees.head_of(JOB)
            assert k.worktrees.files(worktree) == k.worktrees.branch_files(JOB)
            assert worktree.branch == f"{AGENT_BRANCH_PREFIX}job1/{names[lent.index(worktree)]}"
        assert {worktree.path for worktree in lent} == {
            "/mock/worktrees/fm-job1-pool-0",
            "/mock/worktrees/fm-job1-pool-1",
        }
        for worktree, name in zip(lent, names, strict=True):
            await work_and_merge(k, worktree, name)
            ok(await pool.release(worktree))
        assert agent_branches(k) == []
    merged = k.worktrees.branch_files(JOB)
    assert sorted(path for path in merged if path.startswith("out/")) == sorted(
        f"out/agent-{n}{side}.txt" for n in range(5) for side in "ab"
    )
    metrics = pool.metrics
    assert (metrics.misses, metrics.hits, metrics.discarded) == (2, 8, 0)
    assert (metrics.acquired, metrics.released, metrics.peak_slots) == (10, 10, 2)
    assert (metrics.slots, metrics.in_use) == (2, 0)
    assert calls(k, "create_pool_worktree") == 2
    assert calls(k, "create_agent_worktree") == 0
    ok(await pool.close())
    assert leaked(k) == []


async def test_acquire_waits_while_every_slot_is_lent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    k = kit()
    pool = pool_of(k, 2)
    first = ok(await pool.acquire("agent-1"))
    ok(await pool.acquire("agent-2"))
    got: list[Worktree] = []

    async def third() -> None:
        got.append(ok(await pool.acquire("agent-3")))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(third)
        await trio.sleep(5)
        assert got == []
        assert pool.metrics.slots == 2
        ok(await pool.release(first))
    assert got[0].path == first.path
    assert got[0].branch.endswith("/agent-3")
    metrics = pool.metrics
    assert metrics.peak_slots == 2
    assert metrics.hits == 1
    assert metrics.wait_seconds == pytest.approx(5)


async def test_timing_metrics_add_up_the_time_spent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    latency = {
        "create_pool_worktree": 3.0,
        "assign_pool_worktree": 1.5,
        "pool_worktree_clean": 0.5,  # never asked: the assignment checks what it touched
        "release_pool_worktree": 0.25,
    }
    k = kit(latency)
    pool = pool_of(k, 1)
    for name in ("agent-1", "agent-2"):
        ok(await pool.release(ok(await pool.acquire(name))))
    metrics = pool.metrics
    assert metrics.acquire_seconds == pytest.approx(3.0 + 2 * 1.5)
    assert metrics.release_seconds == pytest.approx(2 * 0.25)
    assert metrics.wait_seconds == 0


# -- discarding broken and dirty slots --------------------------------------------------------


async def test_a_slot_still_dirty_after_its_reset_is_replaced() -> None:
    k = kit()
    pool = pool_of(k, 2)
    first = ok(await pool.acquire("agent-1"))
    k.worktrees.stick_file(first, "root-owned.bin", b"git cannot delete me")
    ok(await pool.release(first))

    second = ok(await pool.acquire("agent-2"))

    assert second.path == "/mock/worktrees/fm-job1-pool-1"
    assert k.worktrees.files(second) == k.worktrees.branch_files(JOB)
    assert [worktree.path for worktree in leaked(k)] == [second.path]
    metrics = pool.metrics
    assert (metrics.misses, metrics.hits, metrics.discarded, metrics.slots) == (2, 0, 1, 1)


async def test_a_slot_whose_assignment_fails_is_replaced() -> None:
    k = kit()
    pool = pool_of(k, 1)
    ok(await pool.release(ok(await pool.acquire("agent-1"))))
    k.worktrees.fail("assign_pool_worktree", name="agent-2", times=1)

    second = ok(await pool.acquire("agent-2"))

    assert second.name == "pool-1"
    assert leaked(k) == [second]
    assert (pool.metrics.misses, pool.metrics.discarded) == (2, 1)


async def test_a_new_slot_that_fails_gives_its_error_and_leaves_nothing() -> None:
    k = kit()
    pool = pool_of(k, 1)
    injected = WorktreeError("assign_pool_worktree", "disk full")
    k.worktrees.fail("assign_pool_worktree", error=injected)
    for name in ("agent-1", "agent-2", "agent-3"):  # never blocks: each failure frees its place
        assert error_of(await pool.acquire(name)) == injected
    assert leaked(k) == []
    assert agent_branches(k) == []
    assert (pool.metrics.misses, pool.metrics.discarded, pool.metrics.slots) == (3, 3, 0)


async def test_a_slot_that_stays_dirty_gives_a_clear_error() -> None:
    k = kit()
    pool = pool_of(k, 1)
    first = ok(await pool.acquire("agent-1"))
    k.worktrees.stick_file(first, "stuck", "x")
    ok(await pool.release(first))
    k.worktrees.fail("create_pool_worktree", error=WorktreeError("create_pool_worktree", "no"))
    error = error_of(await pool.acquire("agent-2"))
    assert error.message == "no"
    assert leaked(k) == []


async def test_a_failed_creation_is_the_result() -> None:
    k = kit()
    pool = pool_of(k, 1)
    k.worktrees.fail("create_pool_worktree", times=1)
    assert error_of(await pool.acquire("agent-1")).operation == "create_pool_worktree"
    assert ok(await pool.acquire("agent-2")).name == "pool-1"


async def test_a_slot_whose_release_fails_is_discarded() -> None:
    k = kit()
    pool = pool_of(k, 1)
    k.worktrees.fail("release_pool_worktree", times=1)
    first = ok(await pool.acquire("agent-1"))

    assert ok(await pool.release(first)) is None

    assert leaked(k) == []
    assert agent_branches(k) == []
    assert ok(await pool.acquire("agent-2")).name == "pool-1"
    assert pool.metrics.discarded == 1


async def test_a_slot_that_cannot_be_released_nor_removed_is_removed_by_close() -> None:
    k = kit()
    pool = pool_of(k, 1)
    k.worktrees.fail("release_pool_worktree", times=1)
    k.worktrees.fail("remove_worktree", times=1)
    first = ok(await pool.acquire("agent-1"))

    assert error_of(await pool.release(first)).operation == "remove_worktree"
    assert leaked(k) == [first]
    # The pool still has its place: the next agent gets a new slot without waiting.
    ok(await pool.release(ok(await pool.acquire("agent-2"))))

    ok(await pool.close())
    assert leaked(k) == []
    assert agent_branches(k) == []


# -- keep, release mistakes -------------------------------------------------------------------


async def test_keep_hands_the_worktree_over_untouched() -> None:
    k = kit()
    pool = pool_of(k, 1)
    failed = ok(await pool.acquire("agent-1"))
    k.worktrees.set_file(failed, "evidence.txt", "why it failed")

    ok(await pool.release(failed, keep=True))
    replacement = ok(await pool.acquire("agent-2"))
    ok(await pool.close())

    assert replacement.path != failed.path
    assert k.worktrees.worktree_at(failed.path) == failed
    assert k.worktrees.files(failed)["evidence.txt"] == b"why it failed"
    assert agent_branches(k) == [failed.branch]
    assert (pool.metrics.kept, pool.metrics.misses, pool.metrics.slots) == (1, 2, 0)
    assert k.worktrees.kept_worktrees() == [failed]  # marked: no automatic sweep takes it
    ok(await k.worktrees.remove_worktree(failed))
    assert leaked(k) == []


async def test_releasing_twice_or_a_stranger_is_a_failure() -> None:
    k = kit()
    pool = pool_of(k, 1)
    lent = ok(await pool.acquire("agent-1"))
    ok(await pool.release(lent))
    assert "released twice?" in error_of(await pool.release(lent)).message
    stranger = ok(await k.worktrees.create_agent_worktree("agent-x", JOB))
    assert "not a worktree this pool" in error_of(await pool.release(stranger)).message
    assert k.worktrees.worktree_at(stranger.path) == stranger
    assert pool.metrics.released == 1


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="`size` must be at least 1, got 0"):
        WorktreePool(MockWorktreeManager(), JOB_ID, JOB, 0)


# -- close ------------------------------------------------------------------------------------


async def test_close_removes_free_and_lent_worktrees_and_is_idempotent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    k = kit()
    pool = pool_of(k, 3)
    lent = [ok(await pool.acquire(f"agent-{n}")) for n in range(3)]
    ok(await pool.release(lent[0]))

    ok(await pool.close())

    assert leaked(k) == []
    assert agent_branches(k) == []
    assert k.worktrees.head_of(JOB) == k.job.base_commit
    ok(await pool.close())
    assert ok(await pool.release(lent[1])) is None  # close removed it already
    assert error_of(await pool.acquire("agent-9")).message == (
        "the worktree pool of job job1 is closed"
    )
    assert pool.metrics == PoolMetrics(
        hits=0,
        misses=3,
        discarded=0,
        kept=0,
        acquired=3,
        released=2,
        acquire_seconds=0.0,
        release_seconds=0.0,
        wait_seconds=0.0,
        slots=0,
        in_use=0,
        peak_slots=3,
    )


async def test_close_tries_everything_and_reports_the_first_error() -> None:
    k = kit()
    pool = pool_of(k, 3)
    lent = [ok(await pool.acquire(f"agent-{n}")) for n in range(3)]
    for worktree in lent:
        ok(await pool.release(worktree))
    k.worktrees.fail("remove_worktree", name="pool-1", times=2)

    assert error_of(await pool.close()).operation == "remove_worktree"
    assert [worktree.name for worktree in leaked(k)] == ["pool-1"]
    assert error_of(await pool.close()).operation == "remove_worktree"
    ok(await pool.close())
    assert leaked(k) == []


async def test_an_acquisition_under_way_when_the_pool_closes_removes_its_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    k = kit({"create_pool_worktree": 2.0})
    pool = pool_of(k, 2)
    results: list[object] = []

    async def acquire() -> None:
        results.append(await pool.acquire("agent-1"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(acquire)
        await trio.sleep(1)
        ok(await pool.close())
    assert isinstance(results[0], Failure)
    assert leaked(k) == []
    assert agent_branches(k) == []


async def test_a_waiting_acquisition_fails_once_the_pool_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    k = kit()
    pool = pool_of(k, 1)
    lent = ok(await pool.acquire("agent-1"))
    results: list[object] = []

    async def acquire() -> None:
        results.append(await pool.acquire("agent-2"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(acquire)
        await trio.sleep(1)
        ok(await pool.close())
        ok(await pool.release(lent))
    assert isinstance(results[0], Failure)
    assert leaked(k) == []


# -- without reuse ----------------------------------------------------------------------------


async def test_without_reuse_every_agent_gets_a_new_worktree_removed_on_release() -> None:
    k = kit()
    pool = pool_of(k, 2, reuse=False)
    for n in range(3):
        worktree = ok(await pool.acquire(f"agent-{n}"))
        assert worktree.name == f"agent-{n}"
        await work_and_merge(k, worktree, f"agent-{n}")
        ok(await pool.release(worktree))
        assert leaked(k) == []
    kept = ok(await pool.acquire("agent-kept"))
    ok(await pool.release(kept, keep=True))
    lent = ok(await pool.acquire("agent-lent"))
    ok(await pool.close())
    assert leaked(k) == [kept]
    assert k.worktrees.head_of(JOB) != k.job.base_commit
    assert calls(k, "create_agent_worktree") == 5
    assert calls(k, "create_pool_worktree") == 0
    metrics = pool.metrics
    assert (metrics.misses, metrics.hits, metrics.kept, metrics.peak_slots) == (5, 0, 1, 1)
    assert ok(await pool.release(lent)) is None


async def test_without_reuse_a_failed_creation_frees_its_place() -> None:
    k = kit()
    pool = pool_of(k, 1, reuse=False)
    k.worktrees.fail("create_agent_worktree", times=1)
    assert error_of(await pool.acquire("agent-1")).operation == "create_agent_worktree"
    ok(await pool.acquire("agent-2"))


async def test_without_reuse_a_cancelled_acquisition_removes_its_worktree(
    autojump_clock: trio.testing.MockClock,
) -> None:
    k = kit({"create_agent_worktree": 2.0})
    pool = pool_of(k, 1, reuse=False)
    with trio.move_on_after(1):
        await pool.acquire("agent-1")
        pytest.fail("a cancelled acquire returned")
    assert leaked(k) == []
    assert agent_branches(k) == []
    ok(await pool.acquire("agent-2"))


# -- cancellation -----------------------------------------------------------------------------


@pytest.mark.parametrize("cancel_at", [0.5, 1.5, 1.99])
async def test_a_cancelled_acquisition_returns_its_slot(
    autojump_clock: trio.testing.MockClock, cancel_at: float
) -> None:
    latency = {
        "create_pool_worktree": 1.0,
        "assign_pool_worktree": 1.0,
        "release_pool_worktree": 1.0,
    }
    k = kit(latency)
    pool = pool_of(k, 1)
    with trio.move_on_after(cancel_at) as scope:
        await pool.acquire("agent-1")
        pytest.fail("a cancelled acquire returned")
    assert scope.cancelled_caught
    assert agent_branches(k) == []
    assert [worktree.name for worktree in leaked(k)] == ["pool-0"]
    assert (pool.metrics.slots, pool.metrics.in_use, pool.metrics.acquired) == (1, 0, 0)
    again = ok(await pool.acquire("agent-2"))
    assert again.name == "pool-0"
    assert pool.metrics.hits == 1


async def test_waiting_for_a_slot_can_be_cancelled_and_takes_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    k = kit()
    pool = pool_of(k, 1)
    lent = ok(await pool.acquire("agent-1"))
    with trio.move_on_after(3):
        await pool.acquire("agent-2")
    ok(await pool.release(lent))
    assert ok(await pool.acquire("agent-3")).name == "pool-0"


async def test_release_and_close_finish_even_when_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    k = kit({"release_pool_worktree": 1.0, "remove_worktree": 1.0})
    pool = pool_of(k, 2)
    first = ok(await pool.acquire("agent-1"))
    ok(await pool.acquire("agent-2"))
    with trio.CancelScope() as scope:
        scope.cancel()
        ok(await pool.release(first))
        ok(await pool.close())
    assert leaked(k) == []
    assert agent_branches(k) == []


# -- the property: nothing leaks --------------------------------------------------------------

_OPERATIONS = (
    "create_pool_worktree",
    "assign_pool_worktree",
    "keep_worktree",
    "release_pool_worktree",
    "remove_worktree",
    "create_agent_worktree",
    "commit_changes",
)


@attrs.frozen
class AgentPlan:
    start: float
    cancel_after: float | None  # the agent is cancelled this long after it starts
    work: float
    sticky: bool
    keep: bool


agent_plans = st.builds(
    AgentPlan,
    start=st.integers(0, 6).map(float),
    cancel_after=st.none() | st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.5, 4.0]),
    work=st.sampled_from([0.0, 1.0, 3.0]),
    sticky=st.booleans(),
    keep=st.integers(0, 9).map(lambda n: n == 0),
)
failures = st.lists(
    st.tuples(st.sampled_from(_OPERATIONS), st.integers(1, 8)), max_size=6, unique=True
)


async def _scenario(
    plans: list[AgentPlan],
    injected: list[tuple[str, int]],
    size: int,
    reuse: bool,
    job_cancelled_at: float | None,
) -> None:
    k = kit({operation: 0.5 for operation in _OPERATIONS})
    for operation, nth in injected:
        k.worktrees.fail(operation, nth=nth, times=1)
    pool = pool_of(k, size, reuse=reuse)
    kept: list[Worktree] = []
    outcomes: Counter[str] = Counter()

    async def agent(index: int, plan: AgentPlan) -> None:
        await trio.sleep(plan.start)
        name = f"agent-{index}"
        with trio.move_on_after(math.inf if plan.cancel_after is None else plan.cancel_after):
            acquired = await pool.acquire(name)
            if isinstance(acquired, Failure):
                outcomes["acquire failed"] += 1
                return
            worktree = acquired.unwrap()
            try:
                assert k.worktrees.files(worktree) == dict(
                    k.worktrees.repository.files_at(worktree.base_commit)
                )
                k.worktrees.set_file(worktree, f"out/{name}.txt", name)
                k.worktrees.set_file(worktree, f"{name}.log", "ignored junk")
                if plan.sticky:
                    k.worktrees.stick_file(worktree, "stuck.bin", "x")
                await trio.sleep(plan.work)
                if isinstance(await k.worktrees.commit_changes(worktree, name), Success):
                    await k.merger.merge(worktree.branch, JOB, f"merge {name}")
            finally:
                released = await pool.release(worktree, keep=plan.keep)
                if plan.keep:  # the caller's now, even if it could not be marked kept
                    kept.append(worktree)
                outcomes["released" if isinstance(released, Success) else "release failed"] += 1

    deadline = math.inf if job_cancelled_at is None else job_cancelled_at
    with trio.move_on_after(deadline):
        async with trio.open_nursery() as nursery:
            for index, plan in enumerate(plans):
                nursery.start_soon(agent, index, plan)
    # Each injected failure happens once: closing as often as there are injections succeeds.
    for _ in range(len(injected) + 1):
        if isinstance(await pool.close(), Success):
            break
    else:
        pytest.fail("close kept failing")
    for worktree in kept:
        for _ in range(len(injected) + 1):
            if isinstance(await k.worktrees.remove_worktree(worktree), Success):
                break

    assert leaked(k) == [], outcomes
    assert agent_branches(k) == [], outcomes
    metrics = pool.metrics
    assert (metrics.slots, metrics.in_use) == (0, 0)
    assert metrics.peak_slots <= size
    # Every lent worktree came back (or close removed it); each was a hit or a new one.
    assert metrics.acquired == outcomes["released"] + outcomes["release failed"]
    assert metrics.acquired <= metrics.hits + metrics.misses
    if not reuse:
        assert metrics.hits == 0


@settings(max_examples=200, deadline=None)
@given(
    plans=st.lists(agent_plans, min_size=1, max_size=8),
    injected=failures,
    size=st.integers(1, 3),
    reuse=st.booleans(),
    job_cancelled_at=st.none() | st.sampled_from([0.25, 1.0, 2.0, 5.0]),
)
def test_no_sequence_of_acquire_release_failure_and_cancel_leaks_a_worktree(
    plans: list[AgentPlan],
    injected: list[tuple[str, int]],
    size: int,
    reuse: bool,
    job_cancelled_at: float | None,
) -> None:
    trio.run(
        _scenario,
        plans,
        injected,
        size,
        reuse,
        job_cancelled_at,
        clock=trio.testing.MockClock(autojump_threshold=0),
    )


async def test_a_cancelled_acquisition_whose_slot_cannot_be_released_discards_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    k = kit({"assign_pool_worktree": 1.0})
    pool = pool_of(k, 1)
    k.worktrees.fail("release_pool_worktree", times=1)
    with trio.move_on_after(0.5):  # during the (shielded) assignment
        await pool.acquire("agent-1")
        pytest.fail("a cancelled acquire returned")
    assert leaked(k) == []
    assert agent_branches(k) == []
    assert (pool.metrics.discarded, pool.metrics.slots) == (1, 0)
    assert ok(await pool.acquire("agent-2")).name == "pool-1"

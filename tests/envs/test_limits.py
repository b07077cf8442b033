"""Resource limits: disk warning and hard limit, total worktrees, the pool's guard."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest
import trio
import trio.testing
from returns.result import Failure

from envs.limits import LimitGuard, ResourceLimits
from envs.mock import mock_kit, mock_map_env
from envs.mock_store import RecordingEventSink
from envs.pool import WorktreePool
from envs.protocols import WorktreeError
from envs.worktree_layout import pool_slot_name, worktree_id

Usage = namedtuple("Usage", "total used free")


def full(monkeypatch: pytest.MonkeyPatch, percent: float) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(100, percent, 100 - percent))


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="percentage"):
        ResourceLimits(disk_limit_percent=120)
    with pytest.raises(ValueError, match="max_worktrees_total"):
        ResourceLimits(max_worktrees_total=0)


async def test_the_disk_limit_refuses_new_worktrees_and_agent_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = RecordingEventSink()
    guard = LimitGuard(ResourceLimits(), str(tmp_path / "worktrees"), events)
    full(monkeypatch, 99)
    for refused in (await guard.reserve("fm-a-1"), await guard.may_start()):
        assert refused is not None and "99% full (the limit is 98%)" in refused.message
    full(monkeypatch, 50)
    assert await guard.reserve("fm-a-1") is None
    assert await guard.may_start() is None
    assert events.events == []


async def test_above_the_warning_level_a_warning_is_emitted_once_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = RecordingEventSink()
    guard = LimitGuard(ResourceLimits(disk_warn_percent=80), str(tmp_path), events)
    full(monkeypatch, 85)
    assert await guard.reserve("fm-a-1") is None
    assert await guard.may_start() is None
    assert [event["event"] for event in events.events] == ["disk_warning"]
    assert events.events[0]["percent"] == 85.0


async def test_the_total_counts_worktrees_and_reservations_once_each(tmp_path: Path) -> None:
    worktrees = tmp_path / "worktrees"
    for name in ("fm-a-1", "fm-a-2", ".pending"):
        os.makedirs(worktrees / name)
    guard = LimitGuard(ResourceLimits(max_worktrees_total=4), str(worktrees), RecordingEventSink())

    assert await guard.reserve("fm-b-1") is None  # 2 worktrees + 1 reserved
    os.makedirs(worktrees / "fm-b-1")  # its directory appears: still counted once
    assert await guard.reserve("fm-b-2") is None
    refused = await guard.reserve("fm-b-3")
    assert refused is not None and "already has 4 forkmerge worktrees" in refused.message

    await guard.release("fm-b-2")  # its creation failed: the room is free again
    assert await guard.reserve("fm-b-3") is None


async def test_reservations_of_other_living_processes_count_and_dead_ones_do_not(
    tmp_path: Path,
) -> None:
    worktrees = tmp_path / "worktrees"
    reservations = worktrees / ".reservations"
    reservations.mkdir(parents=True)
    guard = LimitGuard(ResourceLimits(max_worktrees_total=2), str(worktrees), RecordingEventSink())
    with subprocess.Popen(["sleep", "60"]) as other:
        try:
            (reservations / f"fm-other-1.{other.pid}").touch()
            (reservations / "fm-dead-1.999999999").touch()  # no such process
            old = reservations / f"fm-old-1.{other.pid}"
            old.touch()
            os.utime(old, (time.time() - 7200, time.time() - 7200))

            assert await guard.reserve("fm-mine-1") is None
            refused = await guard.reserve("fm-mine-2")
        finally:
            other.kill()
    assert refused is not None
    assert sorted(os.listdir(reservations)) == sorted(
        [".lock", f"fm-other-1.{other.pid}", f"fm-mine-1.{os.getpid()}"]
    )


_RESERVER = """
import sys, time
from envs.limits import LimitGuard, ResourceLimits
from envs.mock_store import RecordingEventSink
guard = LimitGuard(ResourceLimits(max_worktrees_total=3), sys.argv[1], RecordingEventSink())
count = guard._live_reservations
def slow_count():  # widen the window between counting and reserving
    live = count()
    time.sleep(0.2)
    return live
guard._live_reservations = slow_count
while time.time() < float(sys.argv[3]):
    pass
print("ok" if guard._reserve(sys.argv[2]) is None else "refused", flush=True)
sys.stdin.read()  # hold the reservation until told to end
"""


def test_processes_racing_for_the_last_rooms_get_exactly_that_many(tmp_path: Path) -> None:
    worktrees = tmp_path / "worktrees"
    os.makedirs(worktrees / "fm-a-1")
    start_at = str(time.time() + 1.0)  # all start reserving at the same instant
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RESERVER, str(worktrees), f"fm-r-{n}", start_at],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(6)
    ]
    try:
        answers = sorted(racer.stdout.readline().strip() for racer in racers if racer.stdout)
    finally:
        for racer in racers:
            racer.communicate("")
    assert answers == ["ok", "ok"] + ["refused"] * 4


class _RecordingAdmission:
    """Says yes (or what it is told), and records every question."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.refuse_start: WorktreeError | None = None
        self.refuse_reserve: WorktreeError | None = None

    async def reserve(self, key: str) -> WorktreeError | None:
        self.calls.append(("reserve", key))
        return self.refuse_reserve

    async def release(self, key: str) -> None:
        self.calls.append(("release", key))

    async def may_start(self) -> WorktreeError | None:
        self.calls.append(("may_start", ""))
        return self.refuse_start


async def test_a_pool_reserves_each_new_worktree_and_asks_before_each_reuse() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    admission = _RecordingAdmission()
    job = env.job.job_id
    pool = WorktreePool(kit.worktrees, job, env.job.job_branch, 2, guard=admission)

    first = (await pool.acquire("agent-0000-a")).unwrap()
    admission.refuse_reserve = WorktreeError("limits", "disk full")
    second = await pool.acquire("agent-0001-b")
    assert isinstance(second, Failure) and second.failure().message == "disk full"
    assert not isinstance(await pool.release(first), Failure)
    admission.refuse_start = WorktreeError("limits", "disk full now")
    refused = await pool.acquire("agent-0002-c")
    assert isinstance(refused, Failure) and refused.failure().message == "disk full now"
    admission.refuse_start = None
    assert not isinstance(await pool.acquire("agent-0003-d"), Failure)  # the slot was kept

    slot = worktree_id(job, pool_slot_name(0))
    assert admission.calls == [
        ("reserve", slot),
        ("release", slot),
        ("reserve", worktree_id(job, pool_slot_name(1))),  # refused: nothing to release
        ("may_start", ""),
        ("may_start", ""),
    ]
    assert pool.metrics.slots == 1
    await pool.close()


async def test_without_a_pool_each_agent_worktree_is_reserved_by_its_name() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    admission = _RecordingAdmission()
    job = env.job.job_id
    pool = WorktreePool(kit.worktrees, job, env.job.job_branch, 2, reuse=False, guard=admission)
    kit.worktrees.fail("create_agent_worktree", name="agent-0001-b")

    worktree = (await pool.acquire("agent-0000-a")).unwrap()
    assert isinstance(await pool.acquire("agent-0001-b"), Failure)

    assert admission.calls == [
        ("reserve", worktree_id(job, "agent-0000-a")),
        ("release", worktree_id(job, "agent-0000-a")),
        ("reserve", worktree_id(job, "agent-0001-b")),
        ("release", worktree_id(job, "agent-0001-b")),  # released though creation failed
    ]
    await pool.release(worktree)
    await pool.close()


async def test_a_pool_creates_its_slots_side_by_side(
    autojump_clock: trio.testing.MockClock,
) -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    kit.worktrees.latency["create_pool_worktree"] = 1.0
    admission = _RecordingAdmission()
    pool = WorktreePool(kit.worktrees, env.job.job_id, env.job.job_branch, 4, guard=admission)
    started = trio.current_time()

    async with trio.open_nursery() as nursery:
        for n in range(4):
            nursery.start_soon(pool.acquire, f"agent-000{n}-x")

    assert trio.current_time() - started == pytest.approx(1.0)  # not 4 creations in a row
    assert pool.metrics.slots == 4
    await pool.close()

"""Resource limits: disk warning and hard limit, total worktrees, the pool's guard."""

from __future__ import annotations

import os
import shutil
from collections import namedtuple
from pathlib import Path

import pytest
from returns.result import Failure

from envs.limits import LimitGuard, ResourceLimits
from envs.mock import mock_kit, mock_map_env
from envs.mock_store import RecordingEventSink
from envs.pool import WorktreePool
from envs.protocols import WorktreeError

Usage = namedtuple("Usage", "total used free")


def full(monkeypatch: pytest.MonkeyPatch, percent: float) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(100, percent, 100 - percent))


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="percentage"):
        ResourceLimits(disk_limit_percent=120)
    with pytest.raises(ValueError, match="max_worktrees_total"):
        ResourceLimits(max_worktrees_total=0)


async def test_the_disk_limit_refuses_new_worktrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = RecordingEventSink()
    guard = LimitGuard(ResourceLimits(), str(tmp_path / "worktrees"), events)
    full(monkeypatch, 99)
    refused = await guard()
    assert refused is not None and "99% full (the limit is 98%)" in refused.message
    full(monkeypatch, 50)
    assert await guard() is None
    assert events.events == []


async def test_above_the_warning_level_a_warning_is_emitted_once_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = RecordingEventSink()
    guard = LimitGuard(ResourceLimits(disk_warn_percent=80), str(tmp_path), events)
    full(monkeypatch, 85)
    assert await guard() is None
    assert await guard() is None
    assert [event["event"] for event in events.events] == ["disk_warning"]
    assert events.events[0]["percent"] == 85.0


async def test_the_total_worktree_limit_counts_forkmerge_worktrees(tmp_path: Path) -> None:
    worktrees = tmp_path / "worktrees"
    for name in ("fm-a-1", "fm-a-2", ".pending"):
        os.makedirs(worktrees / name)
    guard = LimitGuard(ResourceLimits(max_worktrees_total=3), str(worktrees), RecordingEventSink())
    assert await guard() is None
    os.makedirs(worktrees / "fm-b-1")
    refused = await guard()
    assert refused is not None and "already has 3 forkmerge worktrees" in refused.message


async def test_a_pool_asks_its_guard_before_each_new_worktree() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    answers: list[WorktreeError | None] = [None, WorktreeError("limits", "disk full")]

    async def guard() -> WorktreeError | None:
        return answers.pop(0)

    pool = WorktreePool(kit.worktrees, env.job.job_id, env.job.job_branch, 2, guard=guard)
    first = await pool.acquire("agent-0000-a")
    second = await pool.acquire("agent-0001-b")
    assert isinstance(second, Failure) and second.failure().message == "disk full"
    released = await pool.release(first.unwrap())
    assert not isinstance(released, Failure)
    # a reused slot needs no new worktree, so no question is asked
    assert not isinstance(await pool.acquire("agent-0002-c"), Failure)
    await pool.close()

"""LiveMetricsFile: throttled, atomic, never failing the job; the pool's observer."""

from __future__ import annotations

import json
import os
from pathlib import Path

from returns.result import Success

from envs.live_metrics import LiveMetricsFile
from envs.mock import mock_kit, mock_map_env
from envs.pool import PoolMetrics, WorktreePool


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def read(path: Path) -> object:
    return json.loads(path.read_text())


def test_snapshots_are_written_at_most_once_per_interval_and_the_last_is_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "logs" / "job.metrics.json"
    clock = FakeClock()
    live = LiveMetricsFile(str(path), interval=1.0, clock=clock)

    live.publish({"n": 1})
    assert read(path) == {"n": 1}  # the first is written at once (the directory made)
    clock.now += 0.5
    live.publish({"n": 2})
    assert read(path) == {"n": 1}  # too soon: kept
    clock.now += 0.6
    live.publish({"n": 3})
    assert read(path) == {"n": 3}
    clock.now += 0.1
    live.publish({"n": 4})
    live.flush()
    assert read(path) == {"n": 4}
    live.flush()  # nothing new: nothing written
    assert read(path) == {"n": 4}
    assert os.listdir(path.parent) == ["job.metrics.json"]  # no temporary file left


def test_a_write_that_fails_is_dropped_without_failing(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the logs directory should be\n")
    live = LiveMetricsFile(str(blocked / "job.metrics.json"))

    live.publish({"n": 1})
    live.flush()

    assert blocked.read_text() == "a file where the logs directory should be\n"


async def test_the_pool_reports_its_metrics_after_each_change() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    seen: list[PoolMetrics] = []
    pool = WorktreePool(kit.worktrees, env.job.job_id, env.job.job_branch, 2, observer=seen.append)

    first = await pool.acquire("agent-0000-a")
    assert isinstance(first, Success)
    assert [(m.in_use, m.acquired, m.released) for m in seen] == [(1, 1, 0)]
    await pool.release(first.unwrap())
    assert (seen[-1].in_use, seen[-1].released, seen[-1].slots) == (0, 1, 1)
    await pool.close()
    assert (len(seen), seen[-1].slots) == (3, 0)

"""A running job publishes its pool's figures, in the mock environment on MockClock."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from envs.mock import mock_kit, mock_phase_env
from phases.workflow import METRICS_FLUSH_SECONDS
from tests.phases.helpers import run_new, workflow

AGENTS = """
name: agents
map:
  input: items.json
  agent_template:
    - shell: "work ${item.name}"
"""


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.flushed_at: list[float] = []

    def publish(self, snapshot: Mapping[str, Any]) -> None:
        self.published.append({**snapshot, "at": trio.current_time()})

    def flush(self) -> None:
        self.flushed_at.append(trio.current_time())


async def test_a_running_job_publishes_its_pool_and_flushes_while_it_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    items = json.dumps([{"name": f"item{i}"} for i in range(10)]).encode()
    env = mock_phase_env(files={"items.json": items})
    kit = mock_kit(env)
    kit.executor.on("work", duration=1.5)
    publisher = RecordingPublisher()
    env = attrs.evolve(env, services=attrs.evolve(env.services, live_metrics=publisher))
    started = trio.current_time()

    job = await run_new(env, workflow(AGENTS), max_parallel=5)

    assert trio.current_time() - started == pytest.approx(3.0)  # the ticks add no time
    assert job.map.successful == 10
    running = [snapshot["agents_running"] for snapshot in publisher.published]
    assert max(running) == 5
    # Each tick publishes anew: at 1 s and 2 s, five commands were running.
    at_ticks = [
        snapshot["processes_running"]
        for snapshot in publisher.published
        if round(snapshot["at"] - started, 6) in (1.0, 2.0)
    ]
    assert at_ticks == [5, 5]
    last = publisher.published[-1]
    assert (last["live"], last["agents_running"], last["pool_slots"], last["cleanups"]) == (
        True,
        0,
        0,
        10,
    )
    assert (last["pool_hits"], last["pool_misses"]) == (5, 5)
    # Written every second while the agents ran, and once more when the pool closed.
    assert publisher.flushed_at == pytest.approx(
        [started + n * METRICS_FLUSH_SECONDS for n in (1, 2, 3)] + [started + 3.0]
    )

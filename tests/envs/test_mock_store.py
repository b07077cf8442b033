"""The recording doubles: call recorder, event sink, job store, wall clock."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from envs.mock_store import (
    DEFAULT_WALL_TIME,
    Call,
    CallRecorder,
    MemoryJobStore,
    MockWallClock,
    RecordingEventSink,
)
from envs.protocols import Clock, EventSink, JobStore


def test_implements_the_protocols() -> None:
    sink: EventSink = RecordingEventSink()  # checked by mypy
    store: JobStore = MemoryJobStore()
    clock: Clock = MockWallClock()
    assert isinstance(sink, RecordingEventSink)
    assert isinstance(store, MemoryJobStore)
    assert isinstance(clock, MockWallClock)


def test_recorder_keeps_calls_in_order_and_filters_them() -> None:
    recorder = CallRecorder()
    recorder.record("worktrees", "create_agent_worktree", "agent-0", "forkmerge/j")
    recorder.record("clock", "now")
    recorder.record("merger", "merge", "a", "b", "m")
    assert recorder.calls[0] == ("worktrees", "create_agent_worktree", ("agent-0", "forkmerge/j"))
    assert recorder.calls[1] == Call("clock", "now", ())
    assert recorder.of("merger", "worktrees") == [recorder.calls[0], recorder.calls[2]]
    assert recorder.methods("clock") == ["clock.now"]
    assert recorder.methods() == ["worktrees.create_agent_worktree", "clock.now", "merger.merge"]
    recorder.clear()
    assert recorder.calls == []


def test_event_sink_keeps_copies_and_filters_by_fields() -> None:
    recorder = CallRecorder()
    sink = RecordingEventSink(recorder)
    event = {"type": "item_failed", "item": {"id": 1}}
    sink.emit(event)
    sink.emit({"type": "item_done", "item": {"id": 2}})
    event["item"]["id"] = 99  # type: ignore[index]
    assert sink.events[0] == {"type": "item_failed", "item": {"id": 1}}
    assert sink.where(type="item_done") == [sink.events[1]]
    assert sink.where(type="item_done", missing=None) == []
    assert recorder.methods() == ["events.emit", "events.emit"]


async def test_job_store_keeps_each_jobs_events_in_order() -> None:
    recorder = CallRecorder()
    store = MemoryJobStore(recorder)
    first = {"type": "started", "items": [1]}
    await store.append("job-1", first)
    await store.append("job-2", {"type": "started"})
    await store.append("job-1", {"type": "done"})
    first["items"].append(2)  # type: ignore[attr-defined]
    events = await store.events("job-1")
    assert events == [{"type": "started", "items": [1]}, {"type": "done"}]
    events.clear()
    assert len(await store.events("job-1")) == 2
    assert await store.events("job-9") == []
    assert recorder.calls[0] == ("store", "append", ("job-1", first))
    assert recorder.methods()[-1] == "store.events"


async def test_job_store_append_is_cancellable_before_it_stores() -> None:
    store = MemoryJobStore()
    with trio.CancelScope() as scope:
        scope.cancel()
        await store.append("job-1", {"type": "lost"})
    assert store.jobs == {}


async def test_wall_clock_follows_trios_clock(autojump_clock: trio.testing.MockClock) -> None:
    recorder = CallRecorder()
    clock = MockWallClock(1000.0, recorder=recorder)
    start = clock.now()
    await trio.sleep(5)
    assert clock.now() - start == pytest.approx(5.0)
    clock.set(2000.0)
    assert clock.now() == pytest.approx(2000.0)
    clock.advance(10)
    await trio.sleep(1)
    assert clock.now() == pytest.approx(2011.0)
    assert recorder.methods() == ["clock.now"] * 4


async def test_a_fixed_wall_clock_stands_still(autojump_clock: trio.testing.MockClock) -> None:
    clock = MockWallClock(follow_trio=False)
    assert clock.now() == DEFAULT_WALL_TIME
    await trio.sleep(60)
    assert clock.now() == DEFAULT_WALL_TIME
    clock.advance(1.5)
    assert clock.now() == DEFAULT_WALL_TIME + 1.5
    with pytest.raises(ValueError, match="`seconds` must be non-negative"):
        clock.advance(-1)


def test_wall_clock_outside_trio_reads_its_start() -> None:
    clock = MockWallClock(42.0)
    assert clock.now() == 42.0
    clock.set(7.0)
    assert clock.now() == 7.0

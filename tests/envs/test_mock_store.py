"""The recording doubles: call recorder, event sink, job store, wall clock."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing

from envs.job_records import JobRecord, JobStatus
from envs.mock_store import (
    DEFAULT_WALL_TIME,
    Call,
    CallRecorder,
    MemoryJobStore,
    MockWallClock,
    RecordingEventSink,
)
from envs.protocols import Clock, EventSink, JobStore
from pure.job_events import ItemMerged, ItemStarted, ItemSucceeded, JobPlanned, PhaseStarted
from pure.job_state import InvalidTransition, ItemStatus


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


def job(job_id: str, created_at: float = 1.0) -> JobRecord:
    return JobRecord(
        job_id,
        "wf",
        "wf.yml",
        "hash",
        None,
        "/repo",
        f"forkmerge/{job_id}",
        JobStatus.RUNNING,
        created_at,
        created_at,
    )


async def test_job_store_keeps_each_jobs_events_in_order_and_folds_items() -> None:
    recorder = CallRecorder()
    store = MemoryJobStore(recorder)
    await store.create_job(job("job-1"))
    await store.create_job(job("job-2", created_at=2.0))
    planned = JobPlanned(("a", "b"))
    await store.append("job-1", planned)
    await store.append("job-2", PhaseStarted("setup"))
    await store.append("job-1", ItemStarted("a", 1))
    await store.append("job-1", ItemSucceeded("a"))
    await store.append("job-1", ItemMerged("a", "c1"))
    events = await store.events("job-1")
    assert events == [planned, ItemStarted("a", 1), ItemSucceeded("a"), ItemMerged("a", "c1")]
    assert await store.events("job-9") == []
    assert [number for number, _ in await store.events_since("job-1", 2)] == [3, 4]
    items = await store.items("job-1")
    assert [(row.item_key, row.status, row.merge_commit) for row in items] == [
        ("a", ItemStatus.MERGED, "c1"),
        ("b", ItemStatus.PENDING, None),
    ]
    assert [row.item_key for row in await store.items("job-1", statuses=[ItemStatus.PENDING])] == [
        "b"
    ]
    counts = await store.item_counts("job-1")
    assert (counts[ItemStatus.MERGED], counts[ItemStatus.PENDING]) == (1, 1)
    assert [record.job_id for record in await store.jobs()] == ["job-2", "job-1"]
    assert (await store.job("job-1")) == attrs.evolve(job("job-1"), total=2)
    assert recorder.calls[0] == ("store", "create_job", (job("job-1"),))


async def test_job_store_refuses_impossible_events_and_unknown_jobs() -> None:
    store = MemoryJobStore()
    with pytest.raises(ValueError, match="no job"):
        await store.append("nope", PhaseStarted("setup"))
    await store.create_job(job("job-1"))
    await store.append("job-1", JobPlanned(("a",)))
    with pytest.raises(InvalidTransition):
        await store.append("job-1", ItemMerged("a", "c"))
    assert len(await store.events("job-1")) == 1


async def test_job_store_update_job() -> None:
    store = MemoryJobStore()
    await store.create_job(job("job-1"))
    await store.update_job("job-1", status=JobStatus.FAILED, add_duration=2.5, input_hash="h")
    await store.update_job("job-1", add_duration=1.0)
    record = await store.job("job-1")
    assert record is not None
    assert (record.status, record.runs_duration, record.input_hash) == (
        JobStatus.FAILED,
        3.5,
        "h",
    )


async def test_job_store_append_is_cancellable_before_it_stores() -> None:
    store = MemoryJobStore()
    await store.create_job(job("job-1"))
    with trio.CancelScope() as scope:
        scope.cancel()
        await store.append("job-1", PhaseStarted("setup"))
    assert store.logs == {"job-1": []}


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

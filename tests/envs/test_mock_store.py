"""The recording doubles: call recorder, event sink, job store, wall clock."""

from __future__ import annotations

import os
import tempfile

import attrs
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings

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
from envs.store import SqliteJobStore
from envs.store_pruning import JobRows
from pure.job_events import (
    ItemMerged,
    ItemStarted,
    ItemSucceeded,
    JobEvent,
    JobPlanned,
    PhaseStarted,
)
from pure.job_state import InvalidTransition, ItemStatus
from tests.envs.test_store import valid_runs


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


async def test_job_store_deletes_every_record_of_one_job_and_nothing_of_the_others() -> None:
    recorder = CallRecorder()
    store = MemoryJobStore(recorder)
    for job_id in ("job", "job-1", "job-2"):
        await store.create_job(job(job_id))
        await store.append_many(
            job_id, [PhaseStarted("map"), JobPlanned(("a", "b")), ItemStarted("a", 1)]
        )
    kept = {
        job_id: (
            await store.job(job_id),
            await store.events(job_id),
            await store.items(job_id),
            await store.phases(job_id),
        )
        for job_id in ("job", "job-2")
    }
    checked: JobStore = store
    assert await checked.job_rows("job-1") == JobRows(jobs=1, events=3, items=2, phases=1)
    assert await checked.delete_job("job-1") == JobRows(jobs=1, events=3, items=2, phases=1)
    assert recorder.methods("store")[-2:] == ["store.job_rows", "store.delete_job"]
    assert await store.job("job-1") is None
    assert await store.events("job-1") == []
    assert await store.items("job-1") == []
    assert await store.phases("job-1") == {}
    assert "job-1" not in store.records and "job-1" not in store.logs
    assert await store.job_rows("job-1") == JobRows()
    assert await store.delete_job("job-1") == JobRows()  # twice, or an unknown job: nothing
    assert sorted(record.job_id for record in await store.jobs()) == ["job", "job-2"]
    for job_id, (record, events, items, phases) in kept.items():
        assert await store.job(job_id) == record
        assert await store.events(job_id) == events
        assert await store.items(job_id) == items
        assert await store.phases(job_id) == phases
    # the id is free again: a new job of that id starts from nothing
    await store.create_job(job("job-1"))
    assert await store.job_rows("job-1") == JobRows(jobs=1)
    with pytest.raises(InvalidTransition):
        await store.append("job-1", ItemStarted("a", 1))  # its old plan is gone too


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=valid_runs())
async def test_job_store_counts_and_deletes_what_the_sqlite_store_does(
    events: list[JobEvent],
) -> None:
    memory = MemoryJobStore()
    with tempfile.TemporaryDirectory() as directory:
        sqlite = SqliteJobStore(os.path.join(directory, "jobs.sqlite3"), synchronous="NORMAL")
        stores: tuple[JobStore, JobStore] = (memory, sqlite)
        for store in stores:
            await store.create_job(job("job-1"))
            await store.append_many("job-1", events)
        counted = [await store.job_rows("job-1") for store in stores]
        deleted = [await store.delete_job("job-1") for store in stores]
        sqlite.close()
    assert counted[0] == counted[1] == deleted[0] == deleted[1]

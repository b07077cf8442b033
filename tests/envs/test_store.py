"""The SQLite job store on real files: events, items, durability, refusals, concurrency."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs import store_schema
from envs.protocols import JobStore
from envs.store import ItemRow, JobRecord, JobRows, JobStatus, SqliteJobStore, StoreError
from envs.store_schema import APPLICATION_ID, SCHEMA_VERSION
from pure.job_state import (
    InvalidTransition,
    ItemFailed,
    ItemMerged,
    ItemRetried,
    ItemSkipped,
    ItemStarted,
    ItemStatus,
    ItemSucceeded,
    JobEvent,
    JobPlanned,
    PhaseFinished,
    PhaseStarted,
    PhaseStatus,
    fold,
    try_fold,
)

PROJECT_ROOT = str(Path(__file__).resolve().parents[2])


def job_record(job_id: str = "job-1", created_at: float = 100.0) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        workflow_name="fix-lints",
        workflow_path="workflows/fix.yml",
        workflow_hash="sha256:aaa",
        input_hash="sha256:bbb",
        repository="/repo",
        job_branch=f"forkmerge/{job_id}",
        status=JobStatus.RUNNING,
        created_at=created_at,
        updated_at=created_at,
        options={"max_parallel": 4, "agent_command": ["claude", "--print"], "profile": None},
    )


async def new_store(path: Path, job_id: str = "job-1", **kwargs: object) -> SqliteJobStore:
    store = SqliteJobStore(str(path), now=lambda: 500.0, **kwargs)  # type: ignore[arg-type]
    await store.create_job(job_record(job_id))
    return store


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection to the file, as another program (or forkmerge process) would open it."""
    return sqlite3.connect(str(path), isolation_level=None)


def snapshot(directory: Path) -> dict[str, str]:
    """Every file in ``directory`` with a hash of its bytes."""
    return {
        entry.name: hashlib.sha256(entry.read_bytes()).hexdigest()
        for entry in sorted(directory.iterdir())
        if entry.is_file()
    }


EVERY_EVENT: list[JobEvent] = [
    PhaseStarted("setup", at=1.0),
    PhaseFinished("setup"),
    PhaseStarted("map"),
    JobPlanned(("a", "b", "c", "ünïcode / key\n"), at=2.0),
    ItemStarted("a", 1, at=3.0),
    ItemSucceeded("a", ("c1", "c2"), "all good", at=4.5),
    ItemMerged("a", "m1", at=5.0),
    ItemStarted("b", 1, at=3.0),
    ItemFailed("b", "exit code 2: boom", at=3.25),
    ItemRetried("b"),
    ItemStarted("b", 2, at=10.0),
    ItemSucceeded("b"),
    ItemSkipped("c", "circuit open"),
    ItemStarted("ünïcode / key\n", 1),
    PhaseFinished("map", success=False, at=9.0),
]


async def test_every_event_type_round_trips_and_is_numbered(tmp_path: Path) -> None:
    store = await new_store(tmp_path / "jobs.sqlite3")
    checked: JobStore = store  # the protocol, checked by mypy
    for event in EVERY_EVENT[:5]:
        await checked.append("job-1", event)
    await store.append_many("job-1", EVERY_EVENT[5:])
    assert await checked.events("job-1") == EVERY_EVENT
    numbered = await store.events_since("job-1", 0)
    assert [seq for seq, _ in numbered] == list(range(1, len(EVERY_EVENT) + 1))
    assert await store.events_since("job-1", 12) == list(
        zip((13, 14, 15), EVERY_EVENT[12:], strict=True)
    )
    assert await store.events_since("job-1", 15) == []
    assert await store.events("no-such-job") == []
    # the log's time is the event's own, else when it was stored
    with raw(tmp_path / "jobs.sqlite3") as connection:
        times = connection.execute("SELECT at FROM events ORDER BY seq").fetchall()
    assert [at for (at,) in times][:3] == [1.0, 500.0, 500.0]


async def test_items_phases_and_job_follow_the_events(tmp_path: Path) -> None:
    store = await new_store(tmp_path / "jobs.sqlite3")
    await store.append_many("job-1", EVERY_EVENT)
    await store.set_agent_branch("job-1", "a", "forkmerge-agents/job-1/agent-0000-a")
    branch = "forkmerge-agents/job-1/agent-0000-a"
    key, reason = "ünïcode / key\n", "circuit open"
    assert await store.items("job-1") == [
        ItemRow("job-1", "a", 0, ItemStatus.MERGED, 1, 1.5, None, None, branch, "m1", 500.0),
        # 0.25 s of the failed attempt, then 490 s (started at 10, succeeded at 500: by the log)
        ItemRow("job-1", "b", 1, ItemStatus.SUCCEEDED, 2, 490.25, None, None, None, None, 500.0),
        ItemRow("job-1", "c", 2, ItemStatus.SKIPPED, 0, 0.0, None, reason, None, None, 500.0),
        ItemRow("job-1", key, 3, ItemStatus.RUNNING, 1, 0.0, None, None, None, None, 500.0),
    ]  # fmt: skip
    finished = await store.items("job-1", statuses=[ItemStatus.SKIPPED, ItemStatus.MERGED])
    assert [row.item_key for row in finished] == ["a", "c"]
    assert await store.items("job-1", statuses=()) == []
    assert await store.phases("job-1") == {
        "map": PhaseStatus.FAILED,
        "setup": PhaseStatus.FINISHED,
    }
    counts = await store.item_counts("job-1")
    assert counts == {
        ItemStatus.PENDING: 0,
        ItemStatus.RUNNING: 1,
        ItemStatus.SUCCEEDED: 1,
        ItemStatus.MERGED: 1,
        ItemStatus.FAILED: 0,
        ItemStatus.SKIPPED: 1,
    }
    job = await store.job("job-1")
    assert job is not None
    assert (job.total, job.updated_at, job.status) == (4, 500.0, JobStatus.RUNNING)


async def test_a_restarted_attempt_does_not_count_the_time_before_the_crash(tmp_path: Path) -> None:
    store = await new_store(tmp_path / "jobs.sqlite3")
    await store.append_many(
        "job-1",
        [
            JobPlanned(("a",), at=0.0),
            ItemStarted("a", 1, at=10.0),
            ItemStarted("a", 2, at=1000.0),  # resumed after a crash
            ItemFailed("a", "exit 1", at=1004.0),
        ],
    )
    (row,) = await store.items("job-1")
    assert (row.status, row.attempts, row.duration, row.last_error) == (
        ItemStatus.FAILED,
        2,
        4.0,
        "exit 1",
    )


# -- the items table agrees with the fold ------------------------------------------------------

_NEXT = {
    ItemStatus.PENDING: ("start", "skip"),
    ItemStatus.RUNNING: ("start", "succeed", "fail", "retry", "skip"),
    ItemStatus.SUCCEEDED: ("merge", "fail"),
    ItemStatus.FAILED: ("retry", "skip"),
    ItemStatus.MERGED: (),
    ItemStatus.SKIPPED: (),
}


@st.composite
def valid_runs(draw: st.DrawFn) -> list[JobEvent]:
    """A valid event sequence of a job: phases, a plan, and item moves along the transitions."""
    keys = draw(st.lists(st.text(min_size=1, max_size=6), unique=True, max_size=8))
    status = dict.fromkeys(keys, ItemStatus.PENDING)
    attempts = dict.fromkeys(keys, 0)
    phases: dict[str, PhaseStatus] = {}
    events: list[JobEvent] = []
    at = draw(st.sampled_from([None, 1000.0]))
    for _ in range(draw(st.integers(0, 40))):
        at = None if at is None else at + draw(st.floats(0, 100))
        movable = [key for key in keys if _NEXT[status[key]]]
        if not events or draw(st.integers(0, 5)) == 0 or not movable:
            if not any(isinstance(e, JobPlanned) for e in events) and draw(st.booleans()):
                events.append(JobPlanned(tuple(keys), at=at))
                continue
            phase = draw(st.sampled_from(["setup", "map", "reduce"]))
            if phases.get(phase) is PhaseStatus.RUNNING:
                success = draw(st.booleans())
                events.append(PhaseFinished(phase, success, at=at))
                phases[phase] = PhaseStatus.FINISHED if success else PhaseStatus.FAILED
            elif phases.get(phase) is not PhaseStatus.FINISHED:
                events.append(PhaseStarted(phase, at=at))
                phases[phase] = PhaseStatus.RUNNING
            continue
        if not any(isinstance(e, JobPlanned) for e in events):
            events.append(JobPlanned(tuple(keys), at=at))
        key = draw(st.sampled_from(movable))
        move = draw(st.sampled_from(_NEXT[status[key]]))
        if move == "start":
            attempts[key] += 1
            events.append(ItemStarted(key, attempts[key], at=at))
            status[key] = ItemStatus.RUNNING
        elif move == "succeed":
            events.append(ItemSucceeded(key, (f"c{len(events)}",), at=at))
            status[key] = ItemStatus.SUCCEEDED
        elif move == "merge":
            events.append(ItemMerged(key, f"m{len(events)}", at=at))
            status[key] = ItemStatus.MERGED
        elif move == "fail":
            events.append(ItemFailed(key, f"error {len(events)}", at=at))
            status[key] = ItemStatus.FAILED
        elif move == "retry":
            events.append(ItemRetried(key, at=at))
            status[key] = ItemStatus.PENDING
        else:
            events.append(ItemSkipped(key, f"reason {len(events)}", at=at))
            status[key] = ItemStatus.SKIPPED
    return events


async def assert_tables_match_fold(store: SqliteJobStore, events: list[JobEvent]) -> None:
    state = fold(events)
    rows = await store.items("job-1")
    assert [(row.item_key, row.index) for row in rows] == [
        (key, index) for index, key in enumerate(state.item_keys)
    ]
    expected = [
        (r.status, r.attempts, r.merge_commit, r.error, r.skip_reason) for r in state.records
    ]
    got = [
        (row.status, row.attempts, row.merge_commit, row.last_error, row.skip_reason)
        for row in rows
    ]
    assert got == expected
    assert tuple((await store.item_counts("job-1")).values()) == state.counts
    assert await store.phases("job-1") == dict(state.phases)
    assert await store.events("job-1") == events


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=valid_runs(), batch=st.integers(1, 5))
async def test_the_items_table_agrees_with_the_fold(events: list[JobEvent], batch: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        store = await new_store(Path(directory) / "jobs.sqlite3", synchronous="NORMAL")
        for start in range(0, len(events), batch):
            await store.append_many("job-1", events[start : start + batch])
        await assert_tables_match_fold(store, events)
        store.close()


ANY_EVENT = st.one_of(
    st.builds(JobPlanned, st.lists(st.sampled_from("abc"), max_size=3).map(tuple)),
    st.builds(ItemStarted, st.sampled_from("abcz"), st.integers(0, 3)),
    st.builds(ItemSucceeded, st.sampled_from("abc")),
    st.builds(ItemMerged, st.sampled_from("abc"), st.just("m")),
    st.builds(ItemFailed, st.sampled_from("abc"), st.just("e")),
    st.builds(ItemRetried, st.sampled_from("abc")),
    st.builds(ItemSkipped, st.sampled_from("abc"), st.just("r")),
    st.builds(PhaseStarted, st.sampled_from(["map", "reduce"])),
    st.builds(PhaseFinished, st.sampled_from(["map", "reduce"]), st.booleans()),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ANY_EVENT, max_size=15))
async def test_an_event_the_fold_refuses_is_refused_and_not_stored(events: list[JobEvent]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        store = await new_store(Path(directory) / "jobs.sqlite3", synchronous="NORMAL")
        accepted: list[JobEvent] = []
        for event in events:
            expected = try_fold([*accepted, event])
            try:
                await store.append("job-1", event)
            except InvalidTransition as refused:
                assert expected.failure().message == refused.message
            else:
                assert expected.unwrap() == fold([*accepted, event])
                accepted.append(event)
            await assert_tables_match_fold(store, accepted)
        store.close()


async def test_a_batch_is_stored_whole_or_not_at_all(tmp_path: Path) -> None:
    store = await new_store(tmp_path / "jobs.sqlite3")
    await store.append("job-1", JobPlanned(("a", "b")))
    with pytest.raises(InvalidTransition, match="item-merged for item 'b' needs it succeeded"):
        await store.append_many("job-1", [ItemStarted("a", 1), ItemMerged("b", "m")])
    assert await store.events("job-1") == [JobPlanned(("a", "b"))]
    assert [row.status for row in await store.items("job-1")] == [ItemStatus.PENDING] * 2


async def test_a_plan_with_a_repeated_key_or_a_second_plan_is_refused(tmp_path: Path) -> None:
    store = await new_store(tmp_path / "jobs.sqlite3")
    with pytest.raises(InvalidTransition, match="job-planned lists item 'a' twice"):
        await store.append("job-1", JobPlanned(("a", "b", "a")))
    await store.append("job-1", JobPlanned(("a", "b")))
    with pytest.raises(InvalidTransition, match="job-planned again: the job already has 2 items"):
        await store.append("job-1", JobPlanned(("c",)))
    assert [row.item_key for row in await store.items("job-1")] == ["a", "b"]


# -- jobs ----------------------------------------------------------------------------------------


async def test_jobs_are_created_listed_newest_first_and_updated(tmp_path: Path) -> None:
    store = SqliteJobStore(str(tmp_path / "jobs.sqlite3"), now=lambda: 900.0)
    for job_id, created in (("old", 1.0), ("new", 3.0), ("middle", 2.0)):
        await store.create_job(job_record(job_id, created))
    assert [job.job_id for job in await store.jobs()] == ["new", "middle", "old"]
    assert await store.job("old") == job_record("old", 1.0)
    assert await store.job("missing") is None
    await store.update_job("old", status=JobStatus.INTERRUPTED, add_duration=12.5)
    await store.update_job("old", total=7, add_duration=2.5, input_hash="sha256:ccc")
    old = await store.job("old")
    assert old is not None
    assert (old.status, old.total, old.runs_duration, old.input_hash, old.updated_at) == (
        JobStatus.INTERRUPTED,
        7,
        15.0,
        "sha256:ccc",
        900.0,
    )
    assert old.options == {
        "max_parallel": 4,
        "agent_command": ["claude", "--print"],
        "profile": None,
    }
    with pytest.raises(StoreError, match="already has a job 'old'"):
        await store.create_job(job_record("old"))
    with pytest.raises(StoreError, match="has no job 'missing'"):
        await store.update_job("missing", status=JobStatus.FAILED)
    with pytest.raises(StoreError, match="has no job 'missing' to append events to"):
        await store.append("missing", PhaseStarted("setup"))
    with pytest.raises(StoreError, match="has no item 'x' in job 'old'"):
        await store.set_agent_branch("old", "x", "b")
    with pytest.raises(ValueError, match="`add_duration` must be non-negative, got -1"):
        await store.update_job("old", add_duration=-1)
    with pytest.raises(ValueError, match="`total` must be non-negative, got -2"):
        await store.update_job("old", total=-2)


async def test_a_job_status_this_forkmerge_does_not_know_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = await new_store(path)
    with raw(path) as connection:
        connection.execute("UPDATE jobs SET status = 'paused-by-v9'")
    with pytest.raises(StoreError, match="job 'job-1' with unknown status 'paused-by-v9'"):
        await store.jobs()


# -- the file: reopening, crashes, WAL, schema, refusals ---------------------------------------


async def test_reopening_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    with await new_store(path) as store:
        await store.append_many("job-1", EVERY_EVENT)
        await store.update_job("job-1", add_duration=3.0)
        before = (
            await store.jobs(),
            await store.events_since("job-1", 0),
            await store.items("job-1"),
        )
    with pytest.raises(RuntimeError, match="is closed"):
        await store.jobs()
    store.close()  # closing twice is fine
    again = SqliteJobStore(str(path))
    assert (
        await again.jobs(),
        await again.events_since("job-1", 0),
        await again.items("job-1"),
    ) == before
    await again.append("job-1", ItemSucceeded("ünïcode / key\n"))
    assert len(await again.events("job-1")) == len(EVERY_EVENT) + 1
    again.close()


async def test_wal_mode_schema_version_and_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = await new_store(path)
    await store.append("job-1", PhaseStarted("setup"))
    with raw(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert connection.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        with pytest.raises(sqlite3.IntegrityError, match="the event log is append-only"):
            connection.execute("UPDATE events SET kind = 'x'")
    names = ("synchronous", "foreign_keys", "busy_timeout")
    pragmas = store._db.call(
        "read pragmas", lambda c: [c.execute(f"PRAGMA {name}").fetchone()[0] for name in names]
    )
    assert pragmas == [2, 1, 10_000]  # FULL
    store.close()
    normal = SqliteJobStore(str(path), synchronous="NORMAL", busy_timeout=0.5)
    assert normal._db.call("read", lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 1
    normal.close()


async def test_for_repository_puts_the_database_in_the_git_dir_or_the_state_dir(
    tmp_path: Path,
) -> None:
    git_dir = tmp_path / "repo" / ".git"
    git_dir.mkdir(parents=True)
    store = SqliteJobStore.for_repository(str(git_dir))
    assert store.path == str(git_dir / "forkmerge" / "jobs.sqlite3")
    assert (git_dir / "forkmerge" / "jobs.sqlite3").is_file()
    store.close()
    elsewhere = SqliteJobStore.for_repository(str(git_dir), state_dir=str(tmp_path / "a" / "b"))
    assert elsewhere.path == str(tmp_path / "a" / "b" / "jobs.sqlite3")
    assert os.path.isfile(elsewhere.path)
    elsewhere.close()


def make_database(path: Path, *, application_id: int, version: int, wal: bool = False) -> None:
    with raw(path) as connection:
        if wal:
            connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("CREATE TABLE jobs (job_id TEXT PRIMARY KEY)")
        connection.execute("INSERT INTO jobs VALUES ('from the future')")
        connection.execute(f"PRAGMA application_id = {application_id}")
        connection.execute(f"PRAGMA user_version = {version}")
    if wal:  # leave the WAL behind, as a crashed newer forkmerge would
        with raw(path) as connection:
            connection.execute("PRAGMA wal_autocheckpoint = 0")
            connection.execute("INSERT INTO jobs VALUES ('still in the WAL')")
            os.link(f"{path}-wal", f"{path}-wal.kept")
        os.replace(f"{path}-wal.kept", f"{path}-wal")


@pytest.mark.parametrize("wal", [False, True])
def test_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path, wal: bool) -> None:
    path = tmp_path / "jobs.sqlite3"
    make_database(path, application_id=APPLICATION_ID, version=7, wal=wal)
    before = snapshot(tmp_path)
    with pytest.raises(StoreError) as refused:
        SqliteJobStore(str(path))
    assert str(refused.value) == (
        f"job database {path} has schema version 7, newer than this forkmerge understands "
        f"({SCHEMA_VERSION}); upgrade forkmerge"
    )
    assert refused.value.path == str(path)
    after = snapshot(tmp_path)
    after.pop("jobs.sqlite3-shm", None)  # SQLite's shared-memory index, not data
    before.pop("jobs.sqlite3-shm", None)
    assert after == before


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"this is not a database, just text\n" * 100, "file is not a database"),
        (b"SQLite format 3\x00" + b"\xff" * 5000, "file is not a database"),
        (os.urandom(8192), "file is not a database"),
    ],
)
def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "jobs.sqlite3"
    path.write_bytes(content)
    before = snapshot(tmp_path)
    with pytest.raises(StoreError) as refused:
        SqliteJobStore(str(path))
    assert str(refused.value) == f"job database {path} is not a forkmerge job database ({reason})"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("application_id", "version", "reason"),
    [
        (0, 0, "a SQLite database of another program: 2 schema objects, no forkmerge mark"),
        (0, 3, "a SQLite database of another program: 2 schema objects, no forkmerge mark"),
        (0x4D504B47, 1, "it belongs to another program: application_id 0x4d504b47"),
    ],
)
def test_another_programs_database_is_refused_and_left_untouched(
    tmp_path: Path, application_id: int, version: int, reason: str
) -> None:
    path = tmp_path / "jobs.sqlite3"
    make_database(path, application_id=application_id, version=version)
    before = snapshot(tmp_path)
    with pytest.raises(StoreError) as refused:
        SqliteJobStore(str(path))
    assert str(refused.value) == f"job database {path} is not a forkmerge job database ({reason})"
    assert snapshot(tmp_path) == before


def test_a_newer_schema_found_under_the_write_lock_is_refused_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process may upgrade the file between the read-only look and the write lock."""
    path = tmp_path / "jobs.sqlite3"
    make_database(path, application_id=APPLICATION_ID, version=9, wal=True)
    monkeypatch.setattr(store_schema, "_inspect_read_only", lambda path: None)
    with pytest.raises(StoreError, match="has schema version 9, newer than"):
        SqliteJobStore(str(path))
    with raw(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (9,)
        assert connection.execute("SELECT count(*) FROM jobs").fetchone() == (2,)


def test_a_path_that_cannot_hold_a_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"cannot be opened \(Is a directory\)"):
        SqliteJobStore(str(tmp_path))
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match=r"jobs.sqlite3 cannot be opened \(Not a directory\)"):
        SqliteJobStore(str(tmp_path / "file" / "sub" / "jobs.sqlite3"))
    with pytest.raises(ValueError, match="`busy_timeout` must be non-negative, got -1"):
        SqliteJobStore(str(tmp_path / "jobs.sqlite3"), busy_timeout=-1)


async def test_an_empty_file_becomes_a_database(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    path.touch()
    store = await new_store(path)
    assert [job.job_id for job in await store.jobs()] == ["job-1"]
    store.close()


async def test_an_unreadable_event_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = await new_store(path)
    with raw(path) as connection:
        connection.execute("INSERT INTO events VALUES ('job-1', 1, 'item-exploded', 0, '{}')")
    with pytest.raises(StoreError, match=r"has an unreadable event 1 of job 'job-1' \(not a job"):
        await store.events("job-1")


async def test_a_locked_database_is_a_clear_error_after_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = await new_store(path, busy_timeout=0.05)
    blocker = raw(path)
    blocker.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreError) as locked:
        await store.append("job-1", PhaseStarted("setup"))
    assert str(locked.value) == (
        f"job database {path} cannot append to job 'job-1' (database is locked)"
    )
    # readers are not blocked by the writer (WAL)
    assert await store.job("job-1") is not None
    blocker.execute("ROLLBACK")
    blocker.close()
    await store.append("job-1", PhaseStarted("setup"))
    assert await store.events("job-1") == [PhaseStarted("setup")]


# -- concurrency and crashes -------------------------------------------------------------------


async def test_concurrent_appends_keep_the_numbers_dense_and_each_tasks_order(
    tmp_path: Path,
) -> None:
    store = await new_store(tmp_path / "jobs.sqlite3")
    keys = [f"item-{n:02d}" for n in range(25)]
    await store.append("job-1", JobPlanned(tuple(keys)))

    async def agent(key: str) -> None:
        await store.append("job-1", ItemStarted(key, 1))
        await store.append("job-1", ItemSucceeded(key, (f"c-{key}",)))
        await store.append("job-1", ItemMerged(key, f"m-{key}"))

    async with trio.open_nursery() as nursery:
        for key in keys:
            nursery.start_soon(agent, key)
    numbered = await store.events_since("job-1", 0)
    assert [seq for seq, _ in numbered] == list(range(1, 2 + 3 * len(keys)))
    for key in keys:
        mine = [type(e) for _, e in numbered if getattr(e, "item_key", None) == key]
        assert mine == [ItemStarted, ItemSucceeded, ItemMerged]
    assert {row.status for row in await store.items("job-1")} == {ItemStatus.MERGED}


async def test_a_call_cancelled_before_it_starts_writes_nothing(tmp_path: Path) -> None:
    store = await new_store(tmp_path / "jobs.sqlite3")
    with trio.CancelScope() as scope:
        scope.cancel()
        await store.append("job-1", PhaseStarted("setup"))
    assert scope.cancelled_caught
    assert await store.events("job-1") == []


CRASHING_WRITER = """
import os, signal, sys, trio
from envs.store import JobRecord, JobStatus, SqliteJobStore
from pure.job_events import ItemMerged, ItemStarted, ItemSucceeded, JobPlanned

async def main(path):
    store = SqliteJobStore(path)
    record = JobRecord(
        "crash", "w", "w.yml", "h", None, "/r", "forkmerge/crash", JobStatus.RUNNING, 1.0, 1.0
    )
    await store.create_job(record)
    keys = tuple(f"k{n}" for n in range(40))
    await store.append("crash", JobPlanned(keys))
    for key in keys:
        await store.append("crash", ItemStarted(key, 1))
        await store.append("crash", ItemSucceeded(key, ("c",)))
        await store.append("crash", ItemMerged(key, "m-" + key))
    print("appended", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint: the WAL holds the events

trio.run(main, sys.argv[1])
"""


async def test_a_killed_writer_loses_no_committed_event(tmp_path: Path) -> None:
    """Another process appends, then dies by SIGKILL without closing; everything is there."""
    path = tmp_path / "jobs.sqlite3"
    watcher = SqliteJobStore(str(path))  # a second process's view, open all along
    completed = await trio.run_process(
        [sys.executable, "-c", CRASHING_WRITER, str(path)],
        cwd=PROJECT_ROOT,
        capture_stdout=True,
        check=False,
    )
    assert completed.returncode == -signal.SIGKILL
    assert completed.stdout == b"appended\n"
    assert os.path.exists(f"{path}-wal")
    for store in (watcher, SqliteJobStore(str(path))):
        events = await store.events("crash")
        assert len(events) == 1 + 3 * 40
        assert fold(events).counts == tuple(
            40 if status is ItemStatus.MERGED else 0 for status in ItemStatus
        )
        rows = await store.items("crash")
        assert [row.merge_commit for row in rows] == [f"m-k{n}" for n in range(40)]
        store.close()


async def test_a_second_store_on_the_same_file_follows_the_first(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    writer = await new_store(path)
    reader = SqliteJobStore(str(path))
    await writer.append_many("job-1", EVERY_EVENT[:4])
    seen = await reader.events_since("job-1", 0)
    assert [event for _, event in seen] == EVERY_EVENT[:4]
    await writer.append("job-1", EVERY_EVENT[4])
    assert await reader.events_since("job-1", seen[-1][0]) == [(5, EVERY_EVENT[4])]
    writer.close()
    reader.close()


async def test_concurrent_appends_share_commits_and_each_stays_all_or_nothing(
    tmp_path: Path,
) -> None:
    store = await new_store(tmp_path / "jobs.sqlite3")
    await store.append("job-1", JobPlanned(tuple(f"k{n}" for n in range(20))))
    transactions: list[int] = []
    real = store._db.append_batches

    def counting(connection: Any, batches: Any) -> Any:
        transactions.append(len(batches))
        return real(connection, batches)

    store._db.append_batches = counting  # type: ignore[method-assign]
    failures: list[BaseException] = []

    async def start(n: int) -> None:
        try:
            # k7's batch is impossible (merged before it started): only it fails
            events = [ItemMerged("k7", "m")] if n == 7 else [ItemStarted(f"k{n}", 1)]
            await store.append_many("job-1", events)
        except InvalidTransition as error:
            failures.append(error)

    async with trio.open_nursery() as nursery:
        for n in range(20):
            nursery.start_soon(start, n)
    assert len(failures) == 1
    assert sum(transactions) == 20 and len(transactions) < 20  # grouped
    counts = await store.item_counts("job-1")
    assert (counts[ItemStatus.RUNNING], counts[ItemStatus.PENDING]) == (19, 1)


# -- deleting a job (jobs prune) ---------------------------------------------------------------


def table_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of a job, as another program reads them."""
    with raw(path) as connection:
        return {
            table: connection.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("jobs", "events", "items", "phases")
        }


def without_job(rows: dict[str, list[tuple[Any, ...]]], job_id: str) -> dict[str, list[Any]]:
    return {table: [row for row in got if row[0] != job_id] for table, got in rows.items()}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs=st.lists(valid_runs(), min_size=1, max_size=4), doomed=st.integers(0, 3))
async def test_deleting_a_job_removes_every_row_of_it_and_nothing_of_the_others(
    runs: list[list[JobEvent]], doomed: int
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "jobs.sqlite3"
        store = SqliteJobStore(str(path), synchronous="NORMAL", now=lambda: 500.0)
        checked: JobStore = store  # the protocol, checked by mypy
        # job ids that share prefixes: deletion is by the whole id, never a LIKE
        ids = ["job", "job-1", "job-10", "job_1"][: len(runs)]
        for job_id, events in zip(ids, runs, strict=False):
            await store.create_job(job_record(job_id))
            await store.append_many(job_id, events)
            rows = await store.items(job_id)
            if rows:
                await store.set_agent_branch(job_id, rows[0].item_key, "forkmerge-agents/x/y")
        victim = ids[doomed % len(ids)]
        before = table_rows(path)
        counted = await checked.job_rows(victim)
        state = fold(runs[ids.index(victim)])
        assert counted.to_json() == {
            "jobs": 1,
            "events": len(runs[ids.index(victim)]),
            "items": len(state.records),
            "phases": len(state.phases),
        }
        assert await checked.delete_job(victim) == counted
        after = table_rows(path)
        assert after == without_job(before, victim)
        assert all(row[0] != victim for rows in after.values() for row in rows)
        assert await store.job(victim) is None
        assert await store.job_rows(victim) == JobRows()
        for other, events in zip(ids, runs, strict=False):
            if other != victim:
                assert await store.events(other) == events
        # nothing is left to get in the way of a new job with the same id
        await store.create_job(job_record(victim))
        await store.append(victim, PhaseStarted("setup"))
        assert await store.events_since(victim, 0) == [(1, PhaseStarted("setup"))]
        store.close()


async def test_deleting_an_unknown_job_deletes_nothing_and_twice_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = await new_store(path)
    await store.append_many("job-1", EVERY_EVENT)
    before = table_rows(path)
    assert await store.delete_job("job-2") == JobRows()
    assert await store.delete_job("job") == JobRows()  # a prefix of job-1
    assert table_rows(path) == before
    deleted = await store.delete_job("job-1")
    assert deleted == JobRows(jobs=1, events=len(EVERY_EVENT), items=4, phases=2)
    assert deleted.total == 1 + len(EVERY_EVENT) + 4 + 2
    assert await store.delete_job("job-1") == JobRows()
    assert await store.jobs() == []
    store.close()


async def test_a_deletion_that_cannot_get_the_write_lock_deletes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = await new_store(path, busy_timeout=0.05)
    await store.append_many("job-1", EVERY_EVENT)
    before = table_rows(path)
    blocker = raw(path)
    blocker.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreError) as locked:
        await store.delete_job("job-1")
    assert (
        str(locked.value) == f"job database {path} cannot delete job 'job-1' (database is locked)"
    )
    blocker.execute("ROLLBACK")
    blocker.close()
    assert table_rows(path) == before
    store.close()


async def test_a_deletion_failing_half_way_is_rolled_back(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = await new_store(path)
    await store.append_many("job-1", EVERY_EVENT)
    before = table_rows(path)
    # A trigger that refuses the last statement (the jobs row): the events, items and
    # phases already deleted in the same transaction must come back.
    with raw(path) as connection:
        connection.execute(
            "CREATE TRIGGER keep_jobs BEFORE DELETE ON jobs "
            "BEGIN SELECT RAISE(ABORT, 'jobs are kept'); END"
        )
    with pytest.raises(StoreError, match=r"cannot delete job 'job-1' \(jobs are kept\)"):
        await store.delete_job("job-1")
    assert table_rows(path) == before
    store.close()

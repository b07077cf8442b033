"""The SQLite job store: each job's record, its append-only event log, and its items' state.

One database file per repository (``<git common dir>/forkmerge/jobs.sqlite3``
by default) holds every job of that repository: a ``jobs`` row per job, the
job's events in order (``events``, numbered by ``seq`` from 1), and tables
kept from those events in the same transaction as each insert: ``items``
(status, attempts, time spent running, last error, merge commit, ...) and
``phases``. So the tables never disagree with the log, and they answer
"how far is job X" without folding a long log.

Every event is checked against the item's (or phase's) current state with
:func:`pure.job_state.apply` before it is stored: an event that cannot follow
raises :class:`~pure.job_state.InvalidTransition` (a defect) and nothing is
written. An append returns once its transaction is committed, with
``synchronous=FULL`` by default: the event is on disk, so it survives a power
loss or an unclean reboot, not just a crash of forkmerge (``NORMAL`` keeps it
through a crash of the process only, and may lose the last commits of a
power loss, which would let a merge be recorded in git but not here).
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar, final

import attrs
import trio

from envs.job_records import ItemRow, JobRecord, JobStatus
from envs.store_pruning import JobRows, count_job_rows, delete_job_rows
from envs.store_schema import (
    StoreError,
    Synchronous,
    open_database,
    record_event,
    write_transaction,
)
from pure.job_events import JobEvent, JobPlanned, structure_event, unstructure_event
from pure.job_state import ItemRecord, ItemStatus, PhaseStatus

__all__ = [
    "DATABASE_NAME",
    "ItemRow",
    "JobRecord",
    "JobRows",
    "JobStatus",
    "SqliteJobStore",
    "StoreError",
]

DATABASE_NAME = "jobs.sqlite3"

_T = TypeVar("_T")


_JOB_COLUMNS = (
    "job_id, workflow_name, workflow_path, workflow_hash, input_hash, repository, job_branch, "
    "status, created_at, updated_at, total, options_json, runs_duration"
)
_ITEM_COLUMNS = (
    "job_id, item_key, idx, status, attempts, duration, last_error, skip_reason, agent_branch, "
    "merge_commit, updated_at"
)


@attrs.define
class _PendingAppend:
    """An append waiting for the next group commit."""

    job_id: str
    events: list[JobEvent]
    done: trio.Event = attrs.field(factory=trio.Event)
    error: Exception | None = None


@final
class _Database:
    """The connection and the SQL, used from one worker thread at a time."""

    def __init__(self, path: str, connection: sqlite3.Connection, now: Callable[[], float]):
        self.path = path
        self.now = now
        self._connection: sqlite3.Connection | None = connection
        # the trio limiter already serialises the store's calls; this lock lets close()
        # (which is synchronous) wait for a call that is running in a worker thread
        self._lock = threading.Lock()

    def call(self, what: str, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock:
            if self._connection is None:
                raise RuntimeError(f"the job store {self.path} is closed")
            try:
                return operation(self._connection)
            except sqlite3.Error as error:
                raise StoreError(self.path, f"cannot {what} ({error})") from None

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # -- jobs ---------------------------------------------------------------------------------

    def job_from_row(self, row: tuple[Any, ...]) -> JobRecord:
        job_id, status = row[0], row[7]
        try:
            known = JobStatus(status)
        except ValueError:
            raise StoreError(
                self.path, f"has job {job_id!r} with unknown status {status!r}; upgrade forkmerge"
            ) from None
        return JobRecord(
            job_id=job_id,
            workflow_name=row[1],
            workflow_path=row[2],
            workflow_hash=row[3],
            input_hash=row[4],
            repository=row[5],
            job_branch=row[6],
            status=known,
            created_at=row[8],
            updated_at=row[9],
            total=row[10],
            options=json.loads(row[11]),
            runs_duration=row[12],
        )

    def create_job(self, connection: sqlite3.Connection, record: JobRecord) -> None:
        values = attrs.astuple(record, recurse=False)
        options = json.dumps(dict(record.options), sort_keys=True, separators=(",", ":"))
        with write_transaction(connection):
            if connection.execute(
                "SELECT 1 FROM jobs WHERE job_id = ?", (record.job_id,)
            ).fetchone():
                raise StoreError(self.path, f"already has a job {record.job_id!r}")
            connection.execute(
                f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({', '.join('?' * 13)})",
                (*values[:7], str(record.status), *values[8:11], options, record.runs_duration),
            )

    def update_job(
        self,
        connection: sqlite3.Connection,
        job_id: str,
        status: JobStatus | None,
        total: int | None,
        add_duration: float,
        input_hash: str | None,
    ) -> None:
        with write_transaction(connection):
            updated = connection.execute(
                "UPDATE jobs SET status = coalesce(?, status), total = coalesce(?, total), "
                "input_hash = coalesce(?, input_hash), runs_duration = runs_duration + ?, "
                "updated_at = ? WHERE job_id = ?",
                (
                    None if status is None else str(status),
                    total,
                    input_hash,
                    add_duration,
                    self.now(),
                    job_id,
                ),
            )
            if updated.rowcount == 0:
                raise StoreError(self.path, f"has no job {job_id!r}")

    # -- events -------------------------------------------------------------------------------

    def append_batches(
        self, connection: sqlite3.Connection, batches: list[tuple[str, list[JobEvent]]]
    ) -> list[Exception | None]:
        """Commit several appends in one transaction (one fsync), each all-or-nothing.

        A batch that fails (an impossible event, an unknown job) is rolled back
        to its savepoint and its error returned in its place; the others land.
        """
        outcomes: list[Exception | None] = []
        with write_transaction(connection):
            for job_id, events in batches:
                connection.execute("SAVEPOINT batch")
                try:
                    self._append(connection, job_id, events)
                except sqlite3.Error as error:
                    connection.execute("ROLLBACK TO batch")
                    outcomes.append(StoreError(self.path, f"cannot append ({error})"))
                except Exception as error:  # InvalidTransition, StoreError: this batch's own
                    connection.execute("ROLLBACK TO batch")
                    outcomes.append(error)
                else:
                    outcomes.append(None)
                connection.execute("RELEASE batch")
        return outcomes

    def _append(self, connection: sqlite3.Connection, job_id: str, events: list[JobEvent]) -> None:
        now = self.now()
        row = connection.execute("SELECT planned FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise StoreError(self.path, f"has no job {job_id!r} to append events to")
        planned = bool(row[0])
        (seq,) = connection.execute(
            "SELECT coalesce(max(seq), 0) FROM events WHERE job_id = ?", (job_id,)
        ).fetchone()
        for event in events:
            seq += 1
            at = now if event.at is None else event.at
            data = unstructure_event(event)
            kind = data.pop("kind")
            connection.execute(
                "INSERT INTO events (job_id, seq, kind, at, payload) VALUES (?, ?, ?, ?, ?)",
                (job_id, seq, kind, at, json.dumps(data, separators=(",", ":"))),
            )
            record_event(connection, job_id, event, at, planned)
            planned = planned or isinstance(event, JobPlanned)
        connection.execute("UPDATE jobs SET updated_at = ? WHERE job_id = ?", (now, job_id))

    def events_since(
        self, connection: sqlite3.Connection, job_id: str, after: int
    ) -> list[tuple[int, JobEvent]]:
        rows = connection.execute(
            "SELECT seq, kind, payload FROM events WHERE job_id = ? AND seq > ? ORDER BY seq",
            (job_id, after),
        ).fetchall()
        read: list[tuple[int, JobEvent]] = []
        for seq, kind, payload in rows:
            try:
                read.append((seq, structure_event({**json.loads(payload), "kind": kind})))
            except ValueError as error:
                raise StoreError(
                    self.path, f"has an unreadable event {seq} of job {job_id!r} ({error})"
                ) from None
        return read

    def set_agent_branch(
        self, connection: sqlite3.Connection, job_id: str, item_key: str, branch: str
    ) -> None:
        with write_transaction(connection):
            updated = connection.execute(
                "UPDATE items SET agent_branch = ?, updated_at = ? "
                "WHERE job_id = ? AND item_key = ?",
                (branch, self.now(), job_id, item_key),
            )
            if updated.rowcount == 0:
                raise StoreError(self.path, f"has no item {item_key!r} in job {job_id!r}")


_STATUS_OF: dict[str, ItemStatus] = {str(status): status for status in ItemStatus}


def _item_from_row(row: tuple[Any, ...]) -> ItemRow:
    # A dict lookup, not ItemStatus(...): a resume reads every item of the job.
    return ItemRow(row[0], row[1], row[2], _STATUS_OF[row[3]], *row[4:])


@final
class SqliteJobStore:
    """A :class:`~envs.protocols.JobStore` in a SQLite file, shared by every job of a repository.

    Think of it as a ledger kept in the repository's git directory: each job
    has a page (:class:`JobRecord`), a list of numbered entries (its events,
    never changed once written) and a summary table of its items kept from
    the entries. Several processes may open the same file (WAL mode: readers
    never wait for the writer; writers wait up to ``busy_timeout`` seconds
    for each other).

    Opening (the constructor) reads, creates or migrates the file at once,
    on the calling thread; a file it cannot use is a :class:`StoreError`
    and is left untouched. Every other call runs its SQL on a worker thread
    (``trio.to_thread.run_sync``), one call at a time; each write is one
    short transaction, committed before the call returns.

    Cancellation: a call cancelled while it waits for its turn does nothing;
    once its SQL has started it runs to the end (the write is committed) and
    the cancellation is delivered at the caller's next checkpoint.

    Example::

        store = SqliteJobStore.for_repository(repo.git_common_dir)
        await store.create_job(record)
        await store.append(record.job_id, JobPlanned(("a", "b")))
        rows = await store.items(record.job_id)
        store.close()
    """

    def __init__(
        self,
        path: str,
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout: float = 10.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._db = _Database(
            path, open_database(path, synchronous=synchronous, busy_timeout=busy_timeout), now
        )
        self._limiter = trio.CapacityLimiter(1)
        self._queue: list[_PendingAppend] = []
        self._flushing = False

    @classmethod
    def for_repository(
        cls,
        git_common_dir: str,
        *,
        state_dir: str | None = None,
        synchronous: Synchronous = "FULL",
        busy_timeout: float = 10.0,
        now: Callable[[], float] = time.time,
    ) -> SqliteJobStore:
        """The store of a repository: ``<state_dir or <git_common_dir>/forkmerge>/jobs.sqlite3``."""
        directory = (
            state_dir if state_dir is not None else os.path.join(git_common_dir, "forkmerge")
        )
        return cls(
            os.path.join(directory, DATABASE_NAME),
            synchronous=synchronous,
            busy_timeout=busy_timeout,
            now=now,
        )

    async def _run(self, what: str, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        call = functools.partial(self._db.call, what, operation)
        return await trio.to_thread.run_sync(call, limiter=self._limiter)

    # -- jobs ---------------------------------------------------------------------------------

    async def create_job(self, record: JobRecord) -> None:
        """Add a job; a job id already in the database is a :class:`StoreError`."""
        operation = functools.partial(self._db.create_job, record=record)
        await self._run(f"create job {record.job_id!r}", operation)

    async def job(self, job_id: str) -> JobRecord | None:
        """The record of ``job_id``, or ``None`` if there is no such job."""

        def read(connection: sqlite3.Connection) -> tuple[Any, ...] | None:
            query = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ?"
            row: tuple[Any, ...] | None = connection.execute(query, (job_id,)).fetchone()
            return row

        row = await self._run(f"read job {job_id!r}", read)
        return None if row is None else self._db.job_from_row(row)

    async def jobs(self) -> list[JobRecord]:
        """Every job, the newest first."""

        def read(connection: sqlite3.Connection) -> list[tuple[Any, ...]]:
            query = f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY created_at DESC, rowid DESC"
            return connection.execute(query).fetchall()

        return [self._db.job_from_row(row) for row in await self._run("list jobs", read)]

    async def update_job(
        self,
        job_id: str,
        *,
        status: JobStatus | None = None,
        total: int | None = None,
        add_duration: float = 0.0,
        input_hash: str | None = None,
    ) -> None:
        """Change what is given of a job's status, total and input hash; add to its duration.

        ``add_duration`` (seconds, non-negative) is added to ``runs_duration``
        (a run reports its own time when it ends). An unknown job is a
        :class:`StoreError`.
        """
        if add_duration < 0:
            raise ValueError(f"`add_duration` must be non-negative, got {add_duration}")
        if total is not None and total < 0:
            raise ValueError(f"`total` must be non-negative, got {total}")
        operation = functools.partial(
            self._db.update_job,
            job_id=job_id,
            status=status,
            total=total,
            add_duration=add_duration,
            input_hash=input_hash,
        )
        await self._run(f"update job {job_id!r}", operation)

    # -- events -------------------------------------------------------------------------------

    async def append(self, job_id: str, event: JobEvent) -> None:
        """Durably record ``event`` as the job's next event; returns once it is committed.

        The job's item or phase row changes with it, in the same transaction.
        An event that cannot follow the job's state raises
        :class:`~pure.job_state.InvalidTransition` and nothing is stored; a
        job not created first is a :class:`StoreError`.
        """
        await self.append_many(job_id, (event,))

    async def append_many(self, job_id: str, events: Iterable[JobEvent]) -> None:
        """Record ``events`` in order in one transaction: all of them, or none.

        Group commit: appends that arrive while a commit is running wait and
        are committed together in the next transaction (one fsync for all;
        each still all-or-nothing), so parallel agents share the cost of
        durability. Returns once this append is committed. Cancellation: a call
        cancelled before it starts writes nothing; once queued, its events are
        committed with the next group even if its caller is cancelled meanwhile.
        """
        await trio.lowlevel.checkpoint_if_cancelled()  # cancelled before it starts: nothing
        pending = _PendingAppend(job_id, list(events))
        self._queue.append(pending)
        if not self._flushing:
            self._flushing = True
            try:
                # Shielded: the appends queued behind this one depend on it.
                with trio.CancelScope(shield=True):
                    while self._queue:
                        batch, self._queue = self._queue, []
                        await self._commit(batch)
            finally:
                self._flushing = False
        await pending.done.wait()
        if pending.error is not None:
            raise pending.error

    async def _commit(self, batch: list[_PendingAppend]) -> None:
        batches = [(pending.job_id, pending.events) for pending in batch]
        operation = functools.partial(self._db.append_batches, batches=batches)
        try:
            outcomes = await self._run(f"append to job {batch[0].job_id!r}", operation)
        except Exception as error:  # the transaction itself failed: every append fails
            outcomes = [error] * len(batch)
        for pending, outcome in zip(batch, outcomes, strict=True):
            pending.error = outcome
            pending.done.set()

    async def events(self, job_id: str) -> list[JobEvent]:
        """Every event of ``job_id`` in the order appended (none for an unknown job)."""
        return [event for _, event in await self.events_since(job_id, 0)]

    async def events_since(self, job_id: str, seq: int) -> list[tuple[int, JobEvent]]:
        """The events numbered after ``seq``, with their numbers (``events --follow``).

        Numbers start at 1 and have no gaps; pass the last number seen to
        get only newer events.
        """
        operation = functools.partial(self._db.events_since, job_id=job_id, after=seq)
        return await self._run(f"read the events of job {job_id!r}", operation)

    # -- items --------------------------------------------------------------------------------

    async def items(
        self, job_id: str, *, statuses: Iterable[ItemStatus] | None = None
    ) -> list[ItemRow]:
        """The job's items in plan order (none before it is planned); only those in
        ``statuses`` if given (``{ItemStatus.FAILED}``: the dead-letter queue)."""
        wanted = None if statuses is None else sorted(str(status) for status in set(statuses))

        def read(connection: sqlite3.Connection) -> list[tuple[Any, ...]]:
            query = f"SELECT {_ITEM_COLUMNS} FROM items WHERE job_id = ?"
            if wanted is None:
                return connection.execute(f"{query} ORDER BY idx", (job_id,)).fetchall()
            marks = ", ".join("?" * len(wanted))
            query = f"{query} AND status IN ({marks}) ORDER BY idx"
            return connection.execute(query, (job_id, *wanted)).fetchall()

        return [_item_from_row(row) for row in await self._run(f"read job {job_id!r}", read)]

    async def item_counts(self, job_id: str) -> dict[ItemStatus, int]:
        """How many of the job's items are in each status (every status present, maybe 0)."""

        def read(connection: sqlite3.Connection) -> list[tuple[str, int]]:
            query = "SELECT status, count(*) FROM items WHERE job_id = ? GROUP BY status"
            return connection.execute(query, (job_id,)).fetchall()

        rows = await self._run(f"count the items of job {job_id!r}", read)
        counts = dict.fromkeys(ItemStatus, 0)
        counts.update((ItemStatus(status), count) for status, count in rows)
        return counts

    async def phases(self, job_id: str) -> dict[str, PhaseStatus]:
        """The status of each phase the job has started (``{"setup": finished, ...}``)."""

        def read(connection: sqlite3.Connection) -> list[tuple[str, str]]:
            query = "SELECT phase, status FROM phases WHERE job_id = ? ORDER BY phase"
            return connection.execute(query, (job_id,)).fetchall()

        rows = await self._run(f"read the phases of job {job_id!r}", read)
        return {phase: PhaseStatus(status) for phase, status in rows}

    async def item_records(self, job_id: str) -> list[ItemRecord]:
        """Every item's state (without its latest commits and output), in plan order."""

        def read(connection: sqlite3.Connection) -> list[ItemRecord]:
            query = (
                "SELECT item_key, status, attempts, merge_commit, last_error, skip_reason "
                "FROM items WHERE job_id = ? ORDER BY idx"
            )
            status_of = _STATUS_OF
            return [
                ItemRecord(key, status_of[status], attempts, (), None, merged, error, skipped)
                for key, status, attempts, merged, error, skipped in connection.execute(
                    query, (job_id,)
                )
            ]

        return await self._run(f"read the items of job {job_id!r}", read)

    async def phase_outputs(self, job_id: str, phase: str) -> Mapping[str, Any] | None:
        """The outputs of ``phase``'s last successful finish (``None``: it never finished)."""

        def read(connection: sqlite3.Connection) -> list[tuple[str]]:
            query = (
                "SELECT payload FROM events WHERE job_id = ? AND kind = 'phase-finished' "
                "ORDER BY seq DESC"
            )
            return connection.execute(query, (job_id,)).fetchall()

        for (payload,) in await self._run(f"read the phases of job {job_id!r}", read):
            data = json.loads(payload)
            if data.get("phase") == phase and data.get("success", True):
                outputs: Mapping[str, Any] = data.get("outputs", {})
                return outputs
        return None

    async def set_agent_branch(self, job_id: str, item_key: str, branch: str) -> None:
        """Record the branch the item's agent works on (the events do not carry it)."""
        operation = functools.partial(
            self._db.set_agent_branch, job_id=job_id, item_key=item_key, branch=branch
        )
        await self._run(f"update item {item_key!r} of job {job_id!r}", operation)

    # -- pruning ------------------------------------------------------------------------------

    async def job_rows(self, job_id: str) -> JobRows:
        """How many rows of ``job_id`` each table holds (all 0 for an unknown job)."""
        operation = functools.partial(count_job_rows, job_id=job_id)
        return await self._run(f"count the rows of job {job_id!r}", operation)

    async def delete_job(self, job_id: str) -> JobRows:
        """Delete every row of ``job_id`` (record, events, items, phases) in one transaction.

        Returns the rows deleted (all 0 for an unknown job: deleting twice is
        fine). On failure (a :class:`StoreError`) nothing is deleted. Other
        jobs' rows are never touched. Cancellation: as for every call, once
        the transaction has started it is committed.
        """
        operation = functools.partial(delete_job_rows, job_id=job_id)
        return await self._run(f"delete job {job_id!r}", operation)

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database (waiting for a call in progress); later calls are a RuntimeError.

        Closing twice is fine.
        """
        self._db.close()

    def __enter__(self) -> SqliteJobStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

"""Recording doubles for tests: the shared call recorder, event sink, job store and wall clock.

Every mock service appends each call it receives to one :class:`CallRecorder`,
so a test can assert what was called, in what order, with which arguments,
across services.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, final

import attrs
import trio

from envs.job_records import ItemRow, JobRecord, JobStatus
from envs.store_pruning import JobRows
from pure.job_events import JobPlanned, PhaseFinished
from pure.job_state import ItemRecord, ItemStatus, JobState, PhaseStatus, apply

__all__ = ["Call", "CallRecorder", "MemoryJobStore", "MockWallClock", "RecordingEventSink"]

DEFAULT_WALL_TIME = 1_700_000_000.0
"""Where a :class:`MockWallClock` starts: a fixed instant (2023-11-14), so records are stable."""


class Call(NamedTuple):
    """One call a mock service received: ``("worktrees", "commit_changes", (wt, "msg"))``.

    ``args`` holds every parameter of the protocol method in declaration
    order, keyword-only ones and defaults included, so a call compares equal
    to a plain tuple however the caller spelled it.
    """

    service: str
    method: str
    args: tuple[Any, ...]


@final
class CallRecorder:
    """An ordered log of every call made to the mock services that share it.

    A call is recorded when it starts, before it waits for anything, so the
    order is the order in which the callers asked.

    Example::

        recorder.of("worktrees", "merger") == [
            ("worktrees", "create_agent_worktree", ("agent-0000-x", "forkmerge/job-test")),
            ("merger", "merge", ("forkmerge-agents/job-test/agent-0000-x", ...)),
        ]
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def record(self, service: str, method: str, *args: Any) -> None:
        """Append one call."""
        self.calls.append(Call(service, method, args))

    def of(self, *services: str) -> list[Call]:
        """The calls to the named services (``"worktrees"``, ``"merger"``, ``"executor"``,
        ``"store"``, ``"events"``, ``"clock"``), in order."""
        return [call for call in self.calls if call.service in services]

    def methods(self, *services: str) -> list[str]:
        """``"service.method"`` of each call (to the named services, or all), in order."""
        return [
            f"{call.service}.{call.method}"
            for call in self.calls
            if not services or call.service in services
        ]

    def clear(self) -> None:
        """Forget every call recorded so far (e.g. after a test's own setup)."""
        self.calls.clear()


@final
class RecordingEventSink:
    """An :class:`~envs.protocols.EventSink` that keeps every event, in order.

    Events are deep-copied when emitted, so a caller mutating its dict later
    cannot rewrite history.
    """

    def __init__(self, recorder: CallRecorder | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self._recorder = recorder

    def emit(self, event: Mapping[str, Any]) -> None:
        kept = copy.deepcopy(dict(event))
        if self._recorder is not None:
            self._recorder.record("events", "emit", kept)
        self.events.append(kept)

    def where(self, **fields: Any) -> list[dict[str, Any]]:
        """The events whose fields include all of ``fields`` (``where(type="item_failed")``)."""
        return [
            event
            for event in self.events
            if all(key in event and event[key] == value for key, value in fields.items())
        ]


@final
class MemoryJobStore:
    """A :class:`~envs.protocols.JobStore` in memory, with the SQLite store's semantics.

    Every event is checked with :func:`pure.job_state.apply` before it is
    kept (an impossible one raises ``InvalidTransition``), items come from
    the fold of the events, and appending to a job never created is an
    error. Calls are checkpoints (they may be cancelled before they act);
    events are deep-copied on the way in and out, as a real store
    serializes them. ``logs`` and ``records`` are there for tests to read.
    """

    def __init__(self, recorder: CallRecorder | None = None) -> None:
        self.records: dict[str, JobRecord] = {}
        self.logs: dict[str, list[Any]] = {}
        self._states: dict[str, JobState] = {}
        self._recorder = recorder

    async def _enter(self, method: str, *args: Any) -> None:
        if self._recorder is not None:
            self._recorder.record("store", method, *args)
        await trio.lowlevel.checkpoint()

    def _known(self, job_id: str) -> JobRecord:
        record = self.records.get(job_id)
        if record is None:
            raise ValueError(f"no job {job_id!r} in the store")
        return record

    async def create_job(self, record: JobRecord) -> None:
        await self._enter("create_job", record)
        if record.job_id in self.records:
            raise ValueError(f"job {record.job_id!r} exists already")
        self.records[record.job_id] = record
        self.logs[record.job_id] = []
        self._states[record.job_id] = JobState()

    async def job(self, job_id: str) -> JobRecord | None:
        await self._enter("job", job_id)
        return self.records.get(job_id)

    async def jobs(self) -> list[JobRecord]:
        await self._enter("jobs")
        return sorted(self.records.values(), key=lambda record: -record.created_at)

    async def update_job(
        self,
        job_id: str,
        *,
        status: JobStatus | None = None,
        total: int | None = None,
        add_duration: float = 0.0,
        input_hash: str | None = None,
    ) -> None:
        await self._enter("update_job", job_id, status, total, add_duration, input_hash)
        record = self._known(job_id)
        self.records[job_id] = attrs.evolve(
            record,
            status=record.status if status is None else status,
            total=record.total if total is None else total,
            input_hash=record.input_hash if input_hash is None else input_hash,
            runs_duration=record.runs_duration + add_duration,
        )

    async def append(self, job_id: str, event: Any) -> None:
        await self._enter("append", job_id, event)
        record = self._known(job_id)
        state = apply(self._states[job_id], event)
        self._states[job_id] = state
        self.logs[job_id].append(copy.deepcopy(event))
        if isinstance(event, JobPlanned):
            self.records[job_id] = attrs.evolve(record, total=len(event.item_keys))

    async def append_many(self, job_id: str, events: Iterable[Any]) -> None:
        batch = list(events)
        await self._enter("append_many", job_id, batch)
        record = self._known(job_id)
        state = self._states[job_id]
        for event in batch:
            state = apply(state, event)
        self._states[job_id] = state
        self.logs[job_id].extend(copy.deepcopy(batch))
        planned = [event for event in batch if isinstance(event, JobPlanned)]
        if planned:
            self.records[job_id] = attrs.evolve(record, total=len(planned[-1].item_keys))

    async def events(self, job_id: str) -> list[Any]:
        await self._enter("events", job_id)
        return copy.deepcopy(self.logs.get(job_id, []))

    async def events_since(self, job_id: str, seq: int) -> list[tuple[int, Any]]:
        await self._enter("events_since", job_id, seq)
        log = self.logs.get(job_id, [])
        return [(number, copy.deepcopy(event)) for number, event in enumerate(log, 1)][seq:]

    async def items(
        self, job_id: str, *, statuses: Iterable[ItemStatus] | None = None
    ) -> list[ItemRow]:
        await self._enter("items", job_id)
        wanted = None if statuses is None else set(statuses)
        state = self._states.get(job_id, JobState())
        return [
            ItemRow(
                job_id,
                record.key,
                index,
                record.status,
                record.attempts,
                0.0,
                record.error,
                record.skip_reason,
                None,
                record.merge_commit,
                0.0,
            )
            for index, record in enumerate(state.records)
            if wanted is None or record.status in wanted
        ]

    async def item_records(self, job_id: str) -> list[ItemRecord]:
        await self._enter("item_records", job_id)
        return [
            attrs.evolve(record, commits=(), output=None)
            for record in self._states.get(job_id, JobState()).records
        ]

    async def phases(self, job_id: str) -> dict[str, PhaseStatus]:
        await self._enter("phases", job_id)
        return dict(self._states.get(job_id, JobState()).phases)

    async def phase_outputs(self, job_id: str, phase: str) -> Mapping[str, Any] | None:
        await self._enter("phase_outputs", job_id, phase)
        for event in reversed(self.logs.get(job_id, [])):
            if isinstance(event, PhaseFinished) and event.phase == phase and event.success:
                return dict(event.outputs)
        return None

    async def item_counts(self, job_id: str) -> dict[ItemStatus, int]:
        await self._enter("item_counts", job_id)
        state = self._states.get(job_id, JobState())
        return dict(zip(tuple(ItemStatus), state.counts, strict=True))

    def _rows(self, job_id: str) -> JobRows:
        if job_id not in self.records:
            return JobRows()
        state = self._states[job_id]
        return JobRows(1, len(self.logs[job_id]), len(state.records), len(state.phases))

    async def job_rows(self, job_id: str) -> JobRows:
        await self._enter("job_rows", job_id)
        return self._rows(job_id)

    async def delete_job(self, job_id: str) -> JobRows:
        """Forget the job's record, events and state; what the SQLite store would have deleted."""
        await self._enter("delete_job", job_id)
        rows = self._rows(job_id)
        self.records.pop(job_id, None)
        self.logs.pop(job_id, None)
        self._states.pop(job_id, None)
        return rows


@final
class MockWallClock:
    """A :class:`~envs.protocols.Clock` for tests: a fixed instant that moves with trio's clock.

    ``now()`` is ``start`` plus trio's current time (on a ``MockClock`` that is
    virtual time, starting at 0), so durations computed from wall times match
    the virtual ones. With ``follow_trio=False`` it stands still until
    :meth:`set` or :meth:`advance` moves it. Outside a trio run it reads as if
    trio's clock were at 0.
    """

    def __init__(
        self,
        start: float = DEFAULT_WALL_TIME,
        *,
        follow_trio: bool = True,
        recorder: CallRecorder | None = None,
    ) -> None:
        self._offset = start
        self.follow_trio = follow_trio
        self._recorder = recorder

    def now(self) -> float:
        if self._recorder is not None:
            self._recorder.record("clock", "now")
        return self._offset + self._trio_time()

    def set(self, value: float) -> None:
        """Make ``now()`` return ``value`` at this instant (then move on, if following trio)."""
        self._offset = value - self._trio_time()

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (which must be non-negative)."""
        if seconds < 0:
            raise ValueError(f"`seconds` must be non-negative, got {seconds}")
        self._offset += seconds

    def _trio_time(self) -> float:
        if not self.follow_trio:
            return 0.0
        try:
            return trio.current_time()
        except RuntimeError:  # not inside trio.run
            return 0.0

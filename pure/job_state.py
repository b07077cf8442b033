"""A job's state as a pure fold of its events: per-item status and attempts, phases done.

Every change of a job is an event appended to the job store; the state is
never stored, only recomputed: ``fold(events)`` on resume, ``apply(state,
event)`` as the job runs. Events carry their time (``at``, seconds since the
epoch) as data; nothing here reads a clock.

An item moves only along these transitions; any other event is an
:class:`InvalidTransition` (raised, never silently repaired)::

    pending             --started-->   running
    running             --started-->   running     (a restart after a crash)
    running             --succeeded--> succeeded
    succeeded           --merged-->    merged
    running, succeeded  --failed-->    failed      (the attempt, or its merge)
    running, failed     --retried-->   pending
    pending, running, failed --skipped--> skipped

``ItemStarted.attempt`` must be the item's attempts so far plus one.
``JobPlanned`` comes once and introduces the items (in plan order); item
events before it, or for a key it did not list, are invalid. Phase events
may come before it (setup runs before the items are known): a phase may
start again, after a failure or after it finished (a dead-letter retry runs
reduce again), and finishes only while running. The events are in
:mod:`pure.job_events` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import attrs
from returns.result import Failure, Result, Success

from pure.job_events import (
    ItemEvent,
    ItemFailed,
    ItemMerged,
    ItemRetried,
    ItemSkipped,
    ItemStarted,
    ItemSucceeded,
    JobEvent,
    JobPlanned,
    PhaseFinished,
    PhaseStarted,
    configure_event_converter,
    structure_event,
    unstructure_event,
)
from pure.persistent_vector import PersistentVector

__all__ = [
    "InvalidTransition",
    "ItemFailed",
    "ItemMerged",
    "ItemRecord",
    "ItemRetried",
    "ItemSkipped",
    "ItemStarted",
    "ItemStatus",
    "ItemSucceeded",
    "JobEvent",
    "JobPlanned",
    "JobState",
    "PhaseFinished",
    "PhaseStarted",
    "PhaseStatus",
    "Progress",
    "apply",
    "awaiting_merge",
    "configure_event_converter",
    "fold",
    "progress",
    "record_of",
    "remaining",
    "state_of",
    "structure_event",
    "try_apply",
    "try_fold",
    "unstructure_event",
]


class ItemStatus(StrEnum):
    """Where one work item is."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    MERGED = "merged"
    FAILED = "failed"
    SKIPPED = "skipped"


class PhaseStatus(StrEnum):
    """Where one phase (``setup``, ``map``, ``reduce``, ``merge``) is."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


# -- state -------------------------------------------------------------------------------------


@attrs.frozen
class ItemRecord:
    """One item's status and what its events told: attempts, commits, errors.

    ``error`` is the latest failure's summary (cleared by a success);
    ``commits`` and ``output`` belong to the latest attempt.
    """

    key: str
    status: ItemStatus = ItemStatus.PENDING
    attempts: int = 0
    commits: tuple[str, ...] = ()
    output: str | None = None
    merge_commit: str | None = None
    error: str | None = None
    skip_reason: str | None = None


_STATUSES = tuple(ItemStatus)
_NO_COUNTS = (0,) * len(_STATUSES)
_NO_RECORDS: PersistentVector[ItemRecord] = PersistentVector.of(())
_NO_PHASES: Mapping[str, PhaseStatus] = MappingProxyType({})
_NO_POSITIONS: Mapping[str, int] = MappingProxyType({})


@attrs.frozen
class JobState:
    """The state after some events; ``JobState()`` is the state before any.

    ``records`` are in plan order; ``counts`` holds how many items are in
    each status (in :class:`ItemStatus` order) so that :func:`progress` is
    O(1); ``positions`` maps a key to its index (derived from
    ``item_keys``, shared by every later state).
    """

    item_keys: tuple[str, ...] = ()
    records: PersistentVector[ItemRecord] = attrs.field(factory=lambda: _NO_RECORDS)
    counts: tuple[int, ...] = _NO_COUNTS
    phases: Mapping[str, PhaseStatus] = attrs.field(factory=lambda: _NO_PHASES)
    planned: bool = False
    positions: Mapping[str, int] = attrs.field(factory=lambda: _NO_POSITIONS, eq=False, repr=False)

    @property
    def phases_done(self) -> frozenset[str]:
        """The phases that finished successfully."""
        return frozenset(name for name, s in self.phases.items() if s is PhaseStatus.FINISHED)


@attrs.frozen
class Progress:
    """How far the items are: ``total == done + failed + skipped + running + remaining``.

    ``done`` counts succeeded and merged items, ``remaining`` the pending
    ones; ``percent`` is the share of items finished one way or another.
    """

    total: int
    done: int
    failed: int
    skipped: int
    running: int
    remaining: int
    percent: float


@attrs.frozen
class InvalidTransition(Exception):
    """An event that cannot follow the state it is applied to.

    ``position`` is the event's index in the sequence given to
    :func:`fold` (``None`` for :func:`apply`).
    """

    event: Any
    message: str
    position: int | None = None

    def __str__(self) -> str:
        where = "" if self.position is None else f" (event {self.position})"
        return f"{self.message}{where}"


# -- transitions -------------------------------------------------------------------------------

_ALLOWED: dict[type[Any], frozenset[ItemStatus]] = {
    ItemStarted: frozenset({ItemStatus.PENDING, ItemStatus.RUNNING}),
    ItemSucceeded: frozenset({ItemStatus.RUNNING}),
    ItemMerged: frozenset({ItemStatus.SUCCEEDED}),
    ItemFailed: frozenset({ItemStatus.RUNNING, ItemStatus.SUCCEEDED}),
    ItemRetried: frozenset({ItemStatus.RUNNING, ItemStatus.FAILED}),
    ItemSkipped: frozenset({ItemStatus.PENDING, ItemStatus.RUNNING, ItemStatus.FAILED}),
}


def _next_record(record: ItemRecord, event: ItemEvent) -> ItemRecord:
    """The record after ``event``, or :class:`InvalidTransition`."""
    allowed = _ALLOWED[type(event)]
    if record.status not in allowed:
        needed = " or ".join(s.value for s in _STATUSES if s in allowed)
        raise InvalidTransition(
            event,
            f"{event.KIND} for item {record.key!r} needs it {needed}, "
            f"but it is {record.status.value}",
        )
    key, attempts = record.key, record.attempts
    # records are built directly (not attrs.evolve): this runs once per event of a fold
    if isinstance(event, ItemStarted):
        if event.attempt != attempts + 1:
            raise InvalidTransition(
                event,
                f"item-started for item {key!r} says attempt {event.attempt}, "
                f"but it would be attempt {attempts + 1}",
            )
        return ItemRecord(key, ItemStatus.RUNNING, event.attempt, error=record.error)
    if isinstance(event, ItemSucceeded):
        return ItemRecord(key, ItemStatus.SUCCEEDED, attempts, event.commits, event.output)
    if isinstance(event, ItemMerged):
        return ItemRecord(
            key, ItemStatus.MERGED, attempts, record.commits, record.output, event.commit
        )
    if isinstance(event, ItemFailed):
        return ItemRecord(
            key,
            ItemStatus.FAILED,
            attempts,
            record.commits,
            record.output,
            error=event.error_summary,
        )
    if isinstance(event, ItemRetried):
        return ItemRecord(key, ItemStatus.PENDING, attempts, error=record.error)
    return ItemRecord(
        key,
        ItemStatus.SKIPPED,
        attempts,
        record.commits,
        record.output,
        error=record.error,
        skip_reason=event.reason,
    )


def _next_phase(
    phases: Mapping[str, PhaseStatus], event: PhaseStarted | PhaseFinished
) -> PhaseStatus:
    current = phases.get(event.phase)
    name = repr(event.phase)
    if isinstance(event, PhaseStarted):
        # A finished phase may run again (a dead-letter retry runs reduce again).
        return PhaseStatus.RUNNING
    if current is not PhaseStatus.RUNNING:
        shown = current.value if current is not None else "not started"
        raise InvalidTransition(event, f"phase-finished for phase {name}, which is {shown}")
    return PhaseStatus.FINISHED if event.success else PhaseStatus.FAILED


def _plan(planned: bool, known: int, event: JobPlanned) -> dict[str, int]:
    if planned:
        raise InvalidTransition(event, f"job-planned again: the job already has {known} items")
    positions: dict[str, int] = {}
    for index, key in enumerate(event.item_keys):
        if key in positions:
            raise InvalidTransition(event, f"job-planned lists item {key!r} twice")
        positions[key] = index
    return positions


def _position(state_planned: bool, positions: Mapping[str, int], event: ItemEvent) -> int:
    if not state_planned:
        raise InvalidTransition(
            event, f"{event.KIND} for item {event.item_key!r} before the job was planned"
        )
    position = positions.get(event.item_key)
    if position is None:
        raise InvalidTransition(
            event,
            f"{event.KIND} for unknown item {event.item_key!r} "
            f"(the job has {len(positions)} items)",
        )
    return position


def _recount(counts: tuple[int, ...], old: ItemStatus, new: ItemStatus) -> tuple[int, ...]:
    changed = list(counts)
    changed[_STATUSES.index(old)] -= 1
    changed[_STATUSES.index(new)] += 1
    return tuple(changed)


def apply(state: JobState, event: JobEvent) -> JobState:
    """The state after ``event``; raises :class:`InvalidTransition` if it cannot follow.

    O(log n) in the number of items: the new state shares all but one path
    of the record table with ``state``, which stays valid.
    """
    if isinstance(event, JobPlanned):
        positions = _plan(state.planned, len(state.item_keys), event)
        return attrs.evolve(
            state,
            item_keys=event.item_keys,
            records=PersistentVector.of(ItemRecord(key) for key in event.item_keys),
            counts=(len(event.item_keys), *_NO_COUNTS[1:]),
            planned=True,
            positions=MappingProxyType(positions),
        )
    if isinstance(event, PhaseStarted | PhaseFinished):
        phases = {**state.phases, event.phase: _next_phase(state.phases, event)}
        return attrs.evolve(state, phases=MappingProxyType(phases))
    position = _position(state.planned, state.positions, event)
    old = state.records[position]
    new = _next_record(old, event)
    return attrs.evolve(
        state,
        records=state.records.set(position, new),
        counts=_recount(state.counts, old.status, new.status),
    )


def try_apply(state: JobState, event: JobEvent) -> Result[JobState, InvalidTransition]:
    """:func:`apply`, with an :class:`InvalidTransition` as a ``Failure``."""
    try:
        return Success(apply(state, event))
    except InvalidTransition as error:
        return Failure(error)


def fold(events: Iterable[JobEvent], state: JobState | None = None) -> JobState:
    """The state after ``events`` (from ``state``, by default the empty one).

    Equal to applying them one by one, but in one pass over a private
    mutable table, frozen at the end: O(events + items). Raises
    :class:`InvalidTransition` with the failing event's ``position``.
    """
    start = JobState() if state is None else state
    item_keys, positions, planned = start.item_keys, start.positions, start.planned
    records = list(start.records)
    counts = list(start.counts)
    phases = dict(start.phases)
    for index, event in enumerate(events):
        try:
            if isinstance(event, JobPlanned):
                positions = MappingProxyType(_plan(planned, len(item_keys), event))
                item_keys, planned = event.item_keys, True
                records = [ItemRecord(key) for key in item_keys]
                counts = [len(item_keys), *_NO_COUNTS[1:]]
            elif isinstance(event, PhaseStarted | PhaseFinished):
                phases[event.phase] = _next_phase(phases, event)
            else:
                position = _position(planned, positions, event)
                old = records[position]
                new = records[position] = _next_record(old, event)
                counts[_STATUSES.index(old.status)] -= 1
                counts[_STATUSES.index(new.status)] += 1
        except InvalidTransition as error:
            raise attrs.evolve(error, position=index) from None
    return JobState(
        item_keys,
        PersistentVector.of(records),
        tuple(counts),
        MappingProxyType(phases),
        planned,
        positions,
    )


def state_of(
    records: Sequence[ItemRecord], phases: Mapping[str, PhaseStatus], *, planned: bool
) -> JobState:
    """The state whose items are ``records`` (in plan order) and whose phases are ``phases``.

    What a store that keeps each item's record (and each phase's status)
    beside the log can give back without folding every event: equal to the
    fold of the events that led to them. ``planned`` says whether the job's
    items were planned (a planned job may have no items).
    """
    keys = tuple(record.key for record in records)
    counts = [0] * len(_STATUSES)
    for record in records:
        counts[_STATUSES.index(record.status)] += 1
    return JobState(
        keys,
        PersistentVector.of(records),
        tuple(counts),
        MappingProxyType(dict(phases)),
        planned,
        MappingProxyType({key: index for index, key in enumerate(keys)}),
    )


def try_fold(
    events: Iterable[JobEvent], state: JobState | None = None
) -> Result[JobState, InvalidTransition]:
    """:func:`fold`, with an :class:`InvalidTransition` as a ``Failure`` (for resume)."""
    try:
        return Success(fold(events, state))
    except InvalidTransition as error:
        return Failure(error)


# -- queries -----------------------------------------------------------------------------------


def record_of(state: JobState, item_key: str) -> ItemRecord | None:
    """The record of ``item_key``, or ``None`` if the job has no such item."""
    position = state.positions.get(item_key)
    return None if position is None else state.records[position]


def remaining(state: JobState, *, include_failed: bool = False) -> list[str]:
    """The keys still to run, in plan order.

    Pending items, running ones (a crash interrupted them) and, with
    ``include_failed``, failed ones.
    """
    wanted = {ItemStatus.PENDING, ItemStatus.RUNNING}
    if include_failed:
        wanted.add(ItemStatus.FAILED)
    return [record.key for record in state.records if record.status in wanted]


def awaiting_merge(state: JobState) -> list[str]:
    """The keys that succeeded but are not merged yet (a resume merges them, not re-runs them)."""
    return [record.key for record in state.records if record.status is ItemStatus.SUCCEEDED]


def progress(state: JobState) -> Progress:
    """Counts of items per outcome, in O(1)."""
    count = dict(zip(_STATUSES, state.counts, strict=True))
    total = len(state.item_keys)
    done = count[ItemStatus.SUCCEEDED] + count[ItemStatus.MERGED]
    failed, skipped = count[ItemStatus.FAILED], count[ItemStatus.SKIPPED]
    finished = done + failed + skipped
    return Progress(
        total=total,
        done=done,
        failed=failed,
        skipped=skipped,
        running=count[ItemStatus.RUNNING],
        remaining=count[ItemStatus.PENDING],
        percent=100.0 if total == 0 else 100.0 * finished / total,
    )

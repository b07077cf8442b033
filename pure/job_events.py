"""The events of a job's log: what happened to the job, its items and its phases.

Plain frozen data, appended to the job store in order and folded into a
:class:`~pure.job_state.JobState`. Times (``at``) are seconds since the
epoch, passed in by the caller. Each class's ``KIND`` (``item-started``)
tags it when (un)structured with cattrs: :func:`unstructure_event` gives
JSON-ready data ``{"kind": "item-merged", "item_key": ..., ...}`` and
:func:`structure_event` reads it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeAlias

import attrs
import cattrs
from cattrs.strategies import configure_tagged_union

__all__ = [
    "ItemEvent",
    "ItemFailed",
    "ItemMerged",
    "ItemRetried",
    "ItemSkipped",
    "ItemStarted",
    "ItemSucceeded",
    "JobEvent",
    "JobPlanned",
    "PhaseFinished",
    "PhaseStarted",
    "configure_event_converter",
    "structure_event",
    "unstructure_event",
]


@attrs.frozen
class JobPlanned:
    """The job's work items are known: their keys, in plan order."""

    KIND: ClassVar[str] = "job-planned"
    item_keys: tuple[str, ...]
    at: float | None = None


@attrs.frozen
class ItemStarted:
    """An agent started on the item; ``attempt`` counts from 1."""

    KIND: ClassVar[str] = "item-started"
    item_key: str
    attempt: int
    at: float | None = None


@attrs.frozen
class ItemSucceeded:
    """The item's commands all succeeded, leaving ``commits`` on its branch."""

    KIND: ClassVar[str] = "item-succeeded"
    item_key: str
    commits: tuple[str, ...] = ()
    output: str | None = None
    at: float | None = None


@attrs.frozen
class ItemMerged:
    """The item's branch was merged into the job branch as ``commit``."""

    KIND: ClassVar[str] = "item-merged"
    item_key: str
    commit: str
    at: float | None = None


@attrs.frozen
class ItemFailed:
    """The item's attempt (or the merge of its branch) failed.

    ``error_summary`` is one line; ``failure_kind`` (step, merge_conflict,
    timeout, worktree), the failing ``step``, its ``exit_code`` and a
    bounded ``output`` excerpt are what the dead-letter queue shows.
    """

    KIND: ClassVar[str] = "item-failed"
    item_key: str
    error_summary: str
    at: float | None = None
    failure_kind: str | None = None
    step: str | None = None
    exit_code: int | None = None
    output: str | None = None


@attrs.frozen
class ItemRetried:
    """The item goes back to pending, to be started again."""

    KIND: ClassVar[str] = "item-retried"
    item_key: str
    at: float | None = None


@attrs.frozen
class ItemSkipped:
    """The item will not run (error policy ``skip``, a stopped job, ...)."""

    KIND: ClassVar[str] = "item-skipped"
    item_key: str
    reason: str
    at: float | None = None


@attrs.frozen
class PhaseStarted:
    """A phase began."""

    KIND: ClassVar[str] = "phase-started"
    phase: str
    at: float | None = None


@attrs.frozen
class PhaseFinished:
    """A phase ended, successfully or not.

    ``outputs`` are the variables the phase leaves for later phases (setup's
    captures), so a resumed job need not run the phase again.
    """

    KIND: ClassVar[str] = "phase-finished"
    phase: str
    success: bool = True
    at: float | None = None
    outputs: Mapping[str, Any] = attrs.field(factory=dict, eq=False, hash=False)


ItemEvent: TypeAlias = (
    ItemStarted | ItemSucceeded | ItemMerged | ItemFailed | ItemRetried | ItemSkipped
)
JobEvent: TypeAlias = JobPlanned | ItemEvent | PhaseStarted | PhaseFinished
_KINDS: dict[type[Any], str] = {
    JobPlanned: JobPlanned.KIND,
    ItemStarted: ItemStarted.KIND,
    ItemSucceeded: ItemSucceeded.KIND,
    ItemMerged: ItemMerged.KIND,
    ItemFailed: ItemFailed.KIND,
    ItemRetried: ItemRetried.KIND,
    ItemSkipped: ItemSkipped.KIND,
    PhaseStarted: PhaseStarted.KIND,
    PhaseFinished: PhaseFinished.KIND,
}


def configure_event_converter(converter: cattrs.Converter) -> None:
    """Make ``converter`` (un)structure :data:`JobEvent` as a union tagged by ``kind``."""
    configure_tagged_union(JobEvent, converter, tag_generator=_KINDS.__getitem__, tag_name="kind")


_CONVERTER = cattrs.Converter()
configure_event_converter(_CONVERTER)


def unstructure_event(event: JobEvent) -> dict[str, Any]:
    """``event`` as JSON-ready data with its ``kind`` (``{"kind": "item-merged", ...}``)."""
    data: dict[str, Any] = _CONVERTER.unstructure(event, JobEvent)
    return data


def structure_event(data: Mapping[str, Any]) -> JobEvent:
    """The event ``data`` describes.

    Raises ``ValueError`` naming the problem when ``data`` is no event: an
    unknown ``kind``, a missing field, a field of the wrong type.
    """
    kind = data.get("kind")
    if kind not in _KINDS.values():
        known = ", ".join(sorted(_KINDS.values()))
        raise ValueError(f"not a job event: unknown kind {kind!r} (expected one of {known})")
    try:
        event: JobEvent = _CONVERTER.structure(data, JobEvent)  # type: ignore[arg-type]
    except cattrs.BaseValidationError as error:
        problems = "; ".join(cattrs.transform_error(error))
        raise ValueError(f"not a job event of kind {kind!r}: {problems}") from None
    return event

"""The records a job store keeps besides the event log: jobs and their items' state.

Plain data shared by the job store protocol, the SQLite store and the mock.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import attrs

from pure.job_state import ItemStatus

__all__ = ["ItemRow", "JobRecord", "JobStatus"]


class JobStatus(StrEnum):
    """Where a job is; every status but ``completed`` can be resumed."""

    RUNNING = "running"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    COMPLETED = "completed"


@attrs.frozen
class JobRecord:
    """One row of ``jobs``: what a job runs, on what, where it is, and how long it has run.

    ``workflow_hash`` and ``input_hash`` let a resume notice a changed
    workflow file or input (``input_hash`` is ``None`` until the input is
    known); ``options`` are the JSON run options a resume needs
    (``max_parallel``, the agent command, the profile, ...); ``total`` is
    the number of items (set when the job is planned); ``runs_duration``
    adds up the seconds of every run of the job.
    """

    job_id: str
    workflow_name: str
    workflow_path: str
    workflow_hash: str
    input_hash: str | None
    repository: str
    job_branch: str
    status: JobStatus
    created_at: float
    updated_at: float
    total: int = 0
    options: Mapping[str, Any] = attrs.field(factory=dict)
    runs_duration: float = 0.0


@attrs.frozen
class ItemRow:
    """One row of ``items``: an item's state, as the job's events left it.

    ``duration`` is the seconds its attempts spent running (from each
    start to the success, failure, retry or skip that ended it, by the
    events' times; an attempt cut short by a crash does not count);
    ``last_error`` is the latest failure's summary, cleared by a success;
    ``agent_branch`` is what :meth:`SqliteJobStore.set_agent_branch` recorded;
    ``updated_at`` is the time of the item's latest event.
    """

    job_id: str
    item_key: str
    index: int
    status: ItemStatus
    attempts: int
    duration: float
    last_error: str | None
    skip_reason: str | None
    agent_branch: str | None
    merge_commit: str | None
    updated_at: float

"""What phases report: per-agent results, the map summary, the job result, phase failures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from effects.commands import StepFailure, StepRecord
from envs.pool import PoolMetrics
from pure.error_summary import summarize_error

__all__ = [
    "AgentFailure",
    "AgentResult",
    "AgentStatus",
    "JobResult",
    "JobStatus",
    "MapResult",
    "PhaseFailure",
]

AgentStatus = Literal["merged", "unchanged", "failed"]
FailureKind = Literal["step", "merge_conflict", "timeout", "worktree", "cleanup"]
JobStatus = Literal["succeeded", "partial", "failed"]


@attrs.frozen
class AgentFailure:
    """Why an agent failed: ``kind``, a one-line ``message``, and what it printed.

    ``step`` is the failing step (for ``kind == "step"``); ``paths`` the
    conflicting files (for ``merge_conflict``).
    """

    kind: FailureKind
    message: str
    step: StepFailure | None = None
    paths: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.message

    @property
    def summary(self) -> str:
        """One line for the dead-letter queue and the progress display.

        For a failed step: why it failed, which step, and what its output
        says (pytest counts, lint codes, a traceback's last line, ...).
        """
        step = self.step
        if step is None:
            return self.message.splitlines()[0] if self.message else self.kind
        said = summarize_error(step.output, exit_code=step.exit_code, command=step.display)
        return f"{step.reason} in step {step.index + 1}: {said}"


@attrs.frozen
class AgentResult:
    """The outcome of one work item's agent.

    ``status``: ``merged`` (its commits are on the job branch), ``unchanged``
    (it succeeded and changed nothing) or ``failed`` (``failure`` says why).
    Times are on trio's clock: ``started``/``finished`` bound the agent;
    ``worktree_seconds`` is how long its worktree took to acquire and to
    release.
    """

    index: int
    item_key: str
    item: Any
    worktree_name: str
    status: AgentStatus
    commit: str | None = None
    merge_commit: str | None = None
    records: tuple[StepRecord, ...] = ()
    failure: AgentFailure | None = None
    started: float = 0.0
    finished: float = 0.0
    attempts: int = 1
    worktree_seconds: tuple[float, float] = (0.0, 0.0)

    @property
    def duration(self) -> float:
        return self.finished - self.started

    @property
    def succeeded(self) -> bool:
        return self.status != "failed"

    def output_tail(self, limit: int = 500) -> str:
        """The end of the last step's output (or of the failure's), for summaries."""
        if self.failure is not None and self.failure.step is not None:
            text = self.failure.step.output
        elif self.records:
            text = self.records[-1].output
        else:
            text = ""
        return text[-limit:]

    def summary(self) -> dict[str, Any]:
        """The JSON object this agent contributes to ``${map.results}``."""
        return {
            "item_key": self.item_key,
            "index": self.index,
            "item": self.item,
            "status": self.status,
            "success": self.succeeded,
            "commit": self.commit,
            "merge_commit": self.merge_commit,
            "duration": round(self.duration, 3),
            "error": None if self.failure is None else self.failure.message,
            "attempts": self.attempts,
            "output": self.output_tail(),
        }


@attrs.frozen
class MapResult:
    """Every finished agent's result, in item order.

    ``stop_reason`` is set when the error policy stopped the phase early:
    the items that did not start then are not in ``results``.
    """

    results: tuple[AgentResult, ...]
    stop_reason: str | None = None
    planned: int | None = None

    @property
    def total(self) -> int:
        """Every planned item, including those a stop left unstarted."""
        return len(self.results) if self.planned is None else max(self.planned, len(self.results))

    @property
    def successful(self) -> int:
        return sum(1 for result in self.results if result.succeeded)

    @property
    def failed(self) -> int:
        return sum(1 for result in self.results if not result.succeeded)

    @property
    def not_started(self) -> int:
        return self.total - len(self.results)

    def variables(self) -> Mapping[str, Any]:
        """The ``map`` namespace of the reduce phase: total, successful, failed, results."""
        return {
            "total": self.total,
            "successful": self.successful,
            "failed": self.failed,
            "results": [result.summary() for result in self.results],
        }


@attrs.frozen
class PhaseFailure:
    """A setup, map-input or reduce failure that ends the job.

    ``user_error`` marks a mistake in what the user gave (a missing or
    invalid input, a changed input on resume): the command line exits 2.
    """

    phase: str
    message: str
    step: StepFailure | None = None
    user_error: bool = False

    @staticmethod
    def of_input(message: str) -> PhaseFailure:
        """A problem with the map input the user gave (exit code 2 on the command line)."""
        return PhaseFailure("map", message, user_error=True)

    def __str__(self) -> str:
        return f"{self.phase} phase failed: {self.message}"


@attrs.frozen
class JobResult:
    """The outcome of a whole job: its branch, the map results and how the phases went."""

    job_id: str
    job_branch: str
    status: JobStatus
    map: MapResult
    setup_records: tuple[StepRecord, ...] = ()
    reduce_records: tuple[StepRecord, ...] = ()
    failure: PhaseFailure | None = None
    duration: float = 0.0
    pool: PoolMetrics | None = None

    def resources(self) -> dict[str, Any]:
        """What the job's worktrees cost: pool hits and misses, time spent acquiring and
        releasing them (in all, and the slowest agent's), and how many existed at once."""
        acquire = [result.worktree_seconds[0] for result in self.map.results]
        release = [result.worktree_seconds[1] for result in self.map.results]
        resources: dict[str, Any] = {
            "acquire_seconds": round(sum(acquire), 3),
            "release_seconds": round(sum(release), 3),
            "max_acquire_seconds": round(max(acquire, default=0.0), 3),
        }
        if self.pool is not None:
            resources["pool"] = {
                name: round(value, 3) if isinstance(value, float) else value
                for name, value in attrs.asdict(self.pool).items()
            }
        return resources

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object of the command line."""
        return {
            "job_id": self.job_id,
            "job_branch": self.job_branch,
            "status": self.status,
            "total": self.map.total,
            "successful": self.map.successful,
            "failed": self.map.failed,
            "duration": round(self.duration, 3),
            "error": None if self.failure is None else str(self.failure),
            "resources": self.resources(),
            "items": [result.summary() for result in self.map.results],
        }

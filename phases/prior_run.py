"""What earlier runs of a job left behind, read from its events: the basis of a resume."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from envs.job_records import JobRecord
from envs.protocols import JobStore
from phases.results import AgentFailure, AgentResult, AgentStatus
from pure.job_state import ItemStatus, JobState, record_of, remaining, state_of
from pure.work_planning import WorkAssignment

__all__ = ["PriorRun", "input_hash", "load_prior_run"]


def input_hash(document: Any) -> str:
    """A stable hash of the map input (canonical JSON), to notice a changed input on resume."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


_FINISHED: Mapping[ItemStatus, AgentStatus] = {
    ItemStatus.MERGED: "merged",
    ItemStatus.FAILED: "failed",
    ItemStatus.SKIPPED: "failed",
}


@attrs.frozen
class PriorRun:
    """A job's state before this run: nothing for a new job, the fold of its events on resume.

    ``setup_outputs`` are the variables a finished setup left (``None``:
    setup has not finished, so it runs); ``input_hash`` is the hash of the
    input the job was planned from; ``retry_failed`` also re-runs the items
    that failed (the dead-letter queue); ``force`` runs on even when the
    input changed.
    """

    state: JobState = attrs.field(factory=JobState)
    setup_outputs: Mapping[str, Any] | None = None
    input_hash: str | None = None
    retry_failed: bool = False
    force: bool = False

    @property
    def planned(self) -> bool:
        return self.state.planned

    def phase_done(self, phase: str) -> bool:
        return phase in self.state.phases_done

    def to_run(self, assignments: Sequence[WorkAssignment]) -> list[WorkAssignment]:
        """The assignments this run must start: all for a new job, else what remains."""
        if not self.planned:
            return list(assignments)
        keys = set(remaining(self.state, include_failed=self.retry_failed))
        return [assignment for assignment in assignments if assignment.item_key in keys]

    def attempts(self) -> dict[str, int]:
        """How many attempts each item has had so far (numbering continues from there)."""
        return {record.key: record.attempts for record in self.state.records if record.attempts}

    def earlier_results(self, assignments: Sequence[WorkAssignment]) -> list[AgentResult]:
        """Results standing for items an earlier run finished and this run does not repeat."""
        again = {assignment.item_key for assignment in self.to_run(assignments)}
        results = []
        for assignment in assignments:
            record = record_of(self.state, assignment.item_key)
            if record is None or assignment.item_key in again:
                continue
            status = _FINISHED.get(record.status)
            if status is None:
                continue
            failure = None
            if status == "failed":
                message = record.error or record.skip_reason or "failed in an earlier run"
                failure = AgentFailure("step", message)
            unchanged = status == "merged" and not record.merge_commit
            results.append(
                AgentResult(
                    assignment.index,
                    assignment.item_key,
                    assignment.item,
                    assignment.worktree_name,
                    "unchanged" if unchanged else status,
                    commit=record.commits[-1] if record.commits else None,
                    merge_commit=record.merge_commit or None,
                    failure=failure,
                    attempts=record.attempts,
                )
            )
        return results


async def load_prior_run(
    store: JobStore, record: JobRecord, *, retry_failed: bool = False, force: bool = False
) -> PriorRun:
    """What the earlier runs of ``record``'s job left, from the store's item and phase records.

    No event log is folded: the store keeps each item's state beside the
    log (in the same transaction as each event), so this reads one row per
    item, the phases, and setup's outputs.
    """
    records = await store.item_records(record.job_id)
    phases = await store.phases(record.job_id)
    state = state_of(records, phases, planned=bool(records) or "map" in phases)
    outputs = await store.phase_outputs(record.job_id, "setup")
    return PriorRun(state, outputs, record.input_hash, retry_failed, force)

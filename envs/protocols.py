"""The services an environment holds, as protocols, and the plain data they exchange.

Effects ask these services for I/O; ``envs.local`` implements them with
pygit2, trio processes and a job store, ``envs.mock`` in memory. Expected
failures are returned as ``returns`` ``Failure`` values; an exception raised by
a service is a defect (a bug or a broken machine), never a user mistake.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import attrs
from returns.result import Result

from envs.job_records import ItemRow, JobRecord, JobStatus
from envs.store_pruning import JobRows
from pure.job_state import ItemRecord, ItemStatus, PhaseStatus

__all__ = [
    "Clock",
    "CommandExecutor",
    "CommandResult",
    "CommandSpec",
    "EventSink",
    "JobStore",
    "MergeConflict",
    "MergeOutcome",
    "Merger",
    "Worktree",
    "WorktreeError",
    "WorktreeManager",
]


@attrs.frozen
class Worktree:
    """A git worktree forkmerge created: where it is and which branch it has checked out.

    ``name`` is unique within the repository and safe as a file name;
    ``branch`` is the short branch name (``forkmerge/<job>`` for the job's
    worktree, ``forkmerge-agents/<job>/<agent name>`` for an agent's);
    ``base_commit`` is the commit (hex) the branch started from.
    """

    name: str
    path: str
    branch: str
    base_commit: str


@attrs.frozen
class WorktreeError:
    """A git operation on a worktree or branch failed: which operation, and why."""

    operation: str
    message: str

    def __str__(self) -> str:
        return f"{self.operation}: {self.message}"


@attrs.frozen
class MergeConflict:
    """Merging ``source_branch`` into ``target_branch`` conflicts on ``paths``.

    The target branch is left untouched.
    """

    source_branch: str
    target_branch: str
    paths: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"merge conflict merging {self.source_branch} into {self.target_branch} "
            f"in {', '.join(self.paths)}"
        )


@attrs.frozen
class MergeOutcome:
    """A merge that happened: the new commit on the target (``None``: nothing to merge)."""

    commit: str | None
    target_branch: str


class WorktreeManager(Protocol):
    """Creates, changes and removes forkmerge's worktrees and branches."""

    async def create_job_worktree(
        self, job_id: str, *, base: str | None = None
    ) -> Result[Worktree, WorktreeError]:
        """Create the job branch ``forkmerge/<job_id>`` at ``base`` (default: HEAD) and its
        worktree; an existing job branch (a resumed job) is checked out as it is."""
        ...

    async def create_agent_worktree(
        self, name: str, parent_branch: str
    ) -> Result[Worktree, WorktreeError]:
        """Create an agent branch from ``parent_branch``'s current head, and its worktree.

        ``name`` must already be file- and ref-safe (``pure`` work planning
        makes it so); the worktree lives under the manager's state directory.
        """
        ...

    async def remove_worktree(
        self, worktree: Worktree, *, delete_branch: bool = True
    ) -> Result[None, WorktreeError]:
        """Remove the worktree's directory and git metadata, and (by default) its branch.

        For a pool slot, ``worktree`` may be the slot in any state it was handed
        out in (idle, or assigned to an agent): the branch given and the one the
        slot holds now are both deleted, and an idle slot's ``""`` is no branch.
        """
        ...

    async def create_pool_worktree(
        self, job_id: str, slot: int, parent_branch: str
    ) -> Result[Worktree, WorktreeError]:
        """Create pool slot ``slot`` of job ``job_id``: a worktree at ``parent_branch``'s head
        with HEAD detached, so its ``branch`` is ``""`` while idle.

        ``parent_branch`` must be the job's branch; the slot's name says
        ``pool-<slot>``. A pool (``envs.pool``) reuses it across agents.
        """
        ...

    async def assign_pool_worktree(
        self, slot_worktree: Worktree, name: str, parent_branch: str
    ) -> Result[Worktree, WorktreeError]:
        """Give the slot to agent ``name``: branch ``forkmerge-agents/<job>/<name>`` created at
        ``parent_branch``'s current head (replacing a leftover of that name) and
        checked out with only the changed files written, the index and files reset,
        untracked and ignored files deleted. A slot that still differs from that
        commit afterwards (a file that could not be deleted or written) is a failure:
        the caller discards it.

        The result has the slot's name and path, the agent branch, and the
        parent's head as ``base_commit``; the agent uses it like a worktree of
        :meth:`create_agent_worktree`. Removing the slot deletes that branch too.
        """
        ...

    async def release_pool_worktree(self, worktree: Worktree) -> Result[None, WorktreeError]:
        """Take the slot back from its agent: HEAD detached where it is, the agent branch
        deleted, the files left for the next :meth:`assign_pool_worktree`. Idempotent."""
        ...

    async def pool_worktree_clean(self, worktree: Worktree) -> Result[bool, WorktreeError]:
        """Whether the slot has ``worktree.branch`` checked out (detached for ``""``) and its
        files are exactly that commit's tree: nothing changed, untracked or ignored."""
        ...

    async def keep_worktree(self, worktree: Worktree) -> Result[None, WorktreeError]:
        """Mark the worktree as handed over to the user (to debug a failed agent): it and
        its branch stay as they are, and no automatic cleaning removes them (``worktrees
        clean`` still does). Idempotent."""
        ...

    async def agent_leftovers(self, job_id: str) -> Result[list[Worktree], WorktreeError]:
        """The agent worktrees and branches, and the pool slots, of job ``job_id`` that
        exist now.

        While no process runs the job these are leftovers of an interrupted
        run; a resume settles and removes them. A slot is reported with the
        branch of the agent it was assigned to (``""`` when idle), and that
        branch is not reported again on its own.
        """
        ...

    def locate_agent_worktree(
        self, name: str, parent_branch: str
    ) -> Result[Worktree, WorktreeError]:
        """Where agent ``name`` of the job on ``parent_branch`` has (or would have) its
        worktree and branch; touches nothing. A resumed job uses it to find, and
        then merge-check or remove, what an interrupted agent left behind."""
        ...

    async def commit_changes(
        self, worktree: Worktree, message: str
    ) -> Result[str | None, WorktreeError]:
        """Commit every change in the worktree (new, modified, deleted files, honouring
        .gitignore); the new commit's hex id, or ``None`` when nothing changed."""
        ...

    async def head_commit(self, worktree: Worktree) -> Result[str, WorktreeError]:
        """The hex id of the commit the worktree's branch points at."""
        ...

    async def sync_worktree(self, worktree: Worktree) -> Result[None, WorktreeError]:
        """Make the worktree's files match its branch head (after in-memory merges moved it)."""
        ...

    async def write_file(
        self,
        worktree: Worktree,
        relative_path: str,
        content: bytes,
        *,
        create_dirs: bool,
        mode: int = 0o644,
    ) -> Result[None, WorktreeError]:
        """Write ``content`` to ``relative_path`` inside the worktree, with permissions ``mode``.

        A path that would leave the worktree (absolute, ``..``, a symlink out)
        is a ``WorktreeError``; so is a missing parent without ``create_dirs``.
        """
        ...

    async def read_file(
        self, worktree: Worktree, relative_path: str
    ) -> Result[bytes, WorktreeError]:
        """Read a file inside the worktree (same path rules as :meth:`write_file`)."""
        ...


class Merger(Protocol):
    """Merges branches in memory, one merge at a time."""

    async def merge(
        self, source_branch: str, target_branch: str, message: str
    ) -> Result[MergeOutcome, MergeConflict | WorktreeError]:
        """Merge ``source_branch`` into ``target_branch`` without a checkout.

        Merges are serialized. Nothing to merge (the source has no commits
        the target lacks) gives ``MergeOutcome(None, target)``. A conflict
        leaves the target untouched.
        """
        ...

    async def is_merged(
        self, source_branch: str, target_branch: str
    ) -> Result[bool | None, WorktreeError]:
        """Whether a merge on ``target_branch`` brought in ``source_branch``'s head;
        ``None`` when the source branch does not exist. A source branch with no
        commits of its own (its head is an older target commit) is not merged."""
        ...


@attrs.frozen
class CommandSpec:
    """One process to run: its argv (never a shell string), directory, environment, limit.

    ``display`` is how the command is shown in logs and errors (secrets
    masked); ``env`` is the whole environment of the process;
    ``kill_grace`` (seconds between SIGTERM and SIGKILL when the command is
    stopped) overrides the executor's default.
    """

    argv: tuple[str, ...]
    cwd: str
    env: Mapping[str, str]
    timeout: float | None
    display: str
    kill_grace: float | None = None


@attrs.frozen
class CommandResult:
    """How a process ended.

    ``exit_code`` is ``None`` when it was killed by the timeout
    (``timed_out``); ``stdout``/``stderr`` hold at most the executor's bound,
    keeping the head and the tail (``truncated`` says so); ``duration`` is in
    seconds on trio's clock.
    """

    exit_code: int | None
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    truncated: bool = False

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class CommandExecutor(Protocol):
    """Runs processes."""

    @property
    def running(self) -> int:
        """How many commands are running now (for a running job's metrics)."""
        ...

    async def run(self, spec: CommandSpec) -> CommandResult:
        """Run ``spec`` to completion.

        A timeout kills the process's whole process group and returns a
        result with ``timed_out``; a program that cannot be started gives exit
        code 127 and the reason in ``stderr``. On cancellation the whole
        process group is killed before ``trio.Cancelled`` propagates.
        """
        ...


class EventSink(Protocol):
    """Receives progress events (dicts of JSON values); must not block."""

    def emit(self, event: Mapping[str, Any]) -> None: ...


class JobStore(Protocol):
    """Keeps each job's record, its append-only event log and its items' state.

    Appends are durable when they return; items and counts always agree
    with ``fold`` of the job's events. An event that cannot follow the
    current state raises ``InvalidTransition`` and is not stored.
    """

    async def create_job(self, record: JobRecord) -> None:
        """Record a new job (before any of its events)."""
        ...

    async def job(self, job_id: str) -> JobRecord | None:
        """The job's record, or ``None`` when there is no such job."""
        ...

    async def jobs(self) -> list[JobRecord]:
        """Every job, newest first."""
        ...

    async def update_job(
        self,
        job_id: str,
        *,
        status: JobStatus | None = None,
        total: int | None = None,
        add_duration: float = 0.0,
        input_hash: str | None = None,
    ) -> None:
        """Change the job's status, total or input hash; add a run's duration."""
        ...

    async def append(self, job_id: str, event: Any) -> None:
        """Durably record ``event``; returns once it is stored."""
        ...

    async def append_many(self, job_id: str, events: Iterable[Any]) -> None:
        """Durably record ``events`` together: all of them or, on a crash, none."""
        ...

    async def events(self, job_id: str) -> list[Any]:
        """Every event of ``job_id`` in the order appended."""
        ...

    async def events_since(self, job_id: str, seq: int) -> list[tuple[int, Any]]:
        """The events after number ``seq`` (numbered from 1), with their numbers."""
        ...

    async def items(
        self, job_id: str, *, statuses: Iterable[ItemStatus] | None = None
    ) -> list[ItemRow]:
        """The job's items in plan order (only those in ``statuses`` when given)."""
        ...

    async def item_counts(self, job_id: str) -> dict[ItemStatus, int]:
        """How many of the job's items are in each status."""
        ...

    async def item_records(self, job_id: str) -> list[ItemRecord]:
        """Every item's state as the fold of its events would give it, in plan order.

        What a resume starts from; without the commits and output of the
        latest attempt, which only the events hold.
        """
        ...

    async def phases(self, job_id: str) -> dict[str, PhaseStatus]:
        """The status of each phase the job has started."""
        ...

    async def phase_outputs(self, job_id: str, phase: str) -> Mapping[str, Any] | None:
        """The outputs of the phase's last successful finish, ``None`` if it never finished."""
        ...

    async def job_rows(self, job_id: str) -> JobRows:
        """How many records of the job the store holds: job, events, items, phases."""
        ...

    async def delete_job(self, job_id: str) -> JobRows:
        """Forget the job: its record, events, items and phases, all at once or none.

        Returns what was deleted (all 0 for an unknown job); other jobs are
        untouched. What ``jobs prune`` uses; never called on a running job.
        """
        ...


class Clock(Protocol):
    """Wall-clock time for records (durations use trio's clock instead)."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

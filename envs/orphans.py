"""What forkmerge left behind in a repository: its worktrees and agent branches.

A *leftover* is either a worktree forkmerge created or an agent branch of forkmerge
that no worktree has checked out. What counts as forkmerge's (never a name alone):

- a worktree whose marker (see :mod:`envs.worktree_layout`) agrees with git: the
  marker in its admin directory ``<git common dir>/worktrees/<id>/``, or, when the
  process died during the checkout, the pending marker
  ``<state dir>/.pending/<id>/``; the marker must name the job and agent whose
  worktree id is ``<id>``, their branch, a path ending in ``<id>``, and the path git
  records for the worktree (if git records one);
- an agent branch ``forkmerge-agents/<job>/<name>`` checked out nowhere, whose job
  is known: a job of the job store, or a job some marker of this repository names.

Anything else is left alone: the user's worktrees and branches, any other branch in
the namespace, and job branches ``forkmerge/<job>``, which hold results (removing a
job's own worktree keeps its branch).

A leftover is *active* while a live process holds its job's lock
(:func:`envs.job_lock.lock_holder`, looked up in the state directory's ``locks/``
and in the ``locks/`` beside the state directory of each worktree of the job: a
job run with another ``--state-dir`` keeps its lock there), *orphaned* otherwise.

An agent branch of a resumable job can also carry an *unrecorded merge*: git has
the merge commit that took it into the job branch, the job store does not (the
process died between the two). ``resume`` needs that branch to record the merge
instead of running the item again; :mod:`envs.orphan_cleaning` keeps it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, final

import attrs
import pygit2

from envs.disk_usage import disk_usage
from envs.git_pool_slots import is_pool_slot
from envs.git_repository import RepositoryLocation, locate_repository, open_repository
from envs.job_lock import LockHolder, lock_holder
from envs.job_records import JobStatus
from envs.local import StateLayout
from envs.protocols import JobStore
from envs.worktree_layout import (
    AGENT_BRANCH_PREFIX,
    WorktreeMarker,
    agent_branch,
    job_branch,
    name_problem,
    read_marker,
    worktree_id,
)

__all__ = [
    "KnownJob",
    "Leftover",
    "LeftoverKind",
    "LeftoverState",
    "Scan",
    "checked_out_branches",
    "known_jobs",
    "live_holder",
    "scan_leftovers",
    "select_leftovers",
]

LeftoverKind = Literal["worktree", "branch"]
LeftoverState = Literal["active", "orphaned"]


@final
@attrs.frozen
class KnownJob:
    """What the job store says about a job, as far as cleaning is concerned.

    ``merge_commits`` are the merge commits recorded for its items (read only
    for a job that can still be resumed, the only kind a cleaner could hurt).
    """

    job_id: str
    status: JobStatus
    job_branch: str
    merge_commits: frozenset[str] = frozenset()

    @property
    def resumable(self) -> bool:
        return self.status is not JobStatus.COMPLETED


async def known_jobs(store: JobStore) -> dict[str, KnownJob]:
    """Every job of ``store``, by id."""
    known: dict[str, KnownJob] = {}
    for record in await store.jobs():
        merges: frozenset[str] = frozenset()
        if record.status is not JobStatus.COMPLETED:
            rows = await store.items(record.job_id)
            merges = frozenset(row.merge_commit for row in rows if row.merge_commit)
        known[record.job_id] = KnownJob(record.job_id, record.status, record.job_branch, merges)
    return known


@final
@attrs.frozen
class Leftover:
    """One worktree or agent branch forkmerge left in the repository.

    ``created`` is the marker's creation time (a branch's: its oldest reflog
    entry, else its head commit's time); ``size_bytes`` the disk the worktree's
    directory and git metadata take (0 for a branch); ``holder`` the live
    holder of the job's lock, if any (``lock_dirs`` are where it was looked
    up); ``vanished``: the directory is gone, only git's metadata is left;
    ``pending``: the checkout never finished (only the pending marker says
    it is forkmerge's); ``unrecorded_merge``: the merge commit of this agent
    branch that the job store has not recorded (see the module docstring);
    ``kept``: handed over to the user to debug a failed agent (``--keep-failed``).
    """

    kind: LeftoverKind
    job_id: str
    agent: str | None
    branch: str
    path: str | None
    worktree_id: str | None
    base_commit: str
    created: float
    size_bytes: int
    holder: LockHolder | None
    lock_dirs: tuple[str, ...]
    vanished: bool = False
    pending: bool = False
    unrecorded_merge: str | None = None
    kept: bool = False

    @property
    def state(self) -> LeftoverState:
        return "orphaned" if self.holder is None else "active"

    def age(self, now: float) -> float:
        """Seconds since it was created (never negative, whatever the clocks say)."""
        return max(0.0, now - self.created)

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "job_id": self.job_id,
            "agent": self.agent,
            "branch": self.branch,
            "path": self.path,
            "worktree_id": self.worktree_id,
            "age_seconds": round(self.age(now), 3),
            "size_bytes": self.size_bytes,
            "state": self.state,
            "runner_pid": None if self.holder is None else self.holder.pid,
            "vanished": self.vanished,
            "pending": self.pending,
            "unrecorded_merge": self.unrecorded_merge,
            "kept": self.kept,
        }


@final
@attrs.frozen
class Scan:
    """The leftovers found (worktrees first), and notes on what was left alone and why."""

    leftovers: tuple[Leftover, ...]
    notes: tuple[str, ...] = ()


# -- the file system ------------------------------------------------------------------------


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _same_path(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _recorded_path(admin: str) -> str | None:
    """The worktree directory git records in the admin directory, if it records one."""
    try:
        with open(os.path.join(admin, "gitdir"), encoding="utf-8") as file:
            link = file.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return os.path.dirname(link) if link else None


def checked_out_branches(location: RepositoryLocation) -> set[str]:
    """The branches some worktree of the repository (the main one included) has checked out."""
    heads = [os.path.join(location.common_dir, "HEAD")]
    admin_root = os.path.join(location.common_dir, "worktrees")
    heads += [os.path.join(admin_root, name, "HEAD") for name in _listdir(admin_root)]
    branches: set[str] = set()
    for head in heads:
        try:
            with open(head, encoding="utf-8") as file:
                text = file.read().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.startswith("ref: refs/heads/"):
            branches.add(text.removeprefix("ref: refs/heads/"))
    return branches


# -- scanning -------------------------------------------------------------------------------


@attrs.frozen
class _Marked:
    marker: WorktreeMarker
    identifier: str
    admin: str | None
    pending: bool


def _marker_problem(identifier: str, marker: WorktreeMarker, admin: str | None) -> str | None:
    """Why ``marker`` does not describe the worktree ``identifier`` git knows, or ``None``."""
    if name_problem("job id", marker.job_id) or (
        marker.name is not None and name_problem("agent name", marker.name)
    ):
        return "its marker names an invalid job id or agent name"
    expected = worktree_id(marker.job_id, marker.name)
    if identifier != expected:
        return f"its marker describes worktree {expected}"
    branch = (
        job_branch(marker.job_id)
        if marker.name is None
        else agent_branch(marker.job_id, marker.name)
    )
    if is_pool_slot(identifier, marker):
        # A pool slot is idle ("") or lent to one agent of its job at a time.
        if marker.branch and not marker.branch.startswith(agent_branch(marker.job_id, "")):
            return f"its marker names branch {marker.branch}, not one of its job's agents"
    elif marker.branch != branch:
        return f"its marker names branch {marker.branch}, not {branch}"
    if os.path.basename(os.path.normpath(marker.path)) != identifier:
        return f"its marker names the path {marker.path}, not a directory {identifier}"
    recorded = None if admin is None else _recorded_path(admin)
    if recorded is not None and not _same_path(recorded, marker.path):
        return f"git records it at {recorded}, its marker at {marker.path}"
    return None


def _marked_worktrees(
    location: RepositoryLocation, layout: StateLayout, notes: list[str]
) -> dict[str, _Marked]:
    """Every worktree with a marker that agrees with git, by worktree id."""
    found: dict[str, _Marked] = {}
    admin_root = os.path.join(location.common_dir, "worktrees")
    for identifier in _listdir(admin_root):
        admin = os.path.join(admin_root, identifier)
        marker = read_marker(admin)
        if marker is None:
            continue  # the user's worktree, or ours still pending (below)
        problem = _marker_problem(identifier, marker, admin)
        if problem is not None:
            notes.append(f"left alone git worktree {identifier}: {problem}")
            continue
        found[identifier] = _Marked(marker, identifier, admin, pending=False)
    state_dirs = {os.path.normpath(layout.worktrees)}
    state_dirs.update(os.path.dirname(os.path.normpath(m.marker.path)) for m in found.values())
    for state_dir in sorted(state_dirs):
        pending_root = os.path.join(state_dir, ".pending")
        for identifier in _listdir(pending_root):
            if identifier in found:
                continue  # its admin marker was written: that one counts
            marker = read_marker(os.path.join(pending_root, identifier))
            if marker is None:
                continue
            admin = location.admin_dir(identifier)
            admin_found = admin if os.path.isdir(admin) else None
            problem = _marker_problem(identifier, marker, admin_found)
            if problem is None and not _same_path(os.path.dirname(marker.path), state_dir):
                problem = f"its pending marker names {marker.path}, outside {state_dir}"
            if problem is not None:
                notes.append(f"left alone pending worktree {identifier}: {problem}")
                continue
            found[identifier] = _Marked(marker, identifier, admin_found, pending=True)
    return found


def _lock_dirs(layout: StateLayout, worktree_paths: Iterable[str]) -> tuple[str, ...]:
    """Where a job's lock may be: the layout's, and beside each worktree's state directory."""
    dirs = [os.path.normpath(layout.locks)]
    for path in worktree_paths:
        root = os.path.dirname(os.path.dirname(os.path.normpath(path)))
        candidate = os.path.join(root, "locks")
        if candidate not in dirs:
            dirs.append(candidate)
    return tuple(dirs)


def live_holder(lock_dirs: Sequence[str], job_id: str) -> LockHolder | None:
    """The live holder of ``job_id``'s lock in the first of ``lock_dirs`` that has one."""
    for lock_dir in lock_dirs:
        holder = lock_holder(lock_dir, job_id)
        if holder is not None:
            return holder
    return None


def _unrecorded_merge(repo: pygit2.Repository, branch: str, job: KnownJob | None) -> str | None:
    """The merge commit that brought ``branch`` into a resumable job's branch unrecorded.

    Merged means what resume's reconciliation means (``GitMerger.is_merged``): a
    merge commit on the job branch's first-parent line took the agent's head as a
    later parent.
    """
    if job is None or not job.resumable or not branch:
        return None  # "": an idle pool slot, on no branch
    source_ref = repo.lookup_branch(branch)
    target_ref = repo.lookup_branch(job.job_branch)
    if source_ref is None or target_ref is None:
        return None
    source = source_ref.target
    commit = repo[target_ref.target].peel(pygit2.Commit)
    while True:
        if commit.id == source or repo.descendant_of(source, commit.id):
            return None
        if source in commit.parent_ids[1:]:
            merge = str(commit.id)
            return None if merge in job.merge_commits else merge
        if not commit.parent_ids:
            return None
        commit = commit.parents[0]


def _branch_created(repo: pygit2.Repository, branch: str) -> float:
    reference = repo.references.get(f"refs/heads/{branch}")
    if reference is None:
        return 0.0
    try:
        times = [entry.committer.time for entry in reference.log()]
    except (pygit2.GitError, KeyError, OSError):
        times = []
    if times:
        return float(min(times))
    return float(repo[reference.target].peel(pygit2.Commit).commit_time)


def _agent_of_branch(branch: str) -> tuple[str, str] | None:
    """The job id and agent name of an agent branch, ``None`` for any other branch."""
    if not branch.startswith(AGENT_BRANCH_PREFIX):
        return None
    job_id, separator, name = branch[len(AGENT_BRANCH_PREFIX) :].partition("/")
    if not separator or name_problem("job id", job_id) or name_problem("agent name", name):
        return None
    return job_id, name


def scan_leftovers(repo_path: str, layout: StateLayout, known: Mapping[str, KnownJob]) -> Scan:
    """Every leftover of forkmerge in the repository containing ``repo_path``.

    ``layout`` says where pending markers and job locks are; ``known`` are the
    jobs of the job store. Reads only. Blocking (file system and pygit2): call
    it from a worker thread in async code. Raises ``NotARepositoryError``.
    """
    location = locate_repository(repo_path)
    repo = open_repository(location)
    notes: list[str] = []
    marked = _marked_worktrees(location, layout, notes)
    paths_of_job: dict[str, list[str]] = {}
    for item in marked.values():
        paths_of_job.setdefault(item.marker.job_id, []).append(item.marker.path)
    worktrees: list[Leftover] = []
    for item in marked.values():
        marker = item.marker
        lock_dirs = _lock_dirs(layout, paths_of_job[marker.job_id])
        size = disk_usage(marker.path) + (0 if item.admin is None else disk_usage(item.admin))
        unrecorded = None
        if marker.name is not None:
            unrecorded = _unrecorded_merge(repo, marker.branch, known.get(marker.job_id))
        worktrees.append(
            Leftover(
                kind="worktree",
                job_id=marker.job_id,
                agent=marker.name,
                branch=marker.branch,
                path=marker.path,
                worktree_id=item.identifier,
                base_commit=marker.base_commit,
                created=float(marker.created),
                size_bytes=size,
                holder=live_holder(lock_dirs, marker.job_id),
                lock_dirs=lock_dirs,
                vanished=not os.path.isdir(marker.path),
                pending=item.pending,
                unrecorded_merge=unrecorded,
                kept=marker.kept,
            )
        )
    covered = {item.marker.branch for item in marked.values()}
    checked_out = checked_out_branches(location)
    branches: list[Leftover] = []
    for branch in sorted(repo.branches.local):
        parsed = _agent_of_branch(branch)
        if parsed is None or branch in covered or branch in checked_out:
            continue
        job_id, name = parsed
        if job_id not in known and job_id not in paths_of_job:
            continue  # in the namespace, but no job forkmerge knows: not provably ours
        lock_dirs = _lock_dirs(layout, paths_of_job.get(job_id, ()))
        branches.append(
            Leftover(
                kind="branch",
                job_id=job_id,
                agent=name,
                branch=branch,
                path=None,
                worktree_id=None,
                base_commit="",
                created=_branch_created(repo, branch),
                size_bytes=0,
                holder=live_holder(lock_dirs, job_id),
                lock_dirs=lock_dirs,
                unrecorded_merge=_unrecorded_merge(repo, branch, known.get(job_id)),
            )
        )
    # Each job's own worktree first, then its agents' by name.
    worktrees.sort(
        key=lambda leftover: (leftover.job_id, leftover.agent or "", leftover.path or "")
    )
    return Scan((*worktrees, *branches), tuple(notes))


def select_leftovers(
    leftovers: Iterable[Leftover],
    *,
    job_id: str | None = None,
    older_than: float | None = None,
    now: float,
) -> list[Leftover]:
    """The leftovers of ``job_id`` (of every job if ``None``) older than ``older_than`` s."""
    return [
        leftover
        for leftover in leftovers
        if (job_id is None or leftover.job_id == job_id)
        and (older_than is None or leftover.age(now) > older_than)
    ]

"""Which jobs ``jobs prune`` removes, decided from plain facts about them.

Think of it as a caretaker's round: for every job it is told about (a job of
the job store, or a job id that only files are left of) it looks at how long
the job has been quiet, whether anyone is still working on it, and whether
anything of it is still in use, and says *prune* or *keep, because ...*.
Nothing here reads a clock, a file or the database: :class:`JobFacts` carry
what was found, :func:`plan_pruning` turns them into :class:`JobDecision`
values, and the environment carries them out.

The rules, for each job in scope (every job, or only those named):

- a job last active within ``older_than`` is *recent*: left out of the plan
  (counted in :attr:`PrunePlan.newer`), or kept with that reason when it was
  named;
- a job whose lock a live process holds is *running*: always kept, even with
  ``force`` (its process would fail writing to a record that is gone);
- a job whose worktrees or agent branches are still in the repository is
  kept (*worktrees*): pruning its record would make them unrecognisable;
- a job of the store that did not finish (*resumable*: ``interrupted``, or
  ``running`` with its process gone) is kept unless ``force``: it holds work
  that ``resume`` would finish;
- anything else is pruned: a ``completed`` or ``failed`` job, or the files
  of a job the store no longer has. Its job branch is deleted only with
  ``delete_branches`` and only for a job of the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal, final

import attrs

__all__ = [
    "FINISHED_STATUSES",
    "JobDecision",
    "JobFacts",
    "KeepReason",
    "PrunePlan",
    "StateFile",
    "plan_pruning",
]

FINISHED_STATUSES = frozenset({"completed", "failed"})
"""Statuses of a job whose run ended by itself; any other status is resumable work."""

KeepReason = Literal["running", "recent", "worktrees", "resumable"]


@final
@attrs.frozen
class StateFile:
    """One file of forkmerge's state belonging to a job: where, how big, last modified when."""

    path: str
    size: int
    modified: float


@final
@attrs.frozen
class JobFacts:
    """What was found about one job.

    ``status`` is the job store's status (``None``: the store has no record
    of the job, only ``files`` are left); ``updated_at`` the record's last
    change; ``files`` its event log, archives, metrics and lock files;
    ``runner_pid``/``runner_host`` the live process holding its lock, if any;
    ``leftovers`` how many of its worktrees and agent branches are still in
    the repository; ``remaining_items`` how many of its items are not
    finished (pending or running); ``branch`` its job branch, when that
    exists in the repository.
    """

    job_id: str
    status: str | None
    updated_at: float | None = None
    files: tuple[StateFile, ...] = ()
    runner_pid: int | None = None
    runner_host: str = ""
    leftovers: int = 0
    remaining_items: int = 0
    branch: str | None = None

    @property
    def last_active(self) -> float:
        """The newest of the record's last change and its files' modification times."""
        times = [file.modified for file in self.files]
        if self.updated_at is not None:
            times.append(self.updated_at)
        return max(times, default=0.0)

    @property
    def recorded(self) -> bool:
        return self.status is not None

    @property
    def size(self) -> int:
        """The bytes its files take."""
        return sum(file.size for file in self.files)


@final
@attrs.frozen
class JobDecision:
    """Prune ``facts``'s job, or keep it for ``reasons`` (every reason that applies).

    ``delete_branch``: its job branch goes too (only when pruned).
    """

    facts: JobFacts
    reasons: tuple[KeepReason, ...] = ()
    delete_branch: bool = False

    @property
    def prune(self) -> bool:
        return not self.reasons

    @property
    def job_id(self) -> str:
        return self.facts.job_id


@final
@attrs.frozen
class PrunePlan:
    """The decisions, oldest job first; the named jobs nothing was found of; how many
    jobs were left out because they were active within ``older_than``."""

    decisions: tuple[JobDecision, ...]
    unknown: tuple[str, ...] = ()
    newer: int = 0

    @property
    def pruned(self) -> tuple[JobDecision, ...]:
        return tuple(decision for decision in self.decisions if decision.prune)

    @property
    def kept(self) -> tuple[JobDecision, ...]:
        return tuple(decision for decision in self.decisions if not decision.prune)


def _reasons(facts: JobFacts, *, recent: bool, force: bool) -> tuple[KeepReason, ...]:
    reasons: list[KeepReason] = []
    if facts.runner_pid is not None:
        reasons.append("running")
    if recent:
        reasons.append("recent")
    if facts.leftovers:
        reasons.append("worktrees")
    resumable = facts.recorded and facts.status not in FINISHED_STATUSES
    if resumable and not force and facts.runner_pid is None:
        reasons.append("resumable")
    return tuple(reasons)


def plan_pruning(
    jobs: Iterable[JobFacts],
    *,
    now: float,
    older_than: float | None = None,
    only: Sequence[str] | None = None,
    force: bool = False,
    delete_branches: bool = False,
) -> PrunePlan:
    """Decide which of ``jobs`` to prune (see the module docstring for the rules).

    ``now`` and ``older_than`` are in seconds; a job qualifies when it was
    last active more than ``older_than`` seconds before ``now`` (any age
    when ``None``). ``only`` restricts the plan to the named jobs; a name
    with no facts is listed in :attr:`PrunePlan.unknown`. ``force`` prunes
    resumable jobs too (never running ones). Facts of the same job id given
    twice: the first counts.
    """
    named = None if only is None else dict.fromkeys(only)
    seen: dict[str, JobFacts] = {}
    for facts in jobs:
        seen.setdefault(facts.job_id, facts)
    decisions: list[JobDecision] = []
    newer = 0
    for facts in seen.values():
        if named is not None and facts.job_id not in named:
            continue
        recent = older_than is not None and now - facts.last_active <= older_than
        if recent and named is None:
            newer += 1
            continue
        reasons = _reasons(facts, recent=recent, force=force)
        delete = delete_branches and not reasons and facts.recorded and facts.branch is not None
        decisions.append(JobDecision(facts, reasons, delete))
    decisions.sort(key=lambda decision: (decision.facts.last_active, decision.job_id))
    unknown = () if named is None else tuple(name for name in named if name not in seen)
    return PrunePlan(tuple(decisions), unknown, newer)

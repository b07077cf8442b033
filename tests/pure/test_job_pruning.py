"""Which jobs ``jobs prune`` removes: the rules, and properties over any mix of jobs."""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st

from pure.job_pruning import (
    FINISHED_STATUSES,
    JobDecision,
    JobFacts,
    PrunePlan,
    StateFile,
    plan_pruning,
)

NOW = 1_000_000.0
DAY = 86400.0


def facts(
    job_id: str, status: str | None = "completed", age: float = 10 * DAY, **kw: Any
) -> JobFacts:
    return JobFacts(job_id, status, updated_at=NOW - age, **kw)


def by_id(plan: PrunePlan) -> dict[str, JobDecision]:
    return {decision.job_id: decision for decision in plan.decisions}


def test_finished_jobs_older_than_the_threshold_are_pruned_and_newer_ones_left_out() -> None:
    plan = plan_pruning(
        [facts("done", age=8 * DAY), facts("broke", "failed", age=9 * DAY), facts("new", age=DAY)],
        now=NOW,
        older_than=7 * DAY,
    )
    assert [d.job_id for d in plan.decisions] == ["broke", "done"]  # oldest first
    assert all(d.prune and not d.reasons and not d.delete_branch for d in plan.decisions)
    assert plan.pruned == plan.decisions and plan.kept == ()
    assert (plan.newer, plan.unknown) == (1, ())


def test_exactly_the_threshold_is_not_older_than_it() -> None:
    plan = plan_pruning([facts("edge", age=DAY)], now=NOW, older_than=DAY)
    assert (plan.decisions, plan.newer) == ((), 1)


def test_without_a_threshold_every_age_qualifies() -> None:
    plan = plan_pruning([facts("now", age=0.0)], now=NOW)
    assert by_id(plan)["now"].prune


def test_a_running_job_is_kept_even_with_force() -> None:
    running = facts("live", "running", runner_pid=42, runner_host="ci")
    for force in (False, True):
        decision = by_id(plan_pruning([running], now=NOW, older_than=DAY, force=force))["live"]
        assert decision.reasons == ("running",) and not decision.prune


def test_resumable_jobs_are_kept_unless_forced() -> None:
    jobs = [facts("stopped", "interrupted"), facts("crashed", "running")]
    kept = by_id(plan_pruning(jobs, now=NOW, older_than=DAY))
    assert {job_id: d.reasons for job_id, d in kept.items()} == {
        "stopped": ("resumable",),
        "crashed": ("resumable",),
    }
    forced = plan_pruning(jobs, now=NOW, older_than=DAY, force=True)
    assert [d.prune for d in forced.decisions] == [True, True]


def test_a_job_with_worktrees_left_is_kept_with_every_reason_that_applies() -> None:
    decision = by_id(plan_pruning([facts("wt", "interrupted", leftovers=2)], now=NOW))["wt"]
    assert decision.reasons == ("worktrees", "resumable")
    forced = by_id(plan_pruning([facts("wt", "interrupted", leftovers=2)], now=NOW, force=True))
    assert forced["wt"].reasons == ("worktrees",)


def test_named_jobs_only_and_a_named_recent_job_is_kept_saying_so() -> None:
    jobs = [facts("a"), facts("b", age=60.0), facts("c")]
    plan = plan_pruning(jobs, now=NOW, older_than=DAY, only=["b", "a", "nope", "b"])
    assert {job_id: d.reasons for job_id, d in by_id(plan).items()} == {
        "a": (),
        "b": ("recent",),
    }
    assert (plan.unknown, plan.newer) == (("nope",), 0)


def test_stray_files_of_a_job_without_record_are_pruned_by_their_age() -> None:
    old = StateFile("/s/logs/gone.jsonl", 100, NOW - 5 * DAY)
    young = StateFile("/s/locks/gone.lock.guard", 0, NOW - 60.0)
    stray = JobFacts("gone", None, files=(old,), branch="forkmerge/gone")
    plan = plan_pruning([stray], now=NOW, older_than=DAY, delete_branches=True)
    decision = by_id(plan)["gone"]
    # its branch is not recognisably forkmerge's without a record: never deleted
    assert decision.prune and not decision.delete_branch
    assert stray.last_active == old.modified and stray.size == 100 and not stray.recorded
    fresh = attrs.evolve(stray, files=(old, young))
    assert plan_pruning([fresh], now=NOW, older_than=DAY).newer == 1


def test_the_branch_goes_only_when_asked_for_a_pruned_job_that_has_one() -> None:
    jobs = [
        facts("with", branch="forkmerge/with"),
        facts("without"),
        facts("kept", "interrupted", branch="forkmerge/kept"),
    ]
    asked = by_id(plan_pruning(jobs, now=NOW, delete_branches=True))
    assert {job_id: d.delete_branch for job_id, d in asked.items()} == {
        "with": True,
        "without": False,
        "kept": False,
    }
    assert not any(d.delete_branch for d in plan_pruning(jobs, now=NOW).decisions)


def test_last_activity_is_the_newest_of_the_record_and_its_files() -> None:
    log = StateFile("/s/logs/j.jsonl", 10, NOW - DAY)
    job = facts("j", age=3 * DAY, files=(log,))
    assert job.last_active == NOW - DAY
    assert plan_pruning([job], now=NOW, older_than=2 * DAY).newer == 1
    assert JobFacts("empty", None).last_active == 0.0


def test_the_first_facts_of_a_job_id_count() -> None:
    plan = plan_pruning([facts("j"), facts("j", "interrupted")], now=NOW)
    assert len(plan.decisions) == 1 and plan.decisions[0].prune


# -- properties ----------------------------------------------------------------------------

STATUSES = st.sampled_from([None, "completed", "failed", "interrupted", "running"])
FACTS = st.builds(
    JobFacts,
    job_id=st.sampled_from([f"job-{n}" for n in range(8)]),
    status=STATUSES,
    updated_at=st.one_of(st.none(), st.floats(NOW - 30 * DAY, NOW)),
    files=st.lists(
        st.builds(StateFile, st.just("/f"), st.integers(0, 1000), st.floats(NOW - 30 * DAY, NOW)),
        max_size=3,
    ).map(tuple),
    runner_pid=st.one_of(st.none(), st.integers(1, 99)),
    leftovers=st.integers(0, 2),
    branch=st.one_of(st.none(), st.just("forkmerge/x")),
)


@attrs.frozen
class Options:
    older_than: float | None
    only: list[str] | None
    force: bool
    delete_branches: bool

    def plan(self, jobs: list[JobFacts], **changes: Any) -> PrunePlan:
        options = attrs.evolve(self, **changes)
        return plan_pruning(
            jobs,
            now=NOW,
            older_than=options.older_than,
            only=options.only,
            force=options.force,
            delete_branches=options.delete_branches,
        )


OPTIONS = st.builds(
    Options,
    older_than=st.one_of(st.none(), st.floats(0, 30 * DAY)),
    only=st.one_of(st.none(), st.lists(st.sampled_from([f"job-{n}" for n in range(10)]))),
    force=st.booleans(),
    delete_branches=st.booleans(),
)


@given(st.lists(FACTS, max_size=10), OPTIONS)
def test_nothing_unsafe_is_ever_pruned(jobs: list[JobFacts], options: Options) -> None:
    plan = options.plan(jobs)
    for decision in plan.pruned:
        job = decision.facts
        assert job.runner_pid is None and job.leftovers == 0
        assert options.older_than is None or NOW - job.last_active > options.older_than
        assert options.force or job.status in FINISHED_STATUSES or job.status is None
        assert not decision.delete_branch or (job.recorded and job.branch is not None)
        assert not decision.delete_branch or options.delete_branches
    for decision in plan.kept:
        assert decision.reasons  # a kept job always says why


@given(st.lists(FACTS, max_size=10), OPTIONS)
def test_every_job_in_scope_is_decided_once_or_counted_as_newer(
    jobs: list[JobFacts], options: Options
) -> None:
    plan = options.plan(jobs)
    only = options.only
    in_scope = {job.job_id for job in jobs if only is None or job.job_id in only}
    decided = [decision.job_id for decision in plan.decisions]
    assert len(decided) == len(set(decided)) and set(decided) <= in_scope
    assert len(decided) + plan.newer == len(in_scope)
    if only is None:
        assert plan.unknown == ()
    else:
        assert set(plan.unknown) == set(only) - {job.job_id for job in jobs}
        assert plan.newer == 0
    ages = [decision.facts.last_active for decision in plan.decisions]
    assert ages == sorted(ages)


@given(st.lists(FACTS, max_size=10), OPTIONS)
def test_force_and_no_threshold_only_ever_prune_more(
    jobs: list[JobFacts], options: Options
) -> None:
    pruned = {d.job_id for d in options.plan(jobs, force=False).pruned}
    assert pruned <= {d.job_id for d in options.plan(jobs, force=True).pruned}
    assert pruned <= {d.job_id for d in options.plan(jobs, older_than=None).pruned}

"""Surveying and pruning jobs on a real repository: the facts found, and removals that fail."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from envs.job_lock import JobLock
from envs.job_pruning import PruneReport, prune_jobs, survey_jobs
from envs.local import StateLayout, state_layout
from envs.state_files import StateDirectory, job_of_file, job_state_files
from envs.store import SqliteJobStore, StoreError
from envs.worktree_layout import name_problem
from pure.job_pruning import JobFacts, plan_pruning
from tests.envs.orphan_scene import init_repository, isolate_git
from tests.envs.prune_scene import DAY, NOW, OLD, PruneScene, build_prune_scene


@pytest.fixture
def scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PruneScene]:
    isolate_git(monkeypatch)
    repo = init_repository(str(tmp_path / "repo"))
    with ExitStack() as locks:
        yield trio.run(build_prune_scene, repo, locks)


# -- recognising a job's files ------------------------------------------------------------------

JOB_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,30}", fullmatch=True).filter(
    lambda name: name_problem("job id", name) is None
)
LOG_FORMS = (
    "{}.jsonl",
    "{}.jsonl.rotating",
    "{}.3.jsonl.gz",
    "{}.1.jsonl.gz.tmp",
    "{}.metrics.json",
    "{}.metrics.json.tmp",
)
LOCK_FORMS = ("{}.lock", "{}.lock.guard", "{}.lock.123.tmp")


@given(JOB_IDS)
def test_every_file_form_names_its_job_back(job_id: str) -> None:
    for form in LOG_FORMS:
        assert job_of_file("logs", form.format(job_id)) == job_id
    for form in LOCK_FORMS:
        assert job_of_file("locks", form.format(job_id)) == job_id


@pytest.mark.parametrize(
    ("directory", "name", "job_id"),
    [
        ("logs", "a.2.1.jsonl.gz", "a.2"),  # archive 1 of job a.2, not archive 2.1 of a
        ("logs", "a.2.jsonl", "a.2"),
        ("locks", "x.lock.7.lock.guard", "x.lock.7"),
        ("logs", "job.lock", None),  # a lock form, in logs/
        ("locks", "job.jsonl", None),
        ("logs", "README.txt", None),
        ("logs", ".hidden.jsonl", None),  # not a valid job id
        ("logs", "bad..id.jsonl", None),
        ("locks", "x.lock.guard.bak", None),
        ("logs", "x.jsonl.gz", None),
        ("logs", "x.metrics.json.old", None),
    ],
)
def test_only_whole_names_of_a_valid_job_id_count(
    directory: StateDirectory, name: str, job_id: str | None
) -> None:
    assert job_of_file(directory, name) == job_id


def test_state_files_are_listed_by_job_with_size_and_time(scene: PruneScene) -> None:
    files = job_state_files(scene.layout)
    assert set(files) == {"done", "broke", "fresh", "stopped", "crashed", "live", "busy"} | {
        "gone",
        "ghost",
    }
    done = {os.path.relpath(f.path, scene.layout.root): f for f in files["done"]}
    assert set(done) == {
        "locks/done.lock.guard",
        "logs/done.1.jsonl.gz",
        "logs/done.jsonl",
        "logs/done.metrics.json",
    }
    assert done["logs/done.1.jsonl.gz"].size == 300
    assert abs(done["logs/done.jsonl"].modified - OLD) < 1


def test_a_link_or_directory_with_a_job_files_name_is_not_listed(tmp_path: Path) -> None:
    logs = tmp_path / "state" / "logs"
    logs.mkdir(parents=True)
    (logs / "a.jsonl").mkdir()
    (tmp_path / "elsewhere").write_text("x")
    (logs / "b.jsonl").symlink_to(tmp_path / "elsewhere")
    assert job_state_files(StateLayout(str(tmp_path), str(tmp_path / "state"))) == {}


# -- the survey ---------------------------------------------------------------------------------


def survey(scene: PruneScene) -> dict[str, JobFacts]:
    async def read() -> dict[str, JobFacts]:
        with scene.store() as store:
            found = await survey_jobs(scene.repo, scene.layout, store)
        return {facts.job_id: facts for facts in found}

    return trio.run(read)


def test_the_survey_finds_each_jobs_state_files_runner_worktrees_and_branch(
    scene: PruneScene,
) -> None:
    facts = survey(scene)
    assert {job_id: facts[job_id].status for job_id in facts} == {
        "done": "completed",
        "broke": "failed",
        "fresh": "completed",
        "stopped": "interrupted",
        "crashed": "running",
        "live": "running",
        "busy": "completed",
        "gone": None,
        "ghost": None,
    }
    assert facts["live"].runner_pid == os.getpid()
    assert facts["crashed"].runner_pid is None  # its lock names a dead process
    assert {job_id for job_id, f in facts.items() if f.leftovers} == {"busy"}
    assert facts["stopped"].remaining_items == 1  # b never ran
    assert {job_id: f.branch for job_id, f in facts.items() if f.branch} == {
        "done": "forkmerge/done",
        "broke": "forkmerge/broke",
        "stopped": "forkmerge/stopped",
        "crashed": "forkmerge/crashed",
        "live": "forkmerge/live",
        "busy": "forkmerge/busy",
    }
    assert abs(facts["done"].last_active - OLD) < 1
    assert facts["gone"].branch is None  # forkmerge/gone exists, but no record says it is ours


def test_without_a_database_only_stray_files_are_found(tmp_path: Path) -> None:
    repo = init_repository(str(tmp_path / "repo"))
    layout = state_layout(repo)
    os.makedirs(layout.logs)
    Path(layout.logs, "old.jsonl").write_text("{}")
    found = trio.run(survey_jobs, repo, layout, None)
    assert [(f.job_id, f.status) for f in found] == [("old", None)]
    assert not os.path.exists(os.path.join(layout.root, "jobs.sqlite3"))


# -- removals that fail or are overtaken --------------------------------------------------------


def prune(scene: PruneScene, only: list[str], *, delete_branches: bool = False) -> PruneReport:
    async def run() -> PruneReport:
        with scene.store() as store:
            facts = await survey_jobs(scene.repo, scene.layout, store)
            plan = plan_pruning(
                facts, now=NOW, only=only, older_than=DAY, delete_branches=delete_branches
            )
            return await prune_jobs(
                plan, repo_path=scene.repo, layout=scene.layout, store=store, dry_run=False
            )

    return trio.run(run)


def test_a_file_that_cannot_be_removed_is_reported_and_the_rest_still_goes(
    scene: PruneScene,
) -> None:
    async def run() -> PruneReport:
        with scene.store() as store:
            facts = await survey_jobs(scene.repo, scene.layout, store)
            plan = plan_pruning(facts, now=NOW, only=["done"])
            # between the survey and the removal, the log became a directory
            log = scene.path("logs/done.jsonl")
            os.remove(log)
            os.mkdir(log)
            return await prune_jobs(
                plan, repo_path=scene.repo, layout=scene.layout, store=store, dry_run=False
            )

    report = trio.run(run)
    (job,) = report.jobs
    assert job.outcome == "failed" and report.failed
    assert len(job.errors) == 1 and job.errors[0].startswith(
        f"cannot remove {scene.path('logs/done.jsonl')}: "
    )
    assert job.rows.jobs == 1  # the record went
    assert not {"logs/done.metrics.json", "locks/done.lock.guard"} & scene.state_files()


def test_a_checked_out_job_branch_fails_the_job_and_keeps_all_of_it(scene: PruneScene) -> None:
    scene.git("checkout", "--quiet", "forkmerge/done")
    before = (scene.state_files(), scene.database_rows())
    report = prune(scene, ["done"], delete_branches=True)
    (job,) = report.jobs
    assert job.outcome == "failed" and not job.branch_deleted
    assert "branch forkmerge/done is checked out in a worktree" in job.errors[0]
    assert (scene.state_files(), scene.database_rows()) == before
    assert "forkmerge/done" in scene.branches()


def test_a_job_started_after_the_survey_is_kept(scene: PruneScene) -> None:
    async def run() -> PruneReport:
        with scene.store() as store:
            facts = await survey_jobs(scene.repo, scene.layout, store)
            plan = plan_pruning(facts, now=NOW, only=["broke"])
            with JobLock(scene.layout.locks, "broke"):  # a resume starts meanwhile
                return await prune_jobs(
                    plan, repo_path=scene.repo, layout=scene.layout, store=store, dry_run=False
                )

    (job,) = trio.run(run).jobs
    assert (job.outcome, job.decision.reasons) == ("kept", ("running",))
    assert job.decision.facts.runner_pid == os.getpid()
    assert "logs/broke.jsonl" in scene.state_files()
    assert "jobs/broke" in scene.database_rows()


def test_a_store_that_cannot_delete_keeps_the_job_whole(
    scene: PruneScene, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(self: SqliteJobStore, job_id: str) -> None:
        raise StoreError(self.path, f"cannot delete job {job_id!r} (database is locked)")

    monkeypatch.setattr(SqliteJobStore, "delete_job", refuse)
    before = scene.state_files()
    (job,) = prune(scene, ["broke"]).jobs
    assert job.outcome == "failed"
    assert job.errors[0].endswith("cannot delete job 'broke' (database is locked)")
    assert scene.state_files() == before  # no guard file left behind by taking the lock

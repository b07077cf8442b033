"""The three phases end to end in the mock environment, on trio's MockClock."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing
from returns.result import Success

from envs.environment import MapEnv, PhaseEnv
from envs.job_records import JobStatus
from envs.mock import mock_kit, mock_map_env, mock_phase_env
from phases.agent import execute_agent
from phases.jobs import run_new_job
from phases.map_phase import load_work_items, run_map_phase
from phases.results import JobResult, MapResult
from pure.job_state import PhaseStatus
from pure.work_planning import WorkAssignment, plan_work_assignments
from pure.workflow import Workflow
from tests.phases.helpers import planned_job, record_for, run_new, workflow

AGENTS = """
name: agents
map:
  input: items.json
  agent_template:
    - shell: "work ${item.name}"
  max_parallel: 5
"""


def items(count: int) -> bytes:
    return json.dumps([{"name": f"item{i}"} for i in range(count)]).encode()


def assignments(wf: Workflow, count: int) -> list[WorkAssignment]:
    return plan_work_assignments([{"name": f"item{i}"} for i in range(count)], wf.map)


async def map_phase(env: MapEnv, wf: Workflow, count: int, max_parallel: int) -> MapResult:
    planned = assignments(wf, count)
    await planned_job(env, planned)
    result = await run_map_phase(wf, planned, {}, max_parallel=max_parallel).run(env)
    return result.unwrap()


async def test_ten_one_second_agents_at_max_parallel_five_take_two_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wf = workflow(AGENTS)
    env = mock_map_env()
    kit = mock_kit(env)
    kit.executor.on(
        "work",
        duration=1.0,
        effect=kit.writes(lambda spec: spec.argv[-1].split()[-1] + ".txt", "done"),
    )
    start = trio.current_time()
    map_result = await map_phase(env, wf, 10, 5)
    assert trio.current_time() - start == pytest.approx(2.0)
    assert [r.status for r in map_result.results] == ["merged"] * 10
    assert kit.executor.peak_running == 5
    job_files = kit.worktrees.branch_files(env.job.job_branch)
    assert all(f"'item{i}'.txt" in job_files or f"item{i}.txt" in job_files for i in range(10))
    assert kit.worktrees.active_worktrees() == [env.job.job_worktree]


async def test_a_failed_agent_does_not_stop_the_others_and_its_worktree_is_released(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wf = workflow(AGENTS)
    env = mock_map_env()
    kit = mock_kit(env)
    kit.executor.on("item3", exit_code=1, stdout="broken", duration=0.5)
    kit.executor.on("work", duration=1.0)
    map_result = await map_phase(env, wf, 6, 2)
    assert [r.status for r in map_result.results] == ["unchanged"] * 3 + ["failed"] + [
        "unchanged"
    ] * 2
    failed = map_result.results[3]
    assert failed.failure is not None and failed.failure.kind == "step"
    assert "broken" in failed.output_tail()
    assert kit.worktrees.active_worktrees() == [env.job.job_worktree]
    removed = [c for c in kit.recorder.of("worktrees") if c.method == "remove_worktree"]
    assert len(removed) == 6


async def test_cancelling_the_map_phase_releases_every_worktree(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wf = workflow(AGENTS)
    env = mock_map_env()
    kit = mock_kit(env)
    kit.executor.on("work", duration=100.0)
    with trio.move_on_after(5) as scope:
        await map_phase(env, wf, 10, 4)
    assert scope.cancelled_caught
    assert kit.worktrees.active_worktrees() == [env.job.job_worktree]
    assert len(kit.executor.runs) == 4
    assert all(run.cancelled for run in kit.executor.runs)


async def test_agent_timeout_fails_the_item_and_releases_the_worktree(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wf = workflow(AGENTS.replace("max_parallel: 5", "max_parallel: 5\n  agent_timeout_secs: 10"))
    env = mock_map_env()
    kit = mock_kit(env)
    kit.executor.on("work", duration=60.0)
    result = (await execute_agent(assignments(wf, 1)[0], wf, {}).run(env)).unwrap()  # no events
    assert result.status == "failed" and result.failure is not None
    assert result.failure.kind == "timeout"
    assert kit.worktrees.active_worktrees() == [env.job.job_worktree]


async def test_conflicting_agents_give_one_merge_and_one_conflict(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wf = workflow(AGENTS)
    env = mock_map_env(files={"shared.txt": b"base\n"})
    kit = mock_kit(env)
    kit.executor.on("work", duration=1.0, effect=kit.writes("shared.txt", lambda s: s.argv[-1]))
    results = await map_phase(env, wf, 2, 2)
    statuses = sorted(r.status for r in results.results)
    assert statuses == ["failed", "merged"]
    conflict = next(r for r in results.results if r.status == "failed")
    assert conflict.failure is not None and conflict.failure.kind == "merge_conflict"
    assert conflict.failure.paths == ("shared.txt",)


async def test_merge_block_resolves_a_conflict(autojump_clock: trio.testing.MockClock) -> None:
    wf = workflow(
        AGENTS
        + """
merge:
  - shell: "resolve ${merge.source_branch} ${merge.target_branch}"
"""
    )
    env = mock_map_env(files={"shared.txt": b"base\n"})
    kit = mock_kit(env)
    kit.executor.on("work", duration=1.0, effect=kit.writes("shared.txt", lambda s: s.argv[-1]))

    def resolve(spec: Any) -> None:
        # bring the job branch into the agent branch, keeping both texts
        worktree = kit.worktrees.worktree_at(spec.cwd)
        job_head = kit.worktrees.head_of(env.job.job_branch)
        files = dict(kit.worktrees.files(worktree))
        files["shared.txt"] = b"resolved\n"
        head = kit.worktrees.head_of(worktree.branch)
        kit.repository.branches[worktree.branch] = kit.repository.commit(
            files, [head, job_head], "merge job branch"
        )
        kit.worktrees.set_file(worktree, "shared.txt", b"resolved\n")

    kit.executor.on("resolve", effect=resolve)
    results = await map_phase(env, wf, 2, 2)
    assert [r.status for r in results.results] == ["merged", "merged"]
    assert kit.worktrees.branch_files(env.job.job_branch)["shared.txt"] == b"resolved\n"


async def test_load_work_items_reads_a_json_file_or_runs_a_command() -> None:
    env = mock_map_env(files={"items.json": items(2)})
    kit = mock_kit(env)
    document = await load_work_items(workflow(AGENTS).map, {}).run(env)
    assert document == Success([{"name": "item0"}, {"name": "item1"}])
    kit.executor.on("list-items", stdout='[{"name": "x"}]')
    command = workflow(AGENTS.replace("input: items.json", "input: 'list-items --all'"))
    assert await load_work_items(command.map, {}).run(env) == Success([{"name": "x"}])
    missing = workflow(AGENTS.replace("input: items.json", "input: nothing.json"))
    failure = (await load_work_items(missing.map, {}).run(env)).failure()
    assert "nothing.json" in str(failure)


async def test_invalid_input_json_names_the_file() -> None:
    env = mock_map_env(files={"items.json": b"[1, 2"})
    failure = (await load_work_items(workflow(AGENTS).map, {}).run(env)).failure()
    assert "items.json" in str(failure) and "not valid JSON" in str(failure)


FULL = """
name: full
env:
  GREETING: hello
setup:
  - shell: "generate"
    capture: count
    capture_format: number
map:
  input: items.json
  agent_template:
    - shell: "work ${item.name} ${count}"
  max_parallel: 3
reduce:
  - shell: "summarize ${map.successful}/${map.total}"
  - write_file:
      path: summary.json
      content: "${map.results}"
      format: json
"""


async def run_job(env: PhaseEnv, wf: Workflow, **options: Any) -> JobResult:
    return await run_new(env, wf, **options)


async def test_run_workflow_end_to_end(autojump_clock: trio.testing.MockClock) -> None:
    env = mock_phase_env(files={"README": b"x"})
    kit = mock_kit(env)
    kit.executor.on("generate", stdout="4\n", effect=kit.writes("items.json", items(4).decode()))
    kit.executor.on(
        "work",
        duration=1.0,
        effect=kit.writes(lambda s: s.argv[-1].split()[1].strip("'") + ".out", "ok"),
    )
    job = await run_job(env, workflow(FULL))
    assert job.status == "succeeded"
    assert (job.map.total, job.map.successful, job.map.failed) == (4, 4, 0)
    branch_files = kit.worktrees.branch_files(job.job_branch)
    assert {"items.json", "item0.out", "item3.out", "summary.json"} <= set(branch_files)
    summary = json.loads(branch_files["summary.json"])
    assert [entry["status"] for entry in summary] == ["merged"] * 4
    reduce_cmd = [r.spec.argv[-1] for r in kit.executor.runs if "summarize" in r.spec.argv[-1]]
    assert reduce_cmd == ["summarize '4'/'4'"]
    work = [r.spec.argv[-1] for r in kit.executor.runs if r.spec.argv[-1].startswith("work")]
    assert all(cmd.endswith("'4'") for cmd in work)
    # only the job branch remains; the user's branch is untouched
    assert kit.worktrees.active_worktrees() == []
    assert kit.worktrees.branches() == ["forkmerge/job-1", "main"]
    assert kit.worktrees.branch_files("main") == {"README": b"x"}


async def test_setup_failure_fails_the_job_and_cleans_up() -> None:
    env = mock_phase_env()
    kit = mock_kit(env)
    kit.executor.on("generate", exit_code=3, stderr="no generator")
    job = await run_job(env, workflow(FULL))
    assert job.status == "failed" and job.failure is not None
    assert job.failure.phase == "setup"
    assert kit.worktrees.active_worktrees() == []


async def test_partial_failure_status(autojump_clock: trio.testing.MockClock) -> None:
    env = mock_phase_env()
    kit = mock_kit(env)
    kit.executor.on("generate", stdout="2", effect=kit.writes("items.json", items(2).decode()))
    kit.executor.on("item1", exit_code=1)
    job = await run_job(env, workflow(FULL))
    assert job.status == "partial"
    assert (job.map.successful, job.map.failed) == (1, 1)
    assert job.to_json()["failed"] == 1


async def test_cancelling_the_whole_job_releases_every_worktree(
    autojump_clock: trio.testing.MockClock,
) -> None:
    env = mock_phase_env()
    kit = mock_kit(env)
    kit.executor.on("generate", stdout="6", effect=kit.writes("items.json", items(6).decode()))
    kit.executor.on("work", duration=100.0)
    wf = workflow(FULL)
    with trio.move_on_after(10):
        await run_new_job(wf, record_for(wf), variables={}, max_parallel=3).run(env)
    assert kit.worktrees.active_worktrees() == []
    record = await kit.store.job("job-1")
    assert record is not None and record.status is JobStatus.INTERRUPTED


def test_map_env_type() -> None:
    assert isinstance(mock_map_env(), MapEnv)


async def test_merge_block_that_cannot_resolve_is_tried_three_times(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wf = workflow(AGENTS + "\nmerge:\n  - shell: 'resolve ${merge.source_branch}'\n")
    env = mock_map_env(files={"shared.txt": b"base\n"})
    kit = mock_kit(env)
    kit.executor.on("work", duration=1.0, effect=kit.writes("shared.txt", lambda s: s.argv[-1]))
    kit.executor.on("resolve")  # changes nothing: the conflict stays
    results = await map_phase(env, wf, 2, 2)
    failed = [r for r in results.results if r.status == "failed"]
    assert len(failed) == 1 and failed[0].failure is not None
    assert failed[0].failure.kind == "merge_conflict"
    assert sum(1 for run in kit.executor.runs if "resolve" in run.spec.argv[-1]) == 3


async def test_resume_refuses_work_items_that_changed_even_with_force() -> None:
    from phases.jobs import resume_job

    env = mock_phase_env()
    kit = mock_kit(env)
    kit.executor.on("generate", stdout="2", effect=kit.writes("items.json", items(2).decode()))
    kit.executor.on("item1", exit_code=1)
    wf = workflow(FULL)
    first = await run_job(env, wf)
    assert first.status == "partial"
    record = await kit.store.job("job-1")
    assert record is not None
    # the input now has other items: the job's plan no longer matches
    changed = [{"name": "other"}, {"name": "item1"}]
    files = {**kit.worktrees.branch_files("forkmerge/job-1")}
    files["items.json"] = json.dumps(changed).encode()
    head = kit.worktrees.head_of("forkmerge/job-1")
    kit.repository.branches["forkmerge/job-1"] = kit.repository.commit(files, [head], "changed")
    resumed = await resume_job(
        wf, record, workflow_text="", variables={}, max_parallel=2, force=True, retry_failed=True
    ).run(env)
    job: JobResult = resumed.unwrap()
    assert job.failure is not None and job.failure.user_error
    assert "differ from those the job was planned with" in job.failure.message


async def test_a_dead_letter_retry_runs_a_finished_reduce_again_when_an_item_succeeds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from phases.jobs import resume_job

    env = mock_phase_env()
    kit = mock_kit(env)
    kit.executor.on("generate", stdout="2", effect=kit.writes("items.json", items(2).decode()))
    kit.executor.on("item1", exit_code=1, times=2)  # fails in the run and the first retry
    wf = workflow(FULL)
    assert (await run_job(env, wf)).status == "partial"

    async def retry() -> JobResult:
        record = await kit.store.job("job-1")
        assert record is not None
        resumed = await resume_job(
            wf, record, workflow_text="", variables={}, max_parallel=2, retry_failed=True
        ).run(env)
        job: JobResult = resumed.unwrap()
        return job

    def summaries() -> list[str]:
        return [run.spec.argv[-1] for run in kit.executor.runs if "summarize" in run.spec.argv[-1]]

    assert (await retry()).status == "partial"
    assert summaries() == ["summarize '1'/'2'"]  # no item succeeded anew: reduce stands
    assert (await retry()).status == "succeeded"
    assert summaries() == ["summarize '1'/'2'", "summarize '2'/'2'"]
    assert (await kit.store.phases("job-1"))["reduce"] is PhaseStatus.FINISHED
    summary = json.loads(kit.worktrees.branch_files("forkmerge/job-1")["summary.json"])
    assert [item["status"] for item in summary] == ["unchanged", "unchanged"]

"""Shared by the phase tests: parse a workflow, make a job record, run a new job."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from returns.result import Success

from envs.environment import MapEnv, PhaseEnv
from envs.job_records import JobRecord
from phases.jobs import new_job_record, run_new_job
from phases.results import JobResult
from pure.job_events import JobPlanned
from pure.work_planning import WorkAssignment
from pure.workflow import Workflow
from pure.workflow_parsing import parse_workflow


def workflow(text: str) -> Workflow:
    parsed = parse_workflow(text)
    assert isinstance(parsed, Success), parsed
    parsed_workflow: Workflow = parsed.unwrap()
    return parsed_workflow


def record_for(wf: Workflow, job_id: str = "job-1", text: str = "") -> JobRecord:
    return new_job_record(
        wf,
        job_id=job_id,
        workflow_path="flow.yml",
        workflow_text=text,
        repository="/repo",
        options={},
        now=1000.0,
    )


async def run_new(
    env: PhaseEnv, wf: Workflow, *, job_id: str = "job-1", max_parallel: int = 3, **options: Any
) -> JobResult:
    result = await run_new_job(
        wf, record_for(wf, job_id), variables={}, max_parallel=max_parallel, **options
    ).run(env)
    assert isinstance(result, Success), result
    job: JobResult = result.unwrap()
    return job


async def planned_job(env: MapEnv, assignments: Sequence[WorkAssignment]) -> None:
    """Record the map env's job and its plan, as run_workflow does before the map phase."""
    store = env.services.store
    wf = workflow("name: x\nmap:\n  input: x.json\n  agent_template:\n    - shell: x\n")
    await store.create_job(record_for(wf, env.job.job_id))
    await store.append(env.job.job_id, JobPlanned(tuple(a.item_key for a in assignments)))

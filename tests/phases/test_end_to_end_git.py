"""The whole job with real git (pygit2) and real processes, in temporary repositories."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from envs.demo_repository import create_repository
from envs.local import local_env
from envs.mock_store import MemoryJobStore
from phases.results import JobResult
from pure.workflow import Workflow
from tests.phases.helpers import run_new, workflow


def git(repo: str, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", repo, *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> str:
    items = [{"name": f"item{i:02d}", "n": i} for i in range(20)]
    return create_repository(
        str(tmp_path / "repo"),
        {"README.md": "hello\n", "items.json": json.dumps(items), "shared.txt": "base\n"},
    )


async def run_job(repo: str, wf: Workflow, *, max_parallel: int, **env: Any) -> JobResult:
    environment = local_env(repo, store=MemoryJobStore(), **env)
    return await run_new(environment, wf, job_id="job-test", max_parallel=max_parallel)


def leftovers(repo: str) -> tuple[list[str], list[str]]:
    worktrees = [
        line
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]
    branches = git(repo, "branch", "--format=%(refname:short)").split()
    return worktrees, branches


async def test_twenty_agents_each_writing_a_file_land_on_the_job_branch(repo: str) -> None:
    head_before = git(repo, "rev-parse", "HEAD")
    wf = workflow(
        """
name: twenty
map:
  input: items.json
  agent_template:
    - shell: "printf '%s' ${item.n} > out-${item.name}.txt"
"""
    )
    job = await run_job(repo, wf, max_parallel=4)
    assert job.status == "succeeded", job
    assert (job.map.total, job.map.successful) == (20, 20)
    files = git(repo, "ls-tree", "-r", "--name-only", job.job_branch).split()
    assert {f"out-item{i:02d}.txt" for i in range(20)} <= set(files)
    assert git(repo, "show", f"{job.job_branch}:out-item07.txt") == "7"
    worktrees, branches = leftovers(repo)
    assert len(worktrees) == 1  # only the user's own
    assert sorted(branches) == ["forkmerge/job-test", "main"]
    assert git(repo, "rev-parse", "HEAD") == head_before
    assert git(repo, "status", "--porcelain") == ""


async def test_two_agents_editing_the_same_line_give_one_merge_and_one_conflict(repo: str) -> None:
    wf = workflow(
        """
name: conflict
map:
  input: items.json
  max_items: 2
  agent_template:
    - shell: "sleep 0.2; printf '%s\\n' ${item.name} > shared.txt"
"""
    )
    job = await run_job(repo, wf, max_parallel=2)
    statuses = sorted(result.status for result in job.map.results)
    assert statuses == ["failed", "merged"]
    failed = next(result for result in job.map.results if result.status == "failed")
    assert failed.failure is not None and failed.failure.kind == "merge_conflict"
    assert failed.failure.paths == ("shared.txt",)
    winner = next(result for result in job.map.results if result.status == "merged")
    shared = git(repo, "show", f"{job.job_branch}:shared.txt")
    assert shared == f"{winner.item['name']}\n"
    worktrees, branches = leftovers(repo)
    assert len(worktrees) == 1 and sorted(branches) == ["forkmerge/job-test", "main"]


def _processes_with(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                cmdline = file.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(cmdline)
    return found


async def test_a_timed_out_step_leaves_no_background_process(repo: str) -> None:
    marker = "1000.4242"
    wf = workflow(
        f"""
name: timeout
map:
  input: items.json
  max_items: 1
  agent_template:
    - shell: "sleep {marker} & sleep {marker}"
      timeout: 0.5
"""
    )
    job = await run_job(repo, wf, max_parallel=1)
    assert job.map.results[0].status == "failed"
    failure = job.map.results[0].failure
    assert failure is not None and failure.step is not None and failure.step.timed_out
    deadline = time.monotonic() + 5
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(marker) == []
    worktrees, _ = leftovers(repo)
    assert len(worktrees) == 1


async def test_claude_steps_run_through_the_agent_command(repo: str, tmp_path: Path) -> None:
    agent = tmp_path / "fake-agent"
    agent.write_text("#!/bin/sh\nprintf '%s' \"$1\" > agent-said.txt\n")
    agent.chmod(0o755)
    wf = workflow(
        """
name: agent
map:
  input: items.json
  max_items: 1
  agent_template:
    - claude: "/fix ${item.name} $(rm -rf /) 'x'"
"""
    )
    job = await run_job(repo, wf, max_parallel=1, agent_command=(str(agent),))
    assert job.status == "succeeded"
    said = git(repo, "show", f"{job.job_branch}:agent-said.txt")
    assert said == "/fix item00 $(rm -rf /) 'x'"

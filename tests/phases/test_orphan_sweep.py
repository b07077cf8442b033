"""A starting job cleans up what failed cleanups of completed jobs left, and nothing else."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import trio

from envs.demo_repository import create_repository
from envs.git_worktrees import GitWorktreeManager
from envs.job_lock import JobLock
from envs.job_records import JobStatus
from envs.local import state_layout
from envs.protocols import Worktree
from envs.worktree_layout import job_branch
from phases.__main__ import main
from phases.orphan_sweep import sweep_finished_jobs
from tests.envs.conftest import ok
from tests.envs.orphan_scene import init_repository, isolate_git, record

WORKFLOW = """\
name: sweep
map:
  input: items.json
  agent_template:
    - shell: "printf x > ${item.name}.txt"
"""


async def _leftovers(repo: str) -> dict[str, Worktree]:
    """Leftovers of four jobs: what each label's job status and marker make of them."""
    layout = state_layout(repo)
    manager = GitWorktreeManager(repo, state_dir=layout.worktrees)
    with layout.open_store() as store:
        await store.create_job(record("done", JobStatus.COMPLETED))
        await store.create_job(record("busy", JobStatus.COMPLETED))
        await store.create_job(record("stopped", JobStatus.INTERRUPTED))
    made: dict[str, Worktree] = {}
    for job in ("done", "busy", "stopped"):
        made[job] = ok(await manager.create_job_worktree(job))
    for label in ("done/a", "done/kept", "busy/a", "stopped/a"):
        job, name = label.split("/")
        made[label] = ok(await manager.create_agent_worktree(name, job_branch(job)))
    ok(await manager.keep_worktree(made["done/kept"]))
    return made


def test_a_new_run_removes_the_leftovers_of_completed_jobs_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    isolate_git(monkeypatch)
    files = {"flow.yml": WORKFLOW, "items.json": json.dumps([{"name": "one"}])}
    repo = create_repository(str(tmp_path / "repo"), files).rstrip("/")
    made = trio.run(_leftovers, repo)
    layout = state_layout(repo)

    with JobLock(layout.locks, "busy"):  # a live process holds it: active, not swept
        assert main(["run", f"{repo}/flow.yml", "--repo", repo, "--json"]) == 0

    captured = capsys.readouterr()
    gone = {label for label, worktree in made.items() if not os.path.exists(worktree.path)}
    assert gone == {"done", "done/a"}
    assert "cleaned up after completed job done: removed 2 worktrees and 0 branches" in (
        captured.err
    )
    assert json.loads(captured.out)["status"] == "succeeded"  # the new job ran as usual
    branches = os.listdir(os.path.join(repo, ".git", "refs", "heads", "forkmerge-agents"))
    assert sorted(branches) == ["busy", "done", "stopped"]  # done/kept's branch stays
    assert os.listdir(os.path.join(repo, ".git", "refs", "heads", "forkmerge-agents", "done")) == [
        "kept"
    ]


def test_with_nothing_to_sweep_nothing_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_git(monkeypatch)
    repo = init_repository(str(tmp_path / "repo"))
    err = io.StringIO()
    assert sweep_finished_jobs(state_layout(repo), {}, err) is None
    assert err.getvalue() == ""


def test_a_sweep_that_cannot_scan_warns_and_lets_the_job_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_git(monkeypatch)
    repo = init_repository(str(tmp_path / "repo"))

    def broken(*_args: object) -> object:
        raise OSError(5, "Input/output error", os.path.join(repo, ".git", "worktrees"))

    monkeypatch.setattr("phases.orphan_sweep.scan_leftovers", broken)
    err = io.StringIO()
    assert sweep_finished_jobs(state_layout(repo), {}, err) is None
    assert err.getvalue().startswith(
        "warning: could not look for leftovers of completed jobs: [Errno 5] Input/output error"
    )

"""Metrics: run --json resources, status --json metrics, pool hits and misses."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from envs.demo_repository import create_repository
from phases.__main__ import main

WORKFLOW = """\
name: metrics
map:
  input: items.json
  max_parallel: 2
  agent_template:
    - shell: "printf x > ${item.name}.txt"
"""


@pytest.fixture
def repo(tmp_path: Path) -> str:
    items = [{"name": f"i{n}"} for n in range(6)]
    return create_repository(
        str(tmp_path / "repo"), {"items.json": json.dumps(items), "flow.yml": WORKFLOW}
    )


def run_json(repo: str, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, object]:
    assert main(["run", f"{repo}/flow.yml", "--repo", repo, "--json", *extra]) == 0
    payload: dict[str, object] = json.loads(capsys.readouterr().out)
    return payload


def test_pooled_run_reuses_worktrees_and_status_reports_it(
    repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = run_json(repo, capsys)
    resources = payload["resources"]
    assert isinstance(resources, dict)
    pool = resources["pool"]
    assert (pool["hits"], pool["misses"], pool["peak_slots"]) == (4, 2, 2)
    assert main(["status", str(payload["job_id"]), "--repo", repo, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert metrics["last_run"]["pool_hits"] == 4
    assert metrics["last_run"]["cleanups"] == 6
    assert metrics["worktrees"]["worktrees"] == 0  # everything was released
    assert metrics["repository_worktrees"] == 0


def test_unpooled_run_creates_a_worktree_per_agent(
    repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = run_json(repo, capsys, "--no-pool")
    resources = payload["resources"]
    assert isinstance(resources, dict)
    assert (resources["pool"]["hits"], resources["pool"]["misses"]) == (0, 6)


GATED_WORKFLOW = """\
name: gated
map:
  input: items.json
  max_parallel: 2
  agent_template:
    - shell: "while [ ! -e ${GATE} ]; do sleep 0.02; done; printf x > ${item.name}.txt"
env:
  GATE: "{gate}"
"""


def _status(repo: str, job_id: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["status", job_id, "--repo", repo, "--json"]) == 0
    metrics: dict[str, Any] = json.loads(capsys.readouterr().out)["metrics"]
    return metrics


def test_status_of_a_running_job_shows_its_pool_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = tmp_path / "gate"
    items = [{"name": f"i{n}"} for n in range(4)]
    repo = create_repository(
        str(tmp_path / "repo"),
        {"items.json": json.dumps(items), "flow.yml": GATED_WORKFLOW.replace("{gate}", str(gate))},
    )
    with subprocess.Popen(
        [sys.executable, "-m", "phases", "run", f"{repo}/flow.yml", "--repo", repo, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as job:
        try:
            metrics = _wait_for_live_figures(repo, capsys)
            assert metrics["running"] is True
            live = metrics["last_run"]
            assert (live["live"], live["agents_running"], live["pool_slots"]) == (True, 2, 2)
            assert metrics["agents_running"] == 2
            assert main(["status", live["job_id"], "--repo", repo]) == 0
            text = capsys.readouterr().out
            assert "  now: 2 agents and 2 commands running, 2 pool worktrees; " in text
        finally:
            gate.touch()
        out, _ = job.communicate(timeout=60)
    assert job.returncode == 0
    job_id = json.loads(out)["job_id"]
    final = _status(repo, job_id, capsys)
    assert final["running"] is False
    assert (final["last_run"]["live"], final["last_run"]["cleanups"]) == (False, 4)
    assert final["agents_running"] == 0


def _wait_for_live_figures(repo: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """Poll ``status`` until the running job's two agents hold their worktrees and run
    their commands (published within a second)."""
    deadline = time.monotonic() + 60
    seen: object = None
    while time.monotonic() < deadline:
        assert main(["jobs", "--repo", repo, "--json"]) == 0
        jobs = json.loads(capsys.readouterr().out)
        if jobs:
            metrics = seen = _status(repo, jobs[0]["job_id"], capsys)
            figures = metrics["last_run"] or {}
            if metrics["running"] and (
                figures.get("agents_running"),
                figures.get("processes_running"),
            ) == (2, 2):
                return metrics
        time.sleep(0.05)
    raise AssertionError(f"the running job never published two agents running: {seen}")

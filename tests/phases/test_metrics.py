"""Metrics: run --json resources, status --json metrics, pool hits and misses."""

from __future__ import annotations

import json
from pathlib import Path

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

"""The command line: exit codes, messages, --json, --merge, demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from envs.demo_repository import create_repository
from phases.__main__ import main
from phases.demo import demo_command

WORKFLOW = """\
name: cli-test
env:
  TOKEN:
    secret: true
    value: hunter2
map:
  input: items.json
  agent_template:
    - shell: "printf '%s' ${item.name} > ${item.name}.txt"
  max_parallel: 2
"""


def git(repo: str, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", repo, *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> str:
    items = [{"name": name} for name in ("a", "b", "c")]
    return create_repository(
        str(tmp_path / "repo"), {"items.json": json.dumps(items), "flow.yml": WORKFLOW}
    )


def test_validate_ok(repo: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", f"{repo}/flow.yml"]) == 0
    assert "valid workflow 'cli-test'" in capsys.readouterr().out


def test_validate_reports_problems_with_lines_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("name: x\nmap:\n  input: a.json\n  max_paralel: 3\n  agent_template: []\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "max_paralel" in err and "max_parallel" in err and ":4:" in err
    assert "Traceback" not in err


def test_missing_workflow_file_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "/nonexistent/flow.yml"]) == 2
    assert "cannot read the workflow" in capsys.readouterr().err


def test_bad_arguments_are_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 2
    assert main(["frobnicate"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_run_outside_a_repository_is_exit_2(
    tmp_path: Path, repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", f"{repo}/flow.yml", "--repo", str(tmp_path / "nowhere")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_run_with_a_missing_input_file_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = create_repository(str(tmp_path / "r"), {"flow.yml": WORKFLOW})
    assert main(["run", f"{repo}/flow.yml", "--repo", repo]) == 2
    assert "items.json" in capsys.readouterr().err


def test_unknown_profile_is_exit_2(repo: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", f"{repo}/flow.yml", "--repo", repo, "--profile", "prod"]) == 2
    assert "unknown profile 'prod'" in capsys.readouterr().err


def test_run_json_summary(repo: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", f"{repo}/flow.yml", "--repo", repo, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["status"] == "succeeded"
    assert (payload["total"], payload["successful"], payload["failed"]) == (3, 3, 0)
    assert payload["job_branch"] == f"forkmerge/{payload['job_id']}"
    assert [item["status"] for item in payload["items"]] == ["merged"] * 3
    assert git(repo, "show", f"{payload['job_branch']}:b.txt") == "b"


def test_failed_items_give_exit_1(repo: str, capsys: pytest.CaptureFixture[str]) -> None:
    failing = Path(repo) / "failing.yml"
    failing.write_text(WORKFLOW.replace("printf", "test ${item.name} != b && printf"))
    git(repo, "add", "failing.yml")
    git(repo, "commit", "-qm", "failing workflow")
    assert main(["run", str(failing), "--repo", repo]) == 1
    out = capsys.readouterr().out
    assert "partial" in out and "exit code 1" in out


def test_merge_brings_the_job_into_the_users_branch(
    repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", f"{repo}/flow.yml", "--repo", repo, "--merge"]) == 0
    assert "fast-forwarded main" in capsys.readouterr().out
    assert (Path(repo) / "a.txt").read_text() == "a"
    assert git(repo, "status", "--porcelain") == ""


def test_plan_shows_assignments_and_runs_nothing(
    repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", f"{repo}/flow.yml", "--repo", repo]) == 0
    out = capsys.readouterr().out
    assert "map: 3 items" in out and "agent-0002-c-" in out
    assert git(repo, "branch", "--format=%(refname:short)").split() == ["main"]


def test_demo_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo_command(sys.stdout, sys.stderr, directory=str(tmp_path)) == 0
    assert "8/8 items succeeded" in capsys.readouterr().out

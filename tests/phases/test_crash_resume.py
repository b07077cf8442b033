"""Crash tests: kill a real ``python -m phases run`` at random moments, resume, repeat.

After the last resume every item's change must be on the job branch exactly
once, the dead-letter queue must hold exactly the items that really fail,
the job must be complete, and no worktree or agent branch may be left.
``FORKMERGE_STRESS_ROUNDS`` (``make stress``) raises the number of kills.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from envs.demo_repository import create_repository

ITEMS = 100
FAILING = {n for n in range(ITEMS) if n % 23 == 7}  # 7, 30, 53, 76, 99
WORKFLOW = """\
name: crash
map:
  input: items.json
  max_parallel: 8
  agent_template:
    - shell: "test $(( ${item.n} % 23 )) -ne 7"
    - shell: "sleep 0.${item.d}; printf '%s\\\\n' ${item.n} > out-${item.n}.txt"
"""


def git(repo: str, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", repo, *args], check=True, capture_output=True, text=True
    ).stdout


def phases(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "phases", *args], capture_output=True, text=True, timeout=120
    )


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "phases", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def kill_after(process: subprocess.Popen[str], delay: float, sig: int) -> bool:
    """Send ``sig`` after ``delay`` seconds unless it ended; True if it was still running."""
    try:
        process.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, sig)
        process.wait(timeout=60)
        return True


def job_id_of(repo: str) -> str | None:
    listed = phases("jobs", "--repo", repo, "--json")
    assert listed.returncode == 0, listed.stderr
    jobs = json.loads(listed.stdout)
    return str(jobs[0]["job_id"]) if jobs else None


@pytest.fixture
def repo(tmp_path: Path) -> str:
    items = [{"n": n, "d": n % 10} for n in range(ITEMS)]
    return create_repository(
        str(tmp_path / "repo"), {"items.json": json.dumps(items), "flow.yml": WORKFLOW}
    )


def check_final_state(repo: str, job_id: str) -> None:
    branch = f"forkmerge/{job_id}"
    files = set(git(repo, "ls-tree", "-r", "--name-only", branch).split())
    expected = {f"out-{n}.txt" for n in range(ITEMS) if n not in FAILING}
    assert {name for name in files if name.startswith("out-")} == expected
    # exactly one merge per item that succeeded: no duplicate, none missing
    subjects = git(repo, "log", "--merges", "--format=%s", branch).splitlines()
    merged = Counter(re.search(r"agent-(\d{4})", s).group(1) for s in subjects)  # type: ignore[union-attr]
    assert set(merged) == {f"{n:04d}" for n in range(ITEMS) if n not in FAILING}
    assert set(merged.values()) == {1}
    # every change once: each file holds its own number exactly
    for n in (0, 42, 98):
        assert git(repo, "show", f"{branch}:out-{n}.txt") == f"{n}\n"
    dlq = json.loads(phases("dlq", "list", job_id, "--repo", repo, "--json").stdout)
    assert {entry["index"] for entry in dlq} == FAILING
    status = json.loads(phases("status", job_id, "--repo", repo, "--json").stdout)
    assert status["status"] == "completed"
    assert (status["done"], status["failed"], status["remaining"]) == (95, 5, 0)
    worktrees = [
        line
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]
    assert len(worktrees) == 1
    assert sorted(git(repo, "branch", "--format=%(refname:short)").split()) == [branch, "main"]


def resume_until_done(repo: str, job_id: str, rounds: int, rng: random.Random) -> None:
    for _ in range(rounds):
        process = start("resume", job_id, "--repo", repo)
        kill_after(process, rng.uniform(0.4, 2.0), signal.SIGKILL)
    final = phases("resume", job_id, "--repo", repo)
    if final.returncode == 2 and "nothing to resume" in final.stderr:
        return  # an earlier resume finished the job before it was killed
    assert final.returncode == 1, final.stderr  # the failing items: partial
    assert phases("resume", job_id, "--repo", repo).returncode == 2  # complete now


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(repo: str) -> None:
    rng = random.Random(int(os.environ.get("FORKMERGE_CRASH_SEED", time.time())))
    rounds = int(os.environ.get("FORKMERGE_STRESS_ROUNDS", "3"))
    first = start("run", f"{repo}/flow.yml", "--repo", repo)
    kill_after(first, rng.uniform(1.0, 2.5), signal.SIGKILL)
    job_id = job_id_of(repo)
    if job_id is None:  # killed before the job was recorded: nothing to resume
        first = start("run", f"{repo}/flow.yml", "--repo", repo)
        first.wait(timeout=120)
        job_id = job_id_of(repo)
        assert job_id is not None
    resume_until_done(repo, job_id, rounds, rng)
    check_final_state(repo, job_id)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_stop_cleanly_and_resume(repo: str, sig: int) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "phases", "run", f"{repo}/flow.yml", "--repo", repo],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while job_id_of(repo) is None and time.monotonic() < deadline:
        time.sleep(0.1)  # the handlers are in place once the job is recorded
    time.sleep(0.5)
    os.killpg(process.pid, sig)
    _, stderr = process.communicate(timeout=60)
    job_id = job_id_of(repo)
    assert job_id is not None
    if process.returncode == 130:
        assert f"python -m phases resume {job_id}" in stderr
        status = json.loads(phases("status", job_id, "--repo", repo, "--json").stdout)
        assert status["status"] == "interrupted"
        worktrees = git(repo, "worktree", "list", "--porcelain").count("worktree ")
        assert worktrees == 1  # released before the process exited
        assert phases("resume", job_id, "--repo", repo).returncode == 1
    check_final_state(repo, job_id)

"""The job commands on real repositories: jobs, status, dlq list/show/retry/purge, resume, events.

Each agent appends its item's name to a log outside the repository (to count
how often each item ran) and succeeds only when a marker file for its item
exists outside the repository, so a test decides which items fail and can
mend them before a retry; a ``slow-<name>`` file there makes the item's
agent hang (to interrupt it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from envs.demo_repository import create_repository
from envs.job_lock import JobLock
from envs.local import state_layout
from phases.__main__ import main
from pure.job_events import ItemSkipped

NAMES = ("a", "b", "c")

FLOW = """\
name: jobs-test
map:
  input: items.json
  agent_template:
    - shell: >-
        echo ${{item.name}} >> {runs}
        && {{ test ! -f {markers}/slow-${{item.name}} || sleep 60; }}
        && {{ test -f {markers}/marker-${{item.name}}
        || {{ echo no marker for ${{item.name}}; exit 3; }}; }}
        && printf x > ${{item.name}}.txt
  max_parallel: {max_parallel}
{policy}"""


@attrs.frozen
class Outcome:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@attrs.define
class Scene:
    """A repository with the workflow ``flow.yml``, its markers and the agents' run log."""

    tmp: Path
    repo: str
    capsys: pytest.CaptureFixture[str]

    @property
    def flow(self) -> Path:
        return Path(self.repo) / "flow.yml"

    def cli(self, *args: str) -> Outcome:
        self.capsys.readouterr()
        code = main([*args, "--repo", self.repo])
        captured = self.capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    def mend(self, *names: str) -> None:
        for name in names:
            (self.tmp / "markers" / f"marker-{name}").touch()

    def run(self) -> str:
        """Run ``flow.yml``; the new job's id."""
        outcome = self.cli("run", str(self.flow), "--json")
        assert outcome.code in (0, 1), outcome
        job_id: str = outcome.json()["job_id"]
        return job_id

    def runs(self) -> dict[str, int]:
        log = self.tmp / "runs.log"
        ran = log.read_text().split() if log.exists() else []
        return {name: ran.count(name) for name in NAMES}

    def git(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", self.repo, *args], capture_output=True, text=True)

    def branch_file(self, job_id: str, path: str) -> str | None:
        shown = self.git("show", f"forkmerge/{job_id}:{path}")
        return shown.stdout if shown.returncode == 0 else None

    def leftovers(self) -> tuple[list[str], list[str]]:
        """Worktrees and branches besides the repository's own and the job branches."""
        listed = self.git("worktree", "list", "--porcelain").stdout.splitlines()
        worktrees = [line for line in listed if line.startswith("worktree ")][1:]
        branches = self.git("branch", "--format=%(refname:short)").stdout.split()
        agents = [b for b in branches if b != "main" and not b.startswith("forkmerge/")]
        return worktrees, agents

    def edit_flow(self, addition: str) -> None:
        self.flow.write_text(self.flow.read_text() + addition)
        self.git("commit", "-qam", "edit the workflow")


def make_scene(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *,
    policy: str = "",
    max_parallel: int = 2,
) -> Scene:
    (tmp_path / "markers").mkdir()
    flow = FLOW.format(
        runs=tmp_path / "runs.log",
        markers=tmp_path / "markers",
        max_parallel=max_parallel,
        policy=policy,
    )
    items = json.dumps([{"name": name} for name in NAMES])
    repo = create_repository(str(tmp_path / "repo"), {"items.json": items, "flow.yml": flow})
    return Scene(tmp_path, repo, capsys)


@pytest.fixture
def scene(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Scene:
    return make_scene(tmp_path, capsys)


@pytest.fixture
def stopped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Scene, str]:
    """A job stopped by ``continue_on_failure: false`` at item b: c never started."""
    scene = make_scene(tmp_path, capsys, policy="continue_on_failure: false\n", max_parallel=1)
    scene.mend("a", "c")
    job_id = scene.run()
    assert scene.runs() == {"a": 1, "b": 1, "c": 0}
    return scene, job_id


def one_line(text: str) -> bool:
    return text.count("\n") == 1 and text.endswith("\n") and "Traceback" not in text


# --- jobs and status ---------------------------------------------------------------------------


def test_jobs_and_status_report_progress_phases_and_the_dead_letter_queue(scene: Scene) -> None:
    assert scene.cli("jobs", "--json").json() == []
    assert scene.cli("jobs").out == "no jobs in this repository\n"
    scene.mend("a", "c")
    job_id = scene.run()

    listed = scene.cli("jobs", "--json")
    assert listed.code == 0
    [job] = listed.json()
    assert {k: job[k] for k in ("job_id", "status", "total", "done", "failed")} == {
        "job_id": job_id,
        "status": "completed",  # every item processed; b waits in the dead-letter queue
        "total": 3,
        "done": 2,
        "failed": 1,
    }
    assert (job["remaining"], job["percent"]) == (0, 100.0)
    assert job["job_branch"] == f"forkmerge/{job_id}"
    plain = scene.cli("jobs").out
    assert plain.startswith(f"{job_id}  completed") and "3/3 (100%), 1 failed" in plain

    status = scene.cli("status", job_id, "--json")
    assert status.code == 0
    payload = status.json()
    assert payload["job_id"] == job_id
    assert payload["phases"] == {"setup": "finished", "map": "finished", "reduce": "finished"}
    assert payload["dead_letter"] == 1 and payload["runner_pid"] is None
    assert (payload["total"], payload["done"], payload["failed"]) == (3, 2, 1)
    assert payload["duration"] > 0
    text = scene.cli("status", job_id).out
    assert f"job {job_id} (jobs-test): completed" in text
    assert "3 total, 2 done, 1 failed, 0 skipped, 0 running, 0 remaining" in text


# --- the dead-letter queue ---------------------------------------------------------------------


def test_dead_letter_round_trip_list_show_retry(scene: Scene) -> None:
    scene.mend("a", "c")
    job_id = scene.run()
    assert scene.branch_file(job_id, "b.txt") is None

    listed = scene.cli("dlq", "list", job_id)
    assert listed.code == 0
    [line] = listed.out.splitlines()
    # the error summary is bounded (300 characters) and says the reason first
    assert line.startswith("00001-")
    assert line.endswith("attempts: exit code 3 in step 1: no marker for b")
    [entry] = scene.cli("dlq", "list", job_id, "--json").json()
    assert (entry["index"], entry["attempts"]) == (1, 1)
    assert entry["error"] == "exit code 3 in step 1: no marker for b"

    shown = scene.cli("dlq", "show", job_id, "1")
    assert shown.code == 0
    assert shown.out.startswith(f"item {entry['item_key']} (index 1): failed, 1 attempts\n")
    assert "  exit code: 3\n" in shown.out
    assert "  output (end):\n    no marker for b\n" in shown.out
    assert "  step: echo 'b' >> " in shown.out and "test -f" in shown.out
    assert scene.cli("dlq", "show", job_id, entry["item_key"]).out == shown.out

    scene.mend("b")
    retried = scene.cli("dlq", "retry", job_id)
    assert retried.code == 0, retried
    assert f"job {job_id}: succeeded" in retried.out
    assert scene.branch_file(job_id, "b.txt") == "x"
    assert scene.branch_file(job_id, "a.txt") == "x"
    assert scene.runs() == {"a": 1, "b": 2, "c": 1}  # merged items were not run again
    assert scene.cli("dlq", "list", job_id).out == (
        f"the dead-letter queue of job {job_id} is empty\n"
    )
    assert scene.cli("dlq", "list", job_id, "--json").json() == []
    status = scene.cli("status", job_id, "--json").json()
    assert (status["done"], status["failed"], status["dead_letter"]) == (3, 0, 0)
    assert status["status"] == "completed"
    assert scene.leftovers() == ([], [])


def test_dead_letter_retry_that_fails_again_keeps_the_item_in_the_queue(scene: Scene) -> None:
    scene.mend("a", "c")
    job_id = scene.run()
    retried = scene.cli("dlq", "retry", job_id, "--json")
    assert retried.code == 1
    assert retried.json()["status"] == "partial"
    [entry] = scene.cli("dlq", "list", job_id, "--json").json()
    assert (entry["index"], entry["attempts"]) == (1, 2)
    assert scene.runs() == {"a": 1, "b": 2, "c": 1}
    assert scene.leftovers() == ([], [])


def test_dead_letter_purge_turns_failed_items_into_skipped_ones(scene: Scene) -> None:
    scene.mend("a")
    job_id = scene.run()
    assert scene.cli("status", job_id, "--json").json()["failed"] == 2

    purged = scene.cli("dlq", "purge", job_id)
    assert purged.code == 0
    assert purged.out == f"purged 2 items from the dead-letter queue of job {job_id}\n"
    status = scene.cli("status", job_id, "--json").json()
    assert (status["skipped"], status["failed"], status["dead_letter"]) == (2, 0, 0)
    assert scene.cli("dlq", "list", job_id, "--json").json() == []
    events = [json.loads(line) for line in scene.cli("events", job_id).out.splitlines()]
    skipped = [e for e in events if e["kind"] == "item-skipped"]
    assert [e["reason"] for e in skipped] == ["purged from the dead-letter queue"] * 2

    # purged items are given up on: a retry does not run them
    scene.mend("b", "c")
    assert scene.cli("dlq", "retry", job_id).code == 1
    assert scene.runs() == {"a": 1, "b": 1, "c": 1}
    assert scene.branch_file(job_id, "b.txt") is None


# --- resume ------------------------------------------------------------------------------------


def test_resume_of_a_complete_job_is_refused(scene: Scene) -> None:
    scene.mend(*NAMES)
    job_id = scene.run()
    refused = scene.cli("resume", job_id)
    assert refused.code == 2 and refused.out == ""
    assert one_line(refused.err) and "nothing to resume" in refused.err
    assert scene.runs() == {"a": 1, "b": 1, "c": 1}


def test_resume_refuses_a_changed_workflow_unless_forced(stopped: tuple[Scene, str]) -> None:
    scene, job_id = stopped
    [job] = scene.cli("jobs", "--json").json()
    assert (job["status"], job["remaining"], job["failed"]) == ("failed", 1, 1)

    scene.edit_flow("# tuned after the failure\n")
    refused = scene.cli("resume", job_id)
    assert refused.code == 2 and one_line(refused.err)
    assert "changed since" in refused.err and str(scene.flow) in refused.err
    assert "--force" in refused.err
    assert scene.runs() == {"a": 1, "b": 1, "c": 0}
    assert scene.cli("status", job_id, "--json").json()["remaining"] == 1

    forced = scene.cli("resume", job_id, "--force", "--json")
    assert forced.code == 1  # b is still in the dead-letter queue
    result = forced.json()
    assert result["job_id"] == job_id and result["status"] == "partial"
    assert [item["status"] for item in result["items"]] == ["merged", "failed", "merged"]
    assert scene.runs() == {"a": 1, "b": 1, "c": 1}
    assert scene.branch_file(job_id, "c.txt") == "x"
    status = scene.cli("status", job_id, "--json").json()
    assert (status["status"], status["done"], status["remaining"]) == ("completed", 2, 0)
    assert scene.leftovers() == ([], [])


def test_resume_while_another_process_holds_the_job_is_refused(
    stopped: tuple[Scene, str],
) -> None:
    scene, job_id = stopped
    lock = JobLock(state_layout(scene.repo).locks, job_id)
    lock.acquire()
    try:
        for command in (("resume", job_id), ("dlq", "retry", job_id), ("dlq", "purge", job_id)):
            refused = scene.cli(*command)
            assert refused.code == 2, command
            assert one_line(refused.err)
            assert f"job {job_id} is being run by process {os.getpid()}" in refused.err
        status = scene.cli("status", job_id, "--json").json()
        assert status["runner_pid"] == os.getpid()
        assert f"running now in process {os.getpid()}" in scene.cli("status", job_id).out
        assert scene.runs() == {"a": 1, "b": 1, "c": 0}
        assert scene.cli("status", job_id, "--json").json()["failed"] == 1  # not purged
    finally:
        lock.release()
    resumed = scene.cli("resume", job_id)
    assert resumed.code == 1 and scene.runs() == {"a": 1, "b": 1, "c": 1}


# --- events ------------------------------------------------------------------------------------


def test_events_prints_the_log_as_json_lines_in_order(scene: Scene) -> None:
    scene.mend("a", "c")
    job_id = scene.run()
    printed = scene.cli("events", job_id)
    assert printed.code == 0
    events = [json.loads(line) for line in printed.out.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    kinds = [e["kind"] for e in events]
    assert kinds[:4] == ["phase-started", "phase-finished", "job-planned", "phase-started"]
    assert kinds[-1] == "phase-finished" and events[-1]["phase"] == "reduce"
    planned = next(e for e in events if e["kind"] == "job-planned")
    for key in planned["item_keys"]:
        mine = [e["kind"] for e in events if e.get("item_key") == key]
        assert mine in (
            ["item-started", "item-succeeded", "item-merged"],
            ["item-started", "item-failed"],
        )
    failed = next(e for e in events if e["kind"] == "item-failed")
    assert failed["exit_code"] == 3 and "test -f" in failed["step"]
    # --follow returns once no process runs the job and every event is printed
    assert scene.cli("events", job_id, "--follow").out == printed.out


# --- mistakes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("status", "nope"),
        ("status", "nope", "--json"),
        ("events", "nope"),
        ("resume", "nope"),
        ("dlq", "list", "nope"),
        ("dlq", "show", "nope", "0"),
        ("dlq", "retry", "nope"),
        ("dlq", "purge", "nope"),
    ],
)
def test_an_unknown_job_is_one_line_and_exit_2(scene: Scene, command: tuple[str, ...]) -> None:
    refused = scene.cli(*command)
    assert refused.code == 2 and refused.out == ""
    assert one_line(refused.err) and refused.err.startswith("no job 'nope' in this repository")


def test_an_unknown_item_is_one_line_and_exit_2(scene: Scene) -> None:
    scene.mend(*NAMES)
    job_id = scene.run()
    refused = scene.cli("dlq", "show", job_id, "zz")
    assert refused.code == 2 and one_line(refused.err)
    assert f"job {job_id} has no item 'zz'" in refused.err


# --- more of status, dlq show, events --follow, interrupted resume ------------------------------


def test_status_of_a_stopped_job_says_how_to_resume_it(stopped: tuple[Scene, str]) -> None:
    scene, job_id = stopped
    text = scene.cli("status", job_id).out
    assert f"job {job_id} (jobs-test): failed" in text
    assert "1 failed, 0 skipped, 0 running, 1 remaining" in text
    repo = os.path.normpath(scene.repo)
    assert f"  resume with: python -m phases resume {job_id} --repo {repo}\n" in text
    payload = scene.cli("status", job_id, "--json").json()
    assert payload["phases"] == {"setup": "finished", "map": "failed"}


def test_dlq_show_of_an_item_that_never_failed(scene: Scene) -> None:
    scene.mend(*NAMES)
    job_id = scene.run()
    shown = scene.cli("dlq", "show", job_id, "0")
    assert shown.code == 0
    assert shown.out.endswith("(index 0): merged, 1 attempts\n  no failure recorded\n")


def test_events_follow_prints_new_events_until_the_runner_is_gone(scene: Scene) -> None:
    scene.mend("a", "c")
    job_id = scene.run()
    before = scene.cli("events", job_id).out.splitlines()
    layout = state_layout(scene.repo)
    lock = JobLock(layout.locks, job_id)
    lock.acquire()
    key = json.loads(before[2])["item_keys"][1]  # job-planned: b is the failed item

    def runner() -> None:
        # A process running the job appends an event, then stops.
        time.sleep(0.1)
        with layout.open_store() as store:
            trio.run(store.append, job_id, ItemSkipped(key, "given up", time.time()))
        time.sleep(0.1)
        lock.release()

    thread = threading.Thread(target=runner)
    thread.start()
    try:
        followed = scene.cli("events", job_id, "--follow")
    finally:
        thread.join()
    lines = followed.out.splitlines()
    assert followed.code == 0 and lines[: len(before)] == before
    [new] = [json.loads(line) for line in lines[len(before) :]]
    assert new["seq"] == len(before) + 1 and new["kind"] == "item-skipped"
    assert new["item_key"] == key and new["reason"] == "given up"


def test_an_interrupted_resume_says_how_to_resume_and_the_job_resumes(
    stopped: tuple[Scene, str],
) -> None:
    scene, job_id = stopped
    (scene.tmp / "markers" / "slow-c").touch()

    def interrupt() -> None:
        # Ctrl-C once c's agent has started (the job is then inside trio, handling SIGINT).
        deadline = time.monotonic() + 20
        while scene.runs()["c"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=interrupt)
    thread.start()
    try:
        interrupted = scene.cli("resume", job_id)
    finally:
        thread.join()
    assert interrupted.code == 130
    assert interrupted.err.endswith(
        f"interrupted: job {job_id} stopped again; resume it with:\n"
        f"  python -m phases resume {job_id} --repo {os.path.normpath(scene.repo)}\n"
    )
    status = scene.cli("status", job_id, "--json").json()
    assert status["status"] == "interrupted" and status["runner_pid"] is None
    assert scene.leftovers() == ([], [])  # the agent's worktree and branch were removed

    (scene.tmp / "markers" / "slow-c").unlink()
    resumed = scene.cli("resume", job_id)
    assert resumed.code == 1  # b is still in the dead-letter queue
    assert scene.runs() == {"a": 1, "b": 1, "c": 2}
    assert scene.branch_file(job_id, "c.txt") == "x"
    assert scene.leftovers() == ([], [])


@pytest.mark.parametrize("command", [("resume",), ("dlq", "retry")])
def test_max_parallel_of_a_resume_is_checked_and_applied(
    stopped: tuple[Scene, str], command: tuple[str, ...]
) -> None:
    scene, job_id = stopped
    refused = scene.cli(*command, job_id, "--max-parallel", "0")
    assert refused.code == 2 and one_line(refused.err)
    assert "--max-parallel must be at least 1, found 0" in refused.err
    assert scene.runs()["c"] == 0
    resumed = scene.cli(*command, job_id, "--max-parallel", "3")
    assert resumed.code == 1 and "at most 3 at once" in resumed.err


def test_a_purge_of_an_unknown_job_leaves_no_lock_behind(scene: Scene) -> None:
    refused = scene.cli("dlq", "purge", "x/y/z")
    assert refused.code == 2 and one_line(refused.err)
    locks = Path(state_layout(scene.repo).locks)
    assert not locks.exists() or list(locks.iterdir()) == []

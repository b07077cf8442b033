"""``jobs prune`` on a real repository with jobs in every state and age (see prune_scene)."""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from phases.__main__ import _parser, main
from tests.envs.orphan_scene import init_repository, isolate_git
from tests.envs.prune_scene import (
    STRANGERS,
    USER_BRANCHES,
    PruneScene,
    build_prune_scene,
    job_files,
)


@pytest.fixture
def scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PruneScene]:
    isolate_git(monkeypatch)
    repo = init_repository(str(tmp_path / "repo"))
    with ExitStack() as locks:
        yield trio.run(build_prune_scene, repo, locks)


@attrs.frozen
class Outcome:
    code: int
    out: str
    err: str

    def lines(self) -> list[str]:
        return self.out.splitlines()

    def json(self) -> Any:
        return json.loads(self.out)

    def line_of(self, start: str) -> str:
        (line,) = [line for line in self.lines() if line.startswith(start)]
        return line


def prune(scene: PruneScene, capsys: pytest.CaptureFixture[str], *args: str) -> Outcome:
    code = main(["jobs", "prune", "--repo", scene.repo, *args])
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def files_of(*job_ids: str) -> set[str]:
    return {relative for job_id in job_ids for relative in job_files(job_id)}


PRUNED_BY_AGE = ("done", "broke")
KEPT = ("fresh", "stopped", "crashed", "live", "busy")


def snapshot(scene: PruneScene) -> tuple[object, ...]:
    """Everything pruning could change: files (with contents), database rows, branches."""
    contents = {}
    for relative in sorted(scene.state_files()):
        with open(scene.path(relative), "rb") as file:
            contents[relative] = file.read()
    return (contents, scene.database_rows(), scene.branches(), scene.git("worktree", "list"))


# -- what goes and what stays ---------------------------------------------------------------


def test_prune_removes_exactly_the_old_finished_jobs_and_stray_files(
    scene: PruneScene, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = prune(scene, capsys, "--older-than", "7d")

    assert (outcome.code, outcome.err) == (0, "")
    rows = scene.database_rows()
    assert {key.split("/")[1] for key in rows} == set(KEPT)
    for job_id in KEPT:  # every row of the others is still there
        assert (rows[f"jobs/{job_id}"], rows[f"events/{job_id}"], rows[f"items/{job_id}"]) == (
            1,
            5,
            2,
        )
    assert scene.state_files() == (
        files_of(*KEPT) | {"locks/ghost.lock.guard", "locks/live.lock", "locks/live.lock.guard"}
    ) | set(STRANGERS)
    # job branches are kept by default; the user's branches are never touched
    assert {"forkmerge/done", "forkmerge/broke"} | USER_BRANCHES <= scene.branches()
    line = outcome.line_of("pruned job done ")
    assert line.startswith("pruned job done (completed, last active 1w 3d ago), ")
    assert f"  removed {scene.path('logs/done.1.jsonl.gz')} (300 B)" in outcome.lines()
    assert "  removed its record from the job database: 5 events, 2 items, 1 phases" in (
        outcome.lines()
    )
    assert (
        "  kept branch forkmerge/done: it holds the job's result (--delete-branches deletes it)"
        in outcome.lines()
    )
    assert outcome.line_of("removed the stray files of job gone ").startswith(
        "removed the stray files of job gone (no record, last active 1w 3d ago)"
    )
    assert f"  removed {scene.path('locks/gone.lock.4242.tmp')} (2 B)" in outcome.lines()
    assert outcome.lines()[-1].startswith("freed ")
    assert outcome.lines()[-1].endswith(
        "pruning 3 jobs, 4 kept, 0 failed; 2 jobs active within 7d left alone"
    )


def test_running_interrupted_and_busy_jobs_are_kept_saying_why(
    scene: PruneScene, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = prune(scene, capsys, "--older-than", "7d")

    stopped = outcome.line_of("kept job stopped ")
    assert stopped.startswith("kept job stopped (interrupted, last active 1w 3d ago): ")
    assert (
        "it was interrupted and holds unmerged work: 1 of its items are not done, and "
        f"`python -m phases resume stopped --repo {scene.repo}` would finish it; "
        "--force prunes it anyway"
    ) in stopped
    assert "its process died and holds unmerged work" in outcome.line_of("kept job crashed ")
    live = outcome.line_of("kept job live ")
    assert f"process {os.getpid()} on " in live and "never pruned (stop it first)" in live
    busy = outcome.line_of("kept job busy ")
    assert busy.endswith(
        "1 of its worktrees or agent branches are still in the repository; remove them "
        "first: python -m phases worktrees clean --job busy"
    )
    assert not any("fresh" in line or "ghost" in line for line in outcome.lines())


def test_force_prunes_interrupted_and_crashed_jobs_but_never_a_running_one(
    scene: PruneScene, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = prune(scene, capsys, "--older-than", "7d", "--force")

    assert outcome.code == 0
    assert {key.split("/")[1] for key in scene.database_rows()} == {"fresh", "live", "busy"}
    assert not files_of("stopped", "crashed") & scene.state_files()
    assert "kept job live " in outcome.out and "kept job busy " in outcome.out
    # the dead process's lock went with its job; the live one's stays
    assert "locks/crashed.lock" not in scene.state_files()
    assert {"locks/live.lock", "locks/live.lock.guard"} <= scene.state_files()


def test_dry_run_changes_nothing_and_lists_what_a_real_run_removes(
    scene: PruneScene, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(scene)
    dry = prune(scene, capsys, "--older-than", "7d", "--delete-branches", "--dry-run", "--json")
    assert dry.code == 0 and snapshot(scene) == before
    text = prune(scene, capsys, "--older-than", "7d", "--delete-branches", "--dry-run")
    assert snapshot(scene) == before
    assert text.lines()[-1].startswith("dry run, nothing changed: would free ")
    assert f"  would remove {scene.path('logs/done.jsonl')} (600 B)" in text.lines()
    assert "  would delete branch forkmerge/done" in text.lines()

    real = prune(scene, capsys, "--older-than", "7d", "--delete-branches", "--json")

    def removed(report: Any) -> dict[str, Any]:
        return {
            job["job_id"]: (
                job["outcome"],
                job["store_rows"],
                sorted(f["path"] for f in job["files"]),
                job["branch_deleted"],
            )
            for job in report["jobs"]
        }

    assert removed(dry.json()) == removed(real.json())
    assert dry.json()["bytes_freed"] == real.json()["bytes_freed"] > 0
    assert (dry.json()["dry_run"], real.json()["dry_run"]) == (True, False)


def test_delete_branches_deletes_only_the_pruned_jobs_branches(
    scene: PruneScene, capsys: pytest.CaptureFixture[str]
) -> None:
    before = scene.branches()
    outcome = prune(scene, capsys, "--older-than", "7d", "--delete-branches")

    assert outcome.code == 0
    assert scene.branches() == before - {"forkmerge/done", "forkmerge/broke"}
    assert "  deleted branch forkmerge/done" in outcome.lines()
    assert "forkmerge/gone" in scene.branches()  # no record: not provably forkmerge's


def test_job_prunes_the_named_job_at_any_age_or_keeps_it_when_too_recent(
    scene: PruneScene, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = prune(scene, capsys, "--job", "fresh", "--older-than", "7d")
    assert kept.code == 0
    assert kept.line_of("kept job fresh ").endswith("it was active within --older-than 7d")
    assert "jobs/fresh" in scene.database_rows()

    named = prune(scene, capsys, "--job", "fresh", "--job", "ghost", "--keep-branches")
    assert named.code == 0
    assert "jobs/fresh" not in scene.database_rows()
    assert not {"logs/fresh.jsonl", "locks/ghost.lock.guard"} & scene.state_files()
    assert "jobs/done" in scene.database_rows()  # not named


def test_json_gives_every_job_and_the_totals(
    scene: PruneScene, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = prune(scene, capsys, "--older-than", "7d", "--json")

    report = outcome.json()
    assert set(report) == {
        "dry_run",
        "older_than_seconds",
        "jobs",
        "pruned",
        "kept",
        "failed",
        "newer",
        "bytes_freed",
    }
    assert (report["older_than_seconds"], report["pruned"], report["kept"]) == (604800.0, 3, 4)
    assert (report["failed"], report["newer"]) == (0, 2)
    jobs = {job["job_id"]: job for job in report["jobs"]}
    assert {job_id: (j["outcome"], j["reasons"]) for job_id, j in jobs.items()} == {
        "done": ("pruned", []),
        "broke": ("pruned", []),
        "gone": ("pruned", []),
        "stopped": ("kept", ["resumable"]),
        "crashed": ("kept", ["resumable"]),
        "live": ("kept", ["running"]),
        "busy": ("kept", ["worktrees"]),
    }
    done = jobs["done"]
    assert done["store_rows"] == {"jobs": 1, "events": 5, "items": 2, "phases": 1}
    assert sorted(f["path"] for f in done["files"]) == sorted(
        scene.path(relative) for relative in job_files("done")
    )
    assert done["bytes"] == sum(f["bytes"] for f in done["files"]) == 600 + 300 + 2
    assert (done["status"], done["branch"], done["branch_deleted"]) == (
        "completed",
        "forkmerge/done",
        False,
    )
    assert done["message"] is None and done["errors"] == []
    assert jobs["gone"]["status"] is None and jobs["gone"]["store_rows"]["jobs"] == 0
    assert "resume stopped" in jobs["stopped"]["message"]
    assert report["bytes_freed"] == sum(job["bytes"] for job in report["jobs"])


def test_a_second_prune_finds_nothing_more(
    scene: PruneScene, capsys: pytest.CaptureFixture[str]
) -> None:
    prune(scene, capsys, "--older-than", "7d", "--force")
    again = prune(scene, capsys, "--older-than", "7d", "--force")
    assert again.code == 0
    assert sorted(line.split(" (")[0] for line in again.lines()[:-1]) == [
        "kept job busy",
        "kept job live",
    ]


# -- failures and bad arguments -------------------------------------------------------------


def test_what_cannot_be_removed_is_exit_1_naming_it(
    scene: PruneScene, capsys: pytest.CaptureFixture[str]
) -> None:
    scene.git("checkout", "--quiet", "forkmerge/broke")
    before = snapshot(scene)
    dry = prune(scene, capsys, "--older-than", "7d", "--delete-branches", "--dry-run")
    assert dry.code == 1 and snapshot(scene) == before  # the dry run tells the same failure
    assert "is checked out in a worktree" in dry.line_of("failed to prune job broke ")
    outcome = prune(scene, capsys, "--older-than", "7d", "--delete-branches")

    assert outcome.code == 1
    failed = outcome.line_of("failed to prune job broke ")
    assert "branch forkmerge/broke is checked out in a worktree of the repository" in failed
    assert "jobs/broke" in scene.database_rows() and "logs/broke.jsonl" in scene.state_files()
    assert "jobs/done" not in scene.database_rows()  # the others were still pruned
    assert outcome.lines()[-1].endswith(
        "pruning 2 jobs, 4 kept, 1 failed; 2 jobs active within 7d left alone"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["jobs", "prune"],
            "jobs prune: expected --older-than AGE (such as 30d) or --job JOB, found neither",
        ),
        (["jobs", "prune", "--older-than", "3x"], "--older-than: expected a duration such as"),
        (["jobs", "prune", "--job", "../etc"], "--job: job id '../etc' must be 1 to 100"),
        (
            ["jobs", "prune", "--job", "nope"],
            "--job: no job 'nope' in this repository: neither a record in the job database",
        ),
        (["jobs", "--dry-run"], "forkmerge jobs: --dry-run is an option of `jobs prune`"),
        (["jobs", "--older-than", "1d"], "forkmerge jobs: --older-than is an option of"),
        (
            ["jobs", "prune", "--job", "done", "--keep-branches", "--delete-branches"],
            "not allowed with argument --keep-branches",
        ),
        (["jobs", "purne"], "invalid choice: 'purne'"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2_changing_nothing(
    scene: PruneScene, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    before = snapshot(scene)
    code = main([*args, "--repo", scene.repo])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert snapshot(scene) == before


def test_plain_jobs_still_lists(scene: PruneScene, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "--repo", scene.repo, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 7


def test_without_a_job_database_stray_files_are_pruned_and_none_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    isolate_git(monkeypatch)
    repo = init_repository(str(tmp_path / "repo"))
    state = tmp_path / "state"
    (state / "logs").mkdir(parents=True)
    (state / "logs" / "old.jsonl").write_text("{}\n")
    os.utime(state / "logs" / "old.jsonl", (1.0, 1.0))
    code = main(["jobs", "prune", "--repo", repo, "--state-dir", str(state), "--older-than", "1d"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("removed the stray files of job old (no record, last active ")
    assert os.listdir(state / "logs") == [] and not (state / "jobs.sqlite3").exists()
    assert not (state / "locks").exists() or os.listdir(state / "locks") == []
    code = main(["jobs", "prune", "--repo", repo, "--state-dir", str(state), "--older-than", "1d"])
    assert code == 0
    assert (
        capsys.readouterr().out
        == "nothing to prune: no job or stray file of forkmerge older than 1d\n"
    )


# -- the documentation says what prune does -------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_documented_prune_commands_are_accepted() -> None:
    shown = []
    for name in ("running-jobs.md", "troubleshooting.md"):
        text = (DOCS / name).read_text(encoding="utf-8")
        shown += re.findall(r"^forkmerge (jobs prune[^\[\n]*)$", text, re.MULTILINE)
        spans = re.findall(r"`(?:forkmerge |python -m phases )?(jobs prune[^`]*)`", text)
        shown += [" ".join(span.split()) for span in spans]  # prose wraps spans
    commands = [line for line in shown if "[" not in line]  # the synopsis is no command
    assert len(commands) >= 4, commands
    for command in commands:
        words = shlex.split(command.replace("<job>", "JOB"))
        _parser().parse_args(words)


def test_the_troubleshooting_page_quotes_what_prune_prints(
    scene: PruneScene, capsys: pytest.CaptureFixture[str]
) -> None:
    scene.git("checkout", "--quiet", "forkmerge/done")
    outcome = prune(scene, capsys, "--older-than", "7d", "--delete-branches")
    quoted = " ".join((DOCS / "troubleshooting.md").read_text(encoding="utf-8").split())
    fragments = {
        "stopped": ["it was interrupted and holds unmerged work: ", "--force prunes it anyway"],
        "busy": [
            "of its worktrees or agent branches are still in the repository; remove them "
            "first: python -m phases worktrees clean --job "
        ],
        "live": ["is running it, and a running job is never pruned (stop it first)"],
        "done": [
            "is checked out in a worktree of the repository; switch that worktree to another "
            "branch, or prune with --keep-branches"
        ],
    }
    for job_id, parts in fragments.items():
        (line,) = [line for line in outcome.lines() if f" job {job_id} (" in line]
        for part in parts:
            assert part in line and part in quoted, (job_id, part)
    assert "its process died and holds unmerged work" in outcome.line_of("kept job crashed ")
    assert "its process died and holds unmerged work" in quoted

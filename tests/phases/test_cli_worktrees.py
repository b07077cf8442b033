"""``worktrees list`` and ``worktrees clean`` on a repository holding every kind of leftover."""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Result, Success

from envs.git_worktrees import GitWorktreeManager
from envs.protocols import Worktree, WorktreeError
from envs.store import DATABASE_NAME
from phases.cli import UsageError
from phases.cli_worktrees import worktrees_clean_command, worktrees_list_command
from phases.units import format_age, format_size, parse_duration
from tests.envs.orphan_scene import (
    JOB_BRANCHES,
    OLD,
    USERS,
    Scene,
    build_scene,
    init_repository,
    isolate_git,
    merged_agent,
)


@pytest.fixture
def scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    isolate_git(monkeypatch)
    repo = init_repository(str(tmp_path / "repo"))
    with ExitStack() as locks:
        yield trio.run(build_scene, repo, locks)


@attrs.frozen
class Outcome:
    code: int
    out: str

    def lines(self) -> list[str]:
        return self.out.splitlines()

    def json(self) -> Any:
        return json.loads(self.out)


def listing(scene: Scene, *, as_json: bool = False) -> Outcome:
    out = io.StringIO()
    code = worktrees_list_command(scene.repo, None, as_json=as_json, out=out)
    return Outcome(code, out.getvalue())


def cleaning(
    scene: Scene,
    *,
    job: str | None = None,
    older_than: str | None = None,
    dry_run: bool = False,
    force: bool = False,
) -> Outcome:
    out = io.StringIO()
    code = worktrees_clean_command(
        scene.repo,
        None,
        job=job,
        older_than=older_than,
        dry_run=dry_run,
        force=force,
        out=out,
    )
    return Outcome(code, out.getvalue())


# -- list -----------------------------------------------------------------------------------


def test_list_json_gives_every_leftover_with_its_state(scene: Scene) -> None:
    outcome = listing(scene, as_json=True)

    assert outcome.code == 0
    listed = {entry["branch"]: entry for entry in outcome.json()}
    assert {branch: (e["kind"], e["state"]) for branch, e in listed.items()} == {
        "forkmerge/live": ("worktree", "active"),
        "forkmerge-agents/live/a": ("worktree", "active"),
        "forkmerge/crashed": ("worktree", "orphaned"),
        "forkmerge-agents/crashed/a": ("worktree", "orphaned"),
        "forkmerge-agents/crashed/b": ("worktree", "orphaned"),
        "forkmerge-agents/crashed/p": ("worktree", "orphaned"),
        "forkmerge-agents/vanish/x": ("worktree", "orphaned"),
        "forkmerge-agents/crashed/c": ("branch", "orphaned"),
        "forkmerge-agents/stored/s": ("branch", "orphaned"),
    }
    for entry in listed.values():
        assert {"job_id", "path", "branch", "age_seconds", "size_bytes", "state", "kind"} <= set(
            entry
        )
    a = listed["forkmerge-agents/crashed/a"]
    assert (a["job_id"], a["path"]) == ("crashed", scene.worktrees["crashed/a"].path)
    assert OLD - 60 < a["age_seconds"] < OLD + 60
    assert a["size_bytes"] > 0
    assert listed["forkmerge-agents/crashed/b"]["age_seconds"] < 60
    branch = listed["forkmerge-agents/stored/s"]
    assert (branch["job_id"], branch["path"], branch["size_bytes"]) == ("stored", None, 0)
    assert listed["forkmerge-agents/vanish/x"]["vanished"] is True
    assert listed["forkmerge-agents/crashed/p"]["pending"] is True
    assert listed["forkmerge/live"]["runner_pid"] == os.getpid()


def test_list_prints_a_table_and_a_summary(scene: Scene) -> None:
    outcome = listing(scene)

    lines = outcome.lines()
    assert outcome.code == 0
    assert lines[0].split() == ["STATE", "KIND", "JOB", "AGE", "SIZE", "BRANCH", "PATH"]
    assert len(lines) == 1 + 9 + 1
    rows = {_branch_in(line): line for line in lines[1:-1]}
    assert rows["forkmerge/live"].startswith("active    worktree  live")
    assert f"(run by process {os.getpid()})" in rows["forkmerge/live"]
    assert "  3d   " in rows["forkmerge-agents/crashed/a"]  # three days and a few seconds
    assert "(directory gone)" in rows["forkmerge-agents/vanish/x"]
    assert "(checkout interrupted)" in rows["forkmerge-agents/crashed/p"]
    assert rows["forkmerge-agents/stored/s"].split()[:2] == ["orphaned", "branch"]
    assert lines[-1].startswith("7 worktrees (")
    assert "2 agent branches without a worktree; 7 orphaned" in lines[-1]
    assert "feature" not in outcome.out and "topic" not in outcome.out
    assert "stranger" not in outcome.out


def _branch_in(line: str) -> str:
    found = re.search(r"\s(forkmerge\S*)\s", line)
    assert found is not None, line
    return found.group(1)


def test_list_on_a_repository_forkmerge_never_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_git(monkeypatch)
    repo = init_repository(str(tmp_path / "fresh"))
    out = io.StringIO()
    assert worktrees_list_command(repo, None, as_json=False, out=out) == 0
    assert out.getvalue() == "no worktrees or agent branches of forkmerge in this repository\n"
    out = io.StringIO()
    assert worktrees_list_command(repo, None, as_json=True, out=out) == 0
    assert json.loads(out.getvalue()) == []
    assert not os.path.exists(os.path.join(repo, ".git", "forkmerge"))  # no store created


def test_an_unreadable_job_store_is_a_note_and_markers_still_count(scene: Scene) -> None:
    database = os.path.join(scene.layout.root, DATABASE_NAME)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(database + suffix):
            os.unlink(database + suffix)
    with open(database, "wb") as file:
        file.write(b"this is not a database" * 100)

    outcome = listing(scene)

    assert outcome.code == 0
    assert outcome.lines()[0].startswith(f"note: job database {database}")
    assert "forkmerge-agents/crashed/c" in outcome.out  # job 'crashed' has markers
    assert "forkmerge-agents/stored/s" not in outcome.out  # only the store knew 'stored'
    dry = cleaning(scene, dry_run=True)
    assert dry.lines()[0] == outcome.lines()[0]
    assert "stored/s" not in dry.out


def test_an_unrecorded_merge_is_shown_and_its_branch_kept(scene: Scene) -> None:
    trio.run(merged_agent, scene)
    row = next(line for line in listing(scene).lines() if "forkmerge-agents/crashed/a" in line)
    assert row.endswith("(merge not recorded: resume the job)")
    outcome = cleaning(scene, job="crashed")
    line = next(line for line in outcome.lines() if "crashed-a" in line)
    assert "branch forkmerge-agents/crashed/a kept: its merge" in line
    assert "`resume crashed` settles it" in line
    assert "forkmerge-agents/crashed/a" in scene.branches()


# -- clean ----------------------------------------------------------------------------------


def test_clean_removes_the_orphans_and_says_what_it_freed(scene: Scene) -> None:
    outcome = cleaning(scene)

    assert outcome.code == 0
    lines = outcome.lines()
    path = scene.worktrees
    assert (
        f"removed worktree {path['crashed/a'].path} of job crashed" in outcome.out
        and "and its branch forkmerge-agents/crashed/a" in outcome.out
    )
    assert f"removed interrupted checkout {path['crashed/p'].path} of job crashed" in outcome.out
    assert (
        f"pruned git's record of vanished worktree {path['vanish/x'].path} of job vanish "
        "and its branch forkmerge-agents/vanish/x"
    ) in lines
    assert "deleted branch forkmerge-agents/stored/s of job stored" in lines
    assert "deleted branch forkmerge-agents/crashed/c of job crashed" in lines
    assert any(
        line.startswith(f"skipped worktree {path['live/a'].path} of job live: job live is running")
        for line in lines
    )
    assert any("branch forkmerge/crashed kept: it holds the job's result" in line for line in lines)
    assert lines[-1].startswith("freed ")
    assert lines[-1].endswith("removing 5 worktrees and 6 branches, 2 skipped, 0 failed")
    assert scene.branches() == USERS | JOB_BRANCHES | {"forkmerge-agents/live/a"}
    assert os.path.isdir(scene.user_worktree)
    assert scene.user_vanished in scene.git("worktree", "list")
    assert [entry["branch"] for entry in listing(scene, as_json=True).json()] == [
        "forkmerge/live",
        "forkmerge-agents/live/a",
    ]


def test_freed_disk_is_the_listed_size_of_what_was_removed(scene: Scene) -> None:
    sizes = {entry["branch"]: entry["size_bytes"] for entry in listing(scene, as_json=True).json()}
    outcome = cleaning(scene, job="vanish")
    assert outcome.lines()[-1] == (
        f"freed {format_size(sizes['forkmerge-agents/vanish/x'])} removing 1 worktree and "
        "1 branch, 0 skipped, 0 failed"
    )


def test_a_dry_run_prints_the_same_and_changes_nothing(scene: Scene) -> None:
    before = scene.snapshot()
    dry = cleaning(scene, dry_run=True)
    assert scene.snapshot() == before
    assert dry.code == 0

    real = cleaning(scene)
    expected = [
        line.replace("would remove", "removed")
        .replace("would prune", "pruned")
        .replace("would delete", "deleted")
        for line in real.lines()
    ]
    # Same lines, in the future tense; the summary says nothing changed.
    assert [
        line.replace("would remove", "removed")
        .replace("would prune", "pruned")
        .replace("would delete", "deleted")
        for line in dry.lines()[:-1]
    ] == expected[:-1]
    assert dry.lines()[-1].startswith("dry run, nothing changed: would free ")
    assert dry.lines()[-1].split("would free ")[1] == real.lines()[-1].removeprefix("freed ")


def test_older_than_removes_only_the_old_ones(scene: Scene) -> None:
    outcome = cleaning(scene, older_than="2d")
    assert outcome.code == 0
    assert outcome.lines()[-1].endswith("removing 3 worktrees and 2 branches, 0 skipped, 0 failed")
    assert not scene.exists("crashed/a") and not scene.exists("vanish/x")
    assert not scene.exists("crashed")
    assert scene.exists("crashed/b") and scene.exists("crashed/p")
    assert "forkmerge-agents/crashed/c" in scene.branches()
    nothing = cleaning(scene, older_than="1w")
    assert nothing.out == (
        "nothing to clean: no worktrees or agent branches of forkmerge older than 1w\n"
    )


def test_a_job_filter_and_force(scene: Scene) -> None:
    live = cleaning(scene, job="live")
    assert live.code == 0
    assert live.lines()[-1].endswith("0 worktrees and 0 branches, 2 skipped, 0 failed")
    assert scene.exists("live/a") and scene.exists("crashed/a")

    forced = cleaning(scene, job="live", force=True)
    assert forced.code == 0
    assert not scene.exists("live") and not scene.exists("live/a")
    assert "forkmerge/live" in scene.branches()
    assert "forkmerge-agents/live/a" not in scene.branches()
    assert scene.exists("crashed/a")
    assert cleaning(scene, job="unknown").out == (
        "nothing to clean: no worktrees or agent branches of forkmerge of job unknown\n"
    )


def test_a_failed_removal_is_reported_the_rest_done_and_the_exit_code_is_1(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = GitWorktreeManager.remove_worktree

    async def flaky(
        self: GitWorktreeManager, worktree: Worktree, *, delete_branch: bool = True
    ) -> Result[None, WorktreeError]:
        if worktree.branch == "forkmerge-agents/crashed/a":
            return Failure(WorktreeError("remove_worktree", "the disk is on fire"))
        return await original(self, worktree, delete_branch=delete_branch)

    monkeypatch.setattr(GitWorktreeManager, "remove_worktree", flaky)

    outcome = cleaning(scene)

    assert outcome.code == 1
    assert (
        f"failed to remove worktree {scene.worktrees['crashed/a'].path} of job crashed: "
        "the disk is on fire"
    ) in outcome.lines()
    assert outcome.lines()[-1].endswith("4 worktrees and 5 branches, 2 skipped, 1 failed")
    assert scene.exists("crashed/a") and not scene.exists("crashed/b")


@pytest.mark.parametrize("bad", ["2", "h", "2x", "-1h", "", "2 h", "1.h", "3D", "h2"])
def test_a_bad_duration_is_a_usage_error(scene: Scene, bad: str) -> None:
    before = scene.snapshot()
    with pytest.raises(UsageError) as raised:
        cleaning(scene, older_than=bad)
    message = str(raised.value)
    assert message.startswith("--older-than: expected a duration such as 30m, 2h, 3d or 1w")
    assert message.endswith(f"found {bad!r}")
    assert scene.snapshot() == before


def test_a_bad_job_id_is_a_usage_error(scene: Scene) -> None:
    with pytest.raises(UsageError, match=r"^--job: job id '\.\./x' must be"):
        cleaning(scene, job="../x")


# -- durations and formats ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("2h", 7200), ("3d", 259200), ("1w", 604800), ("45s", 45), ("1d12h", 129600)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == Success(seconds)
    assert parse_duration(f"  {text} ") == Success(seconds)
    assert parse_duration("1.5h") == Success(5400.0)


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=10_000), st.sampled_from("smhdw")),
        min_size=1,
        max_size=4,
    )
)
def test_a_duration_is_the_sum_of_its_parts(parts: list[tuple[int, str]]) -> None:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = "".join(f"{number}{unit}" for number, unit in parts)
    assert parse_duration(text) == Success(float(sum(n * units[u] for n, u in parts)))


@given(st.text(alphabet="0123456789smhdwx .-", max_size=8))
def test_anything_else_is_refused_naming_what_was_found(text: str) -> None:
    parsed = parse_duration(text)
    stripped = text.strip()
    if isinstance(parsed, Success):
        assert parsed.unwrap() >= 0
        assert stripped[-1] in "smhdw" and stripped[0].isdigit()
        assert not set(stripped) - set("0123456789.smhdw")
    else:
        assert parsed.failure().endswith(f"found {text!r}")
    if not set(stripped) & set("smhdw") or set(stripped) & set("x -"):
        assert isinstance(parsed, Failure)


def test_sizes_and_ages_for_people() -> None:
    assert format_size(0) == "0 B"
    assert format_size(1023) == "1023 B"
    assert format_size(4096) == "4.0 KiB"
    assert format_size(5 * 1024 * 1024 + 512 * 1024) == "5.5 MiB"
    assert format_size(3 * 1024**4) == "3.0 TiB"
    assert format_size(2048 * 1024**4) == "2048.0 TiB"
    assert format_age(0) == "0s"
    assert format_age(45.9) == "45s"
    assert format_age(3 * 3600 + 5 * 60 + 7) == "3h 5m"
    assert format_age(2 * 86400) == "2d"
    assert format_age(15 * 86400 + 3600) == "2w 1d"
    assert format_age(3600 + 7) == "1h"

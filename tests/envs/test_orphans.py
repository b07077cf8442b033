"""The orphan cleaner on real repositories: what it finds, removes, and never touches."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs
import pytest

from envs.disk_usage import disk_usage
from envs.git_worktrees import GitWorktreeManager
from envs.job_lock import JobLock
from envs.job_records import JobStatus
from envs.local import state_layout
from envs.orphan_cleaning import CleanReport, clean_leftovers
from envs.orphans import (
    KnownJob,
    Leftover,
    Scan,
    known_jobs,
    scan_leftovers,
    select_leftovers,
)
from envs.store import SqliteJobStore
from envs.worktree_layout import MARKER_FILE, read_marker, write_marker
from pure.job_events import ItemMerged, ItemStarted, ItemSucceeded, JobPlanned
from tests.envs.orphan_scene import (
    DAY,
    JOB_BRANCHES,
    OLD,
    USERS,
    Scene,
    build_scene,
    init_repository,
    isolate_git,
    merged_agent,
    ok,
    record,
)

LIVE = {"forkmerge-agents/live/a"}


@pytest.fixture
async def scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Scene]:
    isolate_git(monkeypatch)
    repo = init_repository(str(tmp_path / "repo"))
    with ExitStack() as locks:
        yield await build_scene(repo, locks)


async def scan(scene: Scene) -> Scan:
    with scene.layout.open_store() as store:
        known = await known_jobs(store)
    return scan_leftovers(scene.repo, scene.layout, known)


def by_branch(found: Scan) -> dict[str, Leftover]:
    return {leftover.branch: leftover for leftover in found.leftovers}


async def clean(
    scene: Scene,
    *,
    job_id: str | None = None,
    older_than: float | None = None,
    dry_run: bool = False,
    force: bool = False,
) -> CleanReport:
    found = await scan(scene)
    chosen = select_leftovers(
        found.leftovers, job_id=job_id, older_than=older_than, now=time.time()
    )
    return await clean_leftovers(scene.repo, chosen, dry_run=dry_run, force=force)


def outcomes(report: CleanReport) -> dict[str, str]:
    return {action.leftover.branch: action.outcome for action in report.actions}


# -- scanning -------------------------------------------------------------------------------


async def test_the_scan_finds_forkmerge_leftovers_and_nothing_of_the_user(scene: Scene) -> None:
    found = by_branch(await scan(scene))

    assert set(found) == {
        "forkmerge/live",
        "forkmerge-agents/live/a",
        "forkmerge/crashed",
        "forkmerge-agents/crashed/a",
        "forkmerge-agents/crashed/b",
        "forkmerge-agents/crashed/c",
        "forkmerge-agents/crashed/p",
        "forkmerge-agents/vanish/x",
        "forkmerge-agents/stored/s",
    }
    states = {branch: (leftover.kind, leftover.state) for branch, leftover in found.items()}
    assert states == {
        "forkmerge/live": ("worktree", "active"),
        "forkmerge-agents/live/a": ("worktree", "active"),
        "forkmerge/crashed": ("worktree", "orphaned"),
        "forkmerge-agents/crashed/a": ("worktree", "orphaned"),
        "forkmerge-agents/crashed/b": ("worktree", "orphaned"),
        "forkmerge-agents/crashed/c": ("branch", "orphaned"),
        "forkmerge-agents/crashed/p": ("worktree", "orphaned"),
        "forkmerge-agents/vanish/x": ("worktree", "orphaned"),
        "forkmerge-agents/stored/s": ("branch", "orphaned"),
    }
    assert found["forkmerge/live"].holder is not None
    assert found["forkmerge/live"].holder.pid == os.getpid()
    assert found["forkmerge-agents/vanish/x"].vanished
    assert found["forkmerge-agents/crashed/p"].pending
    assert not found["forkmerge-agents/crashed/a"].vanished
    assert not found["forkmerge-agents/crashed/a"].pending
    assert (found["forkmerge/crashed"].agent, found["forkmerge-agents/crashed/a"].agent) == (
        None,
        "a",
    )
    assert found["forkmerge-agents/crashed/c"].path is None


async def test_worktrees_are_listed_first_each_job_worktree_before_its_agents(
    scene: Scene,
) -> None:
    listed = [(leftover.kind, leftover.branch) for leftover in (await scan(scene)).leftovers]
    assert listed[:4] == [
        ("worktree", "forkmerge/crashed"),
        ("worktree", "forkmerge-agents/crashed/a"),
        ("worktree", "forkmerge-agents/crashed/b"),
        ("worktree", "forkmerge-agents/crashed/p"),
    ]
    assert [kind for kind, _ in listed] == ["worktree"] * 7 + ["branch"] * 2


async def test_ages_come_from_the_markers_and_sizes_from_the_disk(scene: Scene) -> None:
    found = by_branch(await scan(scene))
    now = time.time()

    for branch in ("forkmerge/crashed", "forkmerge-agents/crashed/a", "forkmerge-agents/vanish/x"):
        assert OLD - 60 < found[branch].age(now) < OLD + 60
    assert found["forkmerge-agents/crashed/b"].age(now) < 60
    assert found["forkmerge-agents/crashed/c"].age(now) < 60  # the branch's reflog
    worktree = found["forkmerge-agents/crashed/a"]
    assert worktree.path is not None
    admin = scene.admin("crashed/a")
    assert worktree.size_bytes == disk_usage(worktree.path) + disk_usage(admin)
    assert worktree.size_bytes > disk_usage(admin) > 0
    vanished = found["forkmerge-agents/vanish/x"]
    assert vanished.size_bytes == disk_usage(scene.admin("vanish/x"))
    pending = found["forkmerge-agents/crashed/p"]
    assert pending.path is not None
    assert pending.size_bytes == disk_usage(pending.path) >= 10000
    assert found["forkmerge-agents/stored/s"].size_bytes == 0


async def test_the_json_form_names_kind_job_path_branch_age_size_and_state(scene: Scene) -> None:
    found = by_branch(await scan(scene))
    now = time.time()
    worktree = found["forkmerge-agents/crashed/a"].to_json(now)
    assert {key: worktree[key] for key in ("kind", "job_id", "branch", "state")} == {
        "kind": "worktree",
        "job_id": "crashed",
        "branch": "forkmerge-agents/crashed/a",
        "state": "orphaned",
    }
    assert worktree["path"] == scene.worktrees["crashed/a"].path
    assert worktree["age_seconds"] > OLD - 60
    assert worktree["size_bytes"] == found["forkmerge-agents/crashed/a"].size_bytes
    branch = found["forkmerge-agents/stored/s"].to_json(now)
    assert (branch["kind"], branch["path"], branch["size_bytes"]) == ("branch", None, 0)
    assert found["forkmerge/live"].to_json(now)["runner_pid"] == os.getpid()


async def test_the_scan_reads_without_changing_anything(scene: Scene) -> None:
    before = scene.snapshot()
    await scan(scene)
    assert scene.snapshot() == before


async def test_an_agent_branch_of_no_known_job_is_not_forkmerge_s(scene: Scene) -> None:
    # Known jobs: the store's, and those a marker names; without the store, 'stored'
    # is unknown and its branch is left alone (a name alone proves nothing).
    found = scan_leftovers(scene.repo, scene.layout, {})
    branches = {leftover.branch for leftover in found.leftovers}
    assert "forkmerge-agents/stored/s" not in branches
    assert "forkmerge-agents/stranger/z" not in branches
    assert "forkmerge-agents/crashed/c" in branches  # job 'crashed' has markers


async def test_a_branch_checked_out_in_a_user_worktree_is_not_listed(
    scene: Scene, tmp_path: Path
) -> None:
    scene.git("worktree", "add", "--quiet", str(tmp_path / "on-agent"), "forkmerge-agents/stored/s")
    found = by_branch(await scan(scene))
    assert "forkmerge-agents/stored/s" not in found


async def test_markers_that_disagree_with_git_are_left_alone_with_a_note(scene: Scene) -> None:
    # A forkmerge marker copied into the user's worktree's metadata: the worktree id,
    # the path and what git records all disagree with it.
    user_admin = os.path.join(scene.repo, ".git", "worktrees", "user-feature")
    shutil.copy(os.path.join(scene.admin("crashed/b"), MARKER_FILE), user_admin)
    # A forkmerge worktree git records somewhere else than its marker says.
    marker = read_marker(scene.admin("crashed/a"))
    assert marker is not None
    with open(os.path.join(scene.admin("crashed/a"), "gitdir"), "w", encoding="utf-8") as file:
        file.write("/elsewhere/fm-x/.git\n")

    found = await scan(scene)

    paths = {leftover.path for leftover in found.leftovers}
    assert scene.user_worktree not in paths
    assert marker.path not in paths
    assert any("user-feature" in note and "describes worktree" in note for note in found.notes)
    assert any("git records it at /elsewhere/fm-x" in note for note in found.notes)
    # Its branch is checked out in that worktree: not a branch leftover either.
    assert "forkmerge-agents/crashed/a" not in {leftover.branch for leftover in found.leftovers}
    report = await clean(scene, job_id="crashed")
    assert "forkmerge-agents/crashed/a" not in outcomes(report)
    assert os.path.isdir(scene.user_worktree)
    assert os.path.isdir(marker.path)
    assert "forkmerge-agents/crashed/a" in scene.branches()


@pytest.mark.parametrize(
    ("change", "note"),
    [
        ({"job_id": "../up"}, "invalid job id or agent name"),
        ({"name": "b.."}, "invalid job id or agent name"),
        ({"name": "q"}, "its marker describes worktree fm-crashed-q-"),
        ({"branch": "forkmerge-agents/crashed/zz"}, "names branch forkmerge-agents/crashed/zz"),
        ({"path": "/tmp/fm-crashed-b"}, "names the path /tmp/fm-crashed-b, not a directory"),
    ],
)
async def test_a_marker_that_does_not_describe_its_worktree_makes_it_not_ours(
    scene: Scene, change: dict[str, Any], note: str
) -> None:
    admin = scene.admin("crashed/b")
    marker = read_marker(admin)
    assert marker is not None
    write_marker(admin, attrs.evolve(marker, **change))

    found = await scan(scene)

    assert "forkmerge-agents/crashed/b" not in by_branch(found)
    assert [n for n in found.notes if note in n and scene.worktrees["crashed/b"].name in n]
    await clean(scene, force=True)
    assert os.path.isdir(scene.worktrees["crashed/b"].path)


async def test_a_pending_marker_left_beside_a_finished_worktree_is_one_leftover(
    scene: Scene,
) -> None:
    # Killed after the admin marker was written, before the pending one was dropped.
    worktree = scene.worktrees["crashed/b"]
    pending = os.path.join(scene.layout.worktrees, ".pending", worktree.name)
    os.makedirs(pending)
    shutil.copy(os.path.join(scene.admin("crashed/b"), MARKER_FILE), pending)

    found = [
        leftover for leftover in (await scan(scene)).leftovers if leftover.path == worktree.path
    ]
    assert len(found) == 1 and not found[0].pending

    await clean(scene, job_id="crashed")
    assert not os.path.exists(pending) and not scene.exists("crashed/b")


async def test_pending_markers_that_are_not_forkmerge_s_are_left_alone(
    scene: Scene, tmp_path: Path
) -> None:
    root = os.path.join(scene.layout.worktrees, ".pending")
    garbage = os.path.join(root, "fm-garbage-0123456789")
    os.makedirs(garbage)
    with open(os.path.join(garbage, MARKER_FILE), "w", encoding="utf-8") as file:
        file.write("{not json")
    # A pending marker naming a directory outside the state directory it is in.
    marker = read_marker(os.path.join(root, scene.worktrees["crashed/p"].name))
    assert marker is not None
    outside = str(tmp_path / "outside" / marker.path.rsplit("/", 1)[1])
    write_marker(
        os.path.join(root, scene.worktrees["crashed/p"].name), attrs.evolve(marker, path=outside)
    )

    found = await scan(scene)

    assert "forkmerge-agents/crashed/p" not in {leftover.path for leftover in found.leftovers}
    assert not any(leftover.pending for leftover in found.leftovers)
    assert any(f"names {outside}, outside {scene.layout.worktrees}" in n for n in found.notes)
    assert not any("fm-garbage" in n for n in found.notes)
    await clean(scene, force=True)
    assert os.path.isdir(scene.worktrees["crashed/p"].path)
    assert os.path.isdir(garbage)


async def test_a_branch_without_a_reflog_is_as_old_as_its_head_commit(scene: Scene) -> None:
    os.unlink(
        os.path.join(scene.repo, ".git", "logs", "refs", "heads", "forkmerge-agents", "stored", "s")
    )
    head_time = int(scene.git("log", "-1", "--format=%ct", "forkmerge-agents/stored/s"))
    assert by_branch(await scan(scene))["forkmerge-agents/stored/s"].created == head_time


async def test_branches_shaped_otherwise_in_the_namespace_are_not_listed(scene: Scene) -> None:
    odd = {"forkmerge-agents/solo", "forkmerge-agents/stored/t/deeper", "forkmerge-agents/-x/y"}
    for branch in odd:
        scene.git("branch", branch, "main")
    known = {
        job: KnownJob(job, JobStatus.FAILED, f"forkmerge/{job}") for job in ("solo", "stored", "-x")
    }
    found = {
        leftover.branch for leftover in scan_leftovers(scene.repo, scene.layout, known).leftovers
    }
    assert not found & odd
    assert "forkmerge-agents/stored/s" in found


async def test_worktrees_of_another_state_directory_see_their_own_lock(
    scene: Scene, tmp_path: Path
) -> None:
    elsewhere = state_layout(scene.repo, str(tmp_path / "state"))
    manager = GitWorktreeManager(scene.repo, state_dir=elsewhere.worktrees)
    worktree = ok(await manager.create_agent_worktree("o", "forkmerge/crashed"))
    with JobLock(elsewhere.locks, "other-run"):
        pass  # a lock that is released again counts for nothing
    with JobLock(elsewhere.locks, "crashed"):
        found = by_branch(await scan(scene))  # scanned with the default layout
        assert found[worktree.branch].state == "active"
        assert found["forkmerge-agents/crashed/a"].state == "active"  # same job
    found = by_branch(await scan(scene))
    assert found[worktree.branch].state == "orphaned"
    report = await clean(scene, job_id="crashed")
    assert outcomes(report)[worktree.branch] == "removed"
    assert not os.path.exists(worktree.path)


# -- cleaning -------------------------------------------------------------------------------


async def test_clean_removes_exactly_the_orphans(scene: Scene) -> None:
    sizes = {leftover.branch: leftover.size_bytes for leftover in (await scan(scene)).leftovers}

    report = await clean(scene)

    assert outcomes(report) == {
        "forkmerge/live": "skipped",
        "forkmerge-agents/live/a": "skipped",
        "forkmerge/crashed": "removed",
        "forkmerge-agents/crashed/a": "removed",
        "forkmerge-agents/crashed/b": "removed",
        "forkmerge-agents/crashed/c": "removed",
        "forkmerge-agents/crashed/p": "removed",
        "forkmerge-agents/vanish/x": "removed",
        "forkmerge-agents/stored/s": "removed",
    }
    assert not report.failed
    for label in ("crashed", "crashed/a", "crashed/b", "crashed/p", "vanish/x"):
        assert not scene.exists(label), label
    assert scene.exists("live") and scene.exists("live/a")
    assert scene.branches() == USERS | JOB_BRANCHES | LIVE
    # The user's worktrees, even the one whose directory is gone, are untouched.
    assert os.path.isdir(scene.user_worktree)
    assert os.path.isdir(os.path.join(scene.repo, ".git", "worktrees", "user-gone"))
    assert scene.user_vanished in scene.git("worktree", "list")
    assert not os.path.exists(os.path.join(scene.layout.worktrees, ".pending"))
    removed = [
        "forkmerge/crashed",
        "forkmerge-agents/crashed/a",
        "forkmerge-agents/crashed/b",
        "forkmerge-agents/crashed/p",
        "forkmerge-agents/vanish/x",
    ]
    assert report.freed_bytes == sum(sizes[branch] for branch in removed) > 0
    assert [leftover.branch for leftover in (await scan(scene)).leftovers] == [
        "forkmerge/live",
        "forkmerge-agents/live/a",
    ]


async def test_a_job_worktree_goes_but_its_branch_stays(scene: Scene) -> None:
    report = await clean(scene, job_id="crashed")
    job = next(a for a in report.actions if a.leftover.branch == "forkmerge/crashed")
    assert (job.outcome, job.branch_deleted) == ("removed", False)
    assert job.reason is not None and "holds the job's result" in job.reason
    assert "forkmerge/crashed" in scene.branches()


async def test_older_than_keeps_what_is_newer(scene: Scene) -> None:
    report = await clean(scene, older_than=2 * DAY)

    assert set(outcomes(report)) == {
        "forkmerge/crashed",
        "forkmerge-agents/crashed/a",
        "forkmerge-agents/vanish/x",
    }
    assert not scene.exists("crashed") and not scene.exists("crashed/a")
    assert not scene.exists("vanish/x")
    assert scene.exists("crashed/b") and scene.exists("crashed/p")
    assert {"forkmerge-agents/crashed/b", "forkmerge-agents/crashed/c"} <= scene.branches()
    assert "forkmerge-agents/stored/s" in scene.branches()


async def test_a_job_filter_keeps_to_that_job(scene: Scene) -> None:
    report = await clean(scene, job_id="vanish")
    assert outcomes(report) == {"forkmerge-agents/vanish/x": "removed"}
    assert not scene.exists("vanish/x")
    assert "forkmerge-agents/vanish/x" not in scene.branches()
    assert scene.exists("crashed/a") and "forkmerge-agents/stored/s" in scene.branches()


async def test_a_dry_run_changes_nothing_and_reports_what_a_real_run_does(scene: Scene) -> None:
    before = scene.snapshot()
    dry = await clean(scene, dry_run=True)
    assert scene.snapshot() == before
    assert dry.dry_run

    real = await clean(scene)
    assert [(a.leftover.branch, a.outcome, a.branch_deleted) for a in dry.actions] == [
        (a.leftover.branch, a.outcome, a.branch_deleted) for a in real.actions
    ]
    assert dry.freed_bytes == real.freed_bytes > 0


async def test_force_removes_active_worktrees_too_but_never_job_branches(scene: Scene) -> None:
    report = await clean(scene, force=True)
    assert set(outcomes(report).values()) == {"removed"}
    for label in scene.worktrees:
        assert not scene.exists(label), label
    assert scene.branches() == USERS | JOB_BRANCHES


async def test_a_job_that_takes_its_lock_after_the_scan_is_skipped(scene: Scene) -> None:
    found = await scan(scene)
    with JobLock(scene.layout.locks, "crashed"):
        report = await clean_leftovers(
            scene.repo,
            select_leftovers(found.leftovers, job_id="crashed", now=time.time()),
            dry_run=False,
            force=False,
        )
    assert set(outcomes(report).values()) == {"skipped"}
    assert all("job crashed is running" in (a.reason or "") for a in report.actions)
    assert scene.exists("crashed/a")


async def test_one_failure_is_reported_and_the_others_are_still_removed(scene: Scene) -> None:
    found = await scan(scene)
    # After the scan, the marker stops matching: the manager refuses that one.
    admin = scene.admin("crashed/a")
    marker = read_marker(admin)
    assert marker is not None
    write_marker(admin, attrs.evolve(marker, path="/somewhere/else"))

    report = await clean_leftovers(scene.repo, found.leftovers, dry_run=False, force=False)

    failed = [a for a in report.actions if a.outcome == "failed"]
    assert [a.leftover.branch for a in failed] == ["forkmerge-agents/crashed/a"]
    assert failed[0].reason is not None and "left alone" in failed[0].reason
    assert failed[0].freed_bytes == 0
    assert report.failed
    assert scene.exists("crashed/a")
    assert not scene.exists("crashed/b") and not scene.exists("vanish/x")
    assert report.count("removed") == 6


async def test_a_branch_deleted_meanwhile_is_no_failure(scene: Scene) -> None:
    found = await scan(scene)
    scene.git("branch", "-D", "forkmerge-agents/stored/s")
    chosen = select_leftovers(found.leftovers, job_id="stored", now=time.time())
    report = await clean_leftovers(scene.repo, chosen, dry_run=False, force=False)
    assert outcomes(report) == {"forkmerge-agents/stored/s": "removed"}


async def test_a_branch_checked_out_meanwhile_is_left_alone(scene: Scene, tmp_path: Path) -> None:
    found = await scan(scene)
    scene.git("worktree", "add", "--quiet", str(tmp_path / "late"), "forkmerge-agents/stored/s")
    chosen = select_leftovers(found.leftovers, job_id="stored", now=time.time())
    report = await clean_leftovers(scene.repo, chosen, dry_run=False, force=False)
    assert outcomes(report) == {"forkmerge-agents/stored/s": "failed"}
    assert "checked out" in (report.actions[0].reason or "")
    assert "forkmerge-agents/stored/s" in scene.branches()


# -- an agent's merge that the job store has not recorded --------------------------------------


async def test_a_merge_the_store_has_not_recorded_keeps_the_agent_branch(scene: Scene) -> None:
    merge = await merged_agent(scene)
    found = by_branch(await scan(scene))
    assert found["forkmerge-agents/crashed/a"].unrecorded_merge == merge
    assert found["forkmerge-agents/crashed/b"].unrecorded_merge is None  # nothing merged

    report = await clean(scene, job_id="crashed")
    action = next(a for a in report.actions if a.leftover.branch == "forkmerge-agents/crashed/a")
    assert (action.outcome, action.branch_deleted) == ("removed", False)
    assert action.reason is not None and "resume crashed" in action.reason
    assert not scene.exists("crashed/a")  # the disk is freed
    assert "forkmerge-agents/crashed/a" in scene.branches()  # resume still needs it

    again = await clean(scene, job_id="crashed")
    assert outcomes(again) == {"forkmerge-agents/crashed/a": "skipped"}
    assert "forkmerge-agents/crashed/a" in scene.branches()
    forced = await clean(scene, job_id="crashed", force=True)
    assert outcomes(forced) == {"forkmerge-agents/crashed/a": "removed"}
    assert "forkmerge-agents/crashed/a" not in scene.branches()


async def test_an_earlier_merge_is_found_below_later_ones(scene: Scene) -> None:
    first = await merged_agent(scene)
    later = await merged_agent(scene, "crashed/b")
    found = by_branch(await scan(scene))
    assert found["forkmerge-agents/crashed/a"].unrecorded_merge == first
    assert found["forkmerge-agents/crashed/b"].unrecorded_merge == later
    scene.git("update-ref", "-d", "refs/heads/forkmerge/crashed")  # no job branch: no merge
    found = by_branch(await scan(scene))
    assert found["forkmerge-agents/crashed/a"].unrecorded_merge is None


async def test_a_recorded_merge_lets_the_agent_branch_go(scene: Scene) -> None:
    merge = await merged_agent(scene)
    with scene.layout.open_store() as store:
        await store.append_many(
            "crashed",
            [
                JobPlanned(("a",)),
                ItemStarted("a", 1),
                ItemSucceeded("a"),
                ItemMerged("a", merge),
            ],
        )
    assert by_branch(await scan(scene))["forkmerge-agents/crashed/a"].unrecorded_merge is None
    report = await clean(scene, job_id="crashed")
    assert outcomes(report)["forkmerge-agents/crashed/a"] == "removed"
    assert "forkmerge-agents/crashed/a" not in scene.branches()


async def test_a_completed_job_has_no_unrecorded_merge(scene: Scene) -> None:
    merge = await merged_agent(scene)
    known = {
        "crashed": KnownJob("crashed", JobStatus.COMPLETED, "forkmerge/crashed"),
    }
    found = by_branch(scan_leftovers(scene.repo, scene.layout, known))
    assert found["forkmerge-agents/crashed/a"].unrecorded_merge is None
    resumable = {"crashed": attrs.evolve(known["crashed"], status=JobStatus.INTERRUPTED)}
    found = by_branch(scan_leftovers(scene.repo, scene.layout, resumable))
    assert found["forkmerge-agents/crashed/a"].unrecorded_merge == merge


async def test_known_jobs_reads_status_branch_and_recorded_merges(tmp_path: Path) -> None:
    with SqliteJobStore(str(tmp_path / "jobs.sqlite3")) as store:
        await store.create_job(record("one", JobStatus.RUNNING))
        await store.create_job(record("two", JobStatus.COMPLETED))
        await store.append_many(
            "one",
            [JobPlanned(("k",)), ItemStarted("k", 1), ItemSucceeded("k"), ItemMerged("k", "c1")],
        )
        known = await known_jobs(store)
    assert known == {
        "one": KnownJob("one", JobStatus.RUNNING, "forkmerge/one", frozenset({"c1"})),
        "two": KnownJob("two", JobStatus.COMPLETED, "forkmerge/two", frozenset()),
    }
    assert known["one"].resumable and not known["two"].resumable


# -- selection and disk usage ----------------------------------------------------------------


def leftover(job_id: str, created: float) -> Leftover:
    return Leftover(
        "branch", job_id, "a", f"forkmerge-agents/{job_id}/a", None, None, "", created, 0, None, ()
    )


def test_selection_by_job_and_age() -> None:
    items = [leftover("one", 0.0), leftover("one", 90.0), leftover("two", 0.0)]
    assert select_leftovers(items, now=100.0) == items
    assert select_leftovers(items, job_id="one", now=100.0) == items[:2]
    assert select_leftovers(items, older_than=10.0, now=100.0) == [items[0], items[2]]
    assert select_leftovers(items, older_than=100.0, now=100.0) == []  # older, not as old
    assert select_leftovers(items, job_id="three", now=100.0) == []


def test_an_age_is_never_negative() -> None:
    assert leftover("one", 200.0).age(100.0) == 0.0


def test_disk_usage_counts_hard_links_once_and_follows_no_symlink(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.mkdir()
    (big / "data").write_bytes(b"x" * 200_000)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "file").write_bytes(b"y" * 50_000)
    os.link(tree / "file", tree / "again")
    os.symlink(big, tree / "link")
    (tree / "sub").mkdir()
    (tree / "sub" / "more").write_bytes(b"z" * 50_000)

    usage = disk_usage(str(tree))

    assert 100_000 <= usage < 200_000
    assert disk_usage(str(big)) > 200_000
    assert disk_usage(str(tree / "file")) >= 50_000
    assert disk_usage(str(tmp_path / "missing")) == 0


def test_disk_usage_skips_what_it_cannot_read(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "secret").write_bytes(b"s" * 100_000)
    os.chmod(locked, 0)
    try:
        usage = disk_usage(str(tmp_path))
    finally:
        os.chmod(locked, 0o700)
    if os.geteuid() != 0:  # root reads it anyway
        assert usage < 100_000

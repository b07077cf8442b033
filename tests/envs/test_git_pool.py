"""Pool slots on real git (GitWorktreeManager, envs.git_pool_slots) and WorktreePool over them."""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from pathlib import Path

import pygit2
import pytest
import trio
import trio.testing
from returns.result import Success

from envs import slot_reset
from envs.git_merger import GitMerger
from envs.git_worktrees import GitWorktreeManager
from envs.pool import WorktreePool
from envs.protocols import Worktree
from envs.tree_removal import remove_tree
from envs.worktree_layout import MARKER_FILE, worktree_id
from tests.envs.conftest import GitRepo, admin_dir, error_of, marker_of, ok, read, write

JOB = "forkmerge/job1"


def agent_branches(repo: GitRepo) -> list[str]:
    listed = repo.git("branch", "--list", "--format=%(refname:short)", "forkmerge-agents/*")
    return listed.splitlines()


def status(repo: GitRepo, worktree: Worktree) -> str:
    """Everything git sees in the worktree: changes, untracked and ignored files."""
    return repo.git(
        "status", "--porcelain", "--untracked-files=all", "--ignored", cwd=worktree.path
    )


def files_in(path: str) -> list[str]:
    """Every file and directory below ``path`` but ``.git``, relative, sorted."""
    found = []
    for directory, subdirectories, files in os.walk(path):
        subdirectories[:] = [each for each in subdirectories if each != ".git"]
        relative = os.path.relpath(directory, path)
        prefix = "" if relative == "." else f"{relative}/"
        found += [f"{prefix}{each}/" for each in subdirectories]
        found += [f"{prefix}{each}" for each in files if each != ".git"]
    return sorted(found)


def clone_into(repo: GitRepo, path: str) -> None:
    """A repository with a commit inside a worktree, as an agent's ``git clone`` leaves."""
    repo.git("init", "--quiet", path)
    write(os.path.join(path, "vendored.txt"), "vendored\n")
    repo.git("add", "vendored.txt", cwd=path)
    repo.git("-c", "user.name=A", "-c", "user.email=a@b", "commit", "--quiet", "-m", "v", cwd=path)


async def setup(repo: GitRepo) -> tuple[GitWorktreeManager, GitMerger, Worktree]:
    write(os.path.join(repo.path, ".gitignore"), "*.log\nbuild/\n")
    write(os.path.join(repo.path, "src", "lib.py"), "x = 1\n")
    repo.git("add", ".gitignore", "src/lib.py")
    repo.git("commit", "--quiet", "-m", "ignore logs")
    manager = GitWorktreeManager(repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    return manager, GitMerger(repo.path), job


async def commit_in(manager: GitWorktreeManager, worktree: Worktree, path: str, text: str) -> str:
    write(os.path.join(worktree.path, path), text)
    commit = ok(await manager.commit_changes(worktree, f"write {path}"))
    assert commit is not None
    return commit


# -- the slot operations ------------------------------------------------------------------------


async def test_a_new_slot_is_detached_at_the_job_head_with_no_branch(git_repo: GitRepo) -> None:
    manager, _, job = await setup(git_repo)

    slot = ok(await manager.create_pool_worktree("job1", 0, JOB))

    assert slot.name == worktree_id("job1", "pool-0")
    assert (slot.branch, slot.base_commit) == ("", git_repo.rev(JOB))
    assert os.path.dirname(slot.path) == manager.state_dir
    assert git_repo.git("rev-parse", "--abbrev-ref", "HEAD", cwd=slot.path) == "HEAD"
    assert git_repo.git("rev-parse", "HEAD", cwd=slot.path) == job.base_commit
    assert status(git_repo, slot) == ""
    assert agent_branches(git_repo) == []  # the temporary branch of the checkout is gone
    marker = marker_of(git_repo, slot)
    assert (marker["name"], marker["branch"], marker["job_id"]) == ("pool-0", "", "job1")
    assert not os.path.exists(os.path.join(manager.state_dir, ".pending"))
    assert ok(await manager.pool_worktree_clean(slot)) is True


async def test_assign_gives_a_fresh_branch_at_the_current_head_and_exactly_its_files(
    git_repo: GitRepo,
) -> None:
    manager, merger, _job = await setup(git_repo)
    slot = ok(await manager.create_pool_worktree("job1", 0, JOB))
    first = ok(await manager.assign_pool_worktree(slot, "agent-1", JOB))
    await commit_in(manager, first, "first.txt", "first\n")
    merged = ok(await merger.merge(first.branch, JOB, "merge first")).commit
    # What the first agent leaves behind: changes, deletions, untracked, ignored, empty dirs.
    write(os.path.join(first.path, "notes.txt"), "changed, never committed\n")
    os.remove(os.path.join(first.path, "README.md"))
    write(os.path.join(first.path, "scratch", "deep", "tmp.txt"), "untracked\n")
    write(os.path.join(first.path, "run.log"), "ignored\n")
    write(os.path.join(first.path, "build", "out.o"), "ignored directory\n")
    write(os.path.join(first.path, "src", "new.py"), "untracked in a tracked directory\n")
    os.makedirs(os.path.join(first.path, "empty", "deeper"))
    os.symlink("/etc", os.path.join(first.path, "link"))
    ok(await manager.release_pool_worktree(first))

    second = ok(await manager.assign_pool_worktree(slot, "agent-2", JOB))

    assert (second.name, second.path) == (slot.name, slot.path)
    assert second.branch == "forkmerge-agents/job1/agent-2"
    assert second.base_commit == merged == git_repo.rev(JOB) == git_repo.rev(second.branch)
    assert git_repo.git("symbolic-ref", "--short", "HEAD", cwd=slot.path) == second.branch
    assert status(git_repo, second) == ""
    assert files_in(slot.path) == sorted(
        [".gitignore", "README.md", "first.txt", "notes.txt", "src/", "src/lib.py"]
    )
    assert read(os.path.join(slot.path, "notes.txt")) == "one\ntwo\nthree\n"
    assert marker_of(git_repo, second)["branch"] == second.branch
    assert ok(await manager.pool_worktree_clean(second)) is True
    assert agent_branches(git_repo) == [second.branch]


async def test_assign_replaces_a_leftover_branch_and_a_previous_agents(git_repo: GitRepo) -> None:
    manager, _, job = await setup(git_repo)
    git_repo.git("branch", "forkmerge-agents/job1/agent-2", "HEAD~1")  # left by a crash
    slot = ok(await manager.create_pool_worktree("job1", 0, JOB))
    first = ok(await manager.assign_pool_worktree(slot, "agent-1", JOB))

    second = ok(await manager.assign_pool_worktree(first, "agent-2", JOB))  # no release between

    assert git_repo.rev(second.branch) == job.base_commit
    assert agent_branches(git_repo) == [second.branch]


async def test_release_detaches_where_the_agent_ended_and_deletes_its_branch(
    git_repo: GitRepo,
) -> None:
    manager, _, _job = await setup(git_repo)
    slot = ok(await manager.create_pool_worktree("job1", 0, JOB))
    agent = ok(await manager.assign_pool_worktree(slot, "agent-1", JOB))
    commit = await commit_in(manager, agent, "work.txt", "work\n")
    write(os.path.join(agent.path, "junk.txt"), "left for the next reset\n")

    ok(await manager.release_pool_worktree(agent))
    ok(await manager.release_pool_worktree(agent))  # idempotent

    assert agent_branches(git_repo) == []
    assert git_repo.git("rev-parse", "--abbrev-ref", "HEAD", cwd=slot.path) == "HEAD"
    assert git_repo.git("rev-parse", "HEAD", cwd=slot.path) == commit
    assert read(os.path.join(slot.path, "junk.txt")) == "left for the next reset\n"
    marker = marker_of(git_repo, slot)
    assert (marker["branch"], marker["base_commit"]) == ("", commit)
    assert ok(await manager.pool_worktree_clean(slot)) is False  # junk.txt


async def test_a_nested_repository_is_deleted_by_the_reset(git_repo: GitRepo) -> None:
    manager, _, _job = await setup(git_repo)
    slot = ok(await manager.create_pool_worktree("job1", 0, JOB))
    agent = ok(await manager.assign_pool_worktree(slot, "agent-1", JOB))
    nested = os.path.join(agent.path, "vendor")
    clone_into(git_repo, nested)
    ok(await manager.release_pool_worktree(agent))

    again = ok(await manager.assign_pool_worktree(slot, "agent-2", JOB))

    # As git clean -ffdx: nothing of the previous agent stays, a clone neither.
    assert not os.path.exists(nested)
    assert ok(await manager.pool_worktree_clean(again)) is True


async def test_a_path_the_reset_cannot_delete_fails_the_assignment_and_the_pool_discards_it(
    git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager, _, _job = await setup(git_repo)

    def refuse_stuck(path: str) -> None:  # as a root-owned file refuses a user's deletion
        if not path.endswith("stuck"):
            remove_tree(path)

    monkeypatch.setattr("envs.slot_reset.remove_tree", refuse_stuck)
    slot = ok(await manager.create_pool_worktree("job1", 5, JOB))
    agent = ok(await manager.assign_pool_worktree(slot, "agent-0", JOB))
    write(os.path.join(agent.path, "stuck", "root-owned.bin"), "git cannot delete me\n")
    ok(await manager.release_pool_worktree(agent))
    error = error_of(await manager.assign_pool_worktree(slot, "agent-x", JOB))
    assert "still differs from its commit after its reset: stuck" in error.message
    ok(await manager.remove_worktree(slot))

    pool = WorktreePool(manager, "job1", JOB, 1)
    first = ok(await pool.acquire("agent-1"))
    write(os.path.join(first.path, "stuck", "root-owned.bin"), "git cannot delete me\n")
    ok(await pool.release(first))
    replacement = ok(await pool.acquire("agent-2"))

    assert replacement.name == worktree_id("job1", "pool-1")
    assert not os.path.exists(first.path)
    assert (pool.metrics.discarded, pool.metrics.misses) == (1, 2)
    ok(await pool.close())
    assert agent_branches(git_repo) == []


async def test_clean_looks_at_the_branch_checked_out(git_repo: GitRepo) -> None:
    manager, _, _job = await setup(git_repo)
    slot = ok(await manager.create_pool_worktree("job1", 0, JOB))
    agent = ok(await manager.assign_pool_worktree(slot, "agent-1", JOB))
    assert ok(await manager.pool_worktree_clean(slot)) is False  # the slot is not detached
    assert ok(await manager.pool_worktree_clean(agent)) is True
    os.makedirs(os.path.join(agent.path, "empty"))
    assert ok(await manager.pool_worktree_clean(agent)) is False  # git status shows nothing
    error = error_of(await manager.pool_worktree_clean(Worktree("fm-x", "/nowhere", "", "")))
    assert error.operation == "pool_worktree_clean"


async def test_refusals_name_what_is_wrong(git_repo: GitRepo) -> None:
    manager, _, job = await setup(git_repo)
    slot = ok(await manager.create_pool_worktree("job1", 0, JOB))
    refused = [
        (await manager.create_pool_worktree("job1", 1, "main"), "not the branch of job job1"),
        (await manager.create_pool_worktree("job1", -1, JOB), "pool slot must be a number"),
        (await manager.create_pool_worktree("../x", 1, JOB), "job id '../x'"),
        (await manager.create_pool_worktree("job1", 0, JOB), "already exists in this process"),
        (await manager.assign_pool_worktree(job, "agent-1", JOB), "not a forkmerge pool worktree"),
        (await manager.assign_pool_worktree(slot, "pool-3", JOB), "reserved for pool slots"),
        (await manager.assign_pool_worktree(slot, "a/b", JOB), "agent name 'a/b'"),
        (await manager.assign_pool_worktree(slot, "agent-1", "main"), "not a forkmerge job"),
        (await manager.release_pool_worktree(job), "not a forkmerge pool worktree"),
        (
            await manager.release_pool_worktree(Worktree(slot.name, slot.path, "main", "")),
            "not an agent branch",
        ),
        (
            await manager.remove_worktree(Worktree(slot.name, slot.path, "main", "")),
            "not forkmerge's",
        ),
    ]
    for result, expected in refused:
        assert expected in error_of(result).message
    assert git_repo.has_branch("main")
    assert ok(await manager.pool_worktree_clean(slot)) is True


async def test_a_slot_left_by_an_earlier_process_is_replaced(git_repo: GitRepo) -> None:
    manager, _, _job = await setup(git_repo)
    slot = ok(await manager.create_pool_worktree("job1", 0, JOB))
    stale = ok(await manager.assign_pool_worktree(slot, "agent-1", JOB))
    write(os.path.join(stale.path, "stale.txt"), "stale\n")
    marker = marker_of(git_repo, slot)
    marker["created"] = 0.0  # written long before this process started
    with open(os.path.join(admin_dir(git_repo, slot), MARKER_FILE), "w", encoding="utf-8") as file:
        json.dump(marker, file)

    fresh = ok(await manager.create_pool_worktree("job1", 0, JOB))

    assert fresh.path == slot.path
    assert not os.path.exists(os.path.join(fresh.path, "stale.txt"))
    assert agent_branches(git_repo) == []


# -- removal and leftovers ---------------------------------------------------------------------


async def test_a_slot_is_removed_by_the_handle_of_any_of_its_states(git_repo: GitRepo) -> None:
    manager, _, job = await setup(git_repo)
    for number, handle in enumerate(("idle", "assigned", "released")):
        slot = ok(await manager.create_pool_worktree("job1", number, JOB))
        agent = ok(await manager.assign_pool_worktree(slot, f"agent-{number}", JOB))
        if handle == "released":
            ok(await manager.release_pool_worktree(agent))
        target = slot if handle == "idle" else agent
        ok(await manager.remove_worktree(target))
        assert not os.path.exists(slot.path)
        assert agent_branches(git_repo) == []
        ok(await manager.remove_worktree(target))  # idempotent
    listed = [os.path.realpath(path) for path in git_repo.worktree_paths()]
    assert listed == [os.path.realpath(git_repo.path), os.path.realpath(job.path)]


async def test_a_read_only_tree_in_a_slot_is_removed(git_repo: GitRepo) -> None:
    manager, _, _job = await setup(git_repo)
    slot = ok(await manager.create_pool_worktree("job1", 0, JOB))
    agent = ok(await manager.assign_pool_worktree(slot, "agent-1", JOB))
    locked = os.path.join(agent.path, "locked")
    write(os.path.join(locked, "file.txt"), "read only\n")
    os.chmod(locked, stat.S_IRUSR | stat.S_IXUSR)
    ok(await manager.release_pool_worktree(agent))
    # Without write permission the reset cannot delete what is inside and fails (the pool
    # would discard the slot); where permissions do not bind (root), it deletes it.
    again = await manager.assign_pool_worktree(slot, "agent-2", JOB)
    if isinstance(again, Success):
        assert not os.path.exists(locked)
        assert ok(await manager.pool_worktree_clean(again.unwrap())) is True
    else:
        assert error_of(again).operation == "assign_pool_worktree"
    ok(await manager.remove_worktree(slot))
    assert not os.path.exists(slot.path)
    assert agent_branches(git_repo) == []


async def test_leftovers_report_slots_once_with_their_agents_branch(git_repo: GitRepo) -> None:
    manager, merger, _job = await setup(git_repo)
    idle = ok(await manager.create_pool_worktree("job1", 0, JOB))
    busy_slot = ok(await manager.create_pool_worktree("job1", 1, JOB))
    busy = ok(await manager.assign_pool_worktree(busy_slot, "agent-0002-b", JOB))
    await commit_in(manager, busy, "b.txt", "b\n")
    ok(await merger.merge(busy.branch, JOB, "merge b"))
    plain = ok(await manager.create_agent_worktree("agent-0003-c", JOB))
    git_repo.git("branch", "forkmerge-agents/job1/agent-0004-d")  # a branch alone

    leftovers = ok(await manager.agent_leftovers("job1"))

    by_name = {leftover.name: leftover for leftover in leftovers}
    assert len(leftovers) == len(by_name) == 4
    assert by_name[idle.name] == Worktree(idle.name, idle.path, "", idle.base_commit)
    assert by_name[busy.name] == busy
    assert by_name[plain.name].branch == plain.branch
    assert by_name[worktree_id("job1", "agent-0004-d")].branch == (
        "forkmerge-agents/job1/agent-0004-d"
    )
    # What a resume does: check each branch, then remove every leftover.
    assert ok(await merger.is_merged(busy.branch, JOB)) is True
    for leftover in leftovers:
        ok(await manager.remove_worktree(leftover))
    assert agent_branches(git_repo) == []
    assert len(git_repo.worktree_paths()) == 2  # the repository and the job's worktree
    assert ok(await manager.agent_leftovers("job1")) == []


async def test_a_slot_killed_in_each_state_is_found_and_removed(git_repo: GitRepo) -> None:
    manager, _, _job = await setup(git_repo)
    # Killed after the temporary branch of the checkout, before the slot detached.
    creating = ok(await manager.create_pool_worktree("job1", 0, JOB))
    git_repo.git("branch", "forkmerge-agents/job1/pool-0", JOB)
    # Killed after the agent branch was created, before the marker named it.
    assigning = ok(await manager.create_pool_worktree("job1", 1, JOB))
    git_repo.git("branch", "forkmerge-agents/job1/agent-7", JOB)
    # Killed after the marker went idle, before the branch was deleted.
    releasing = ok(await manager.create_pool_worktree("job1", 2, JOB))
    git_repo.git("branch", "forkmerge-agents/job1/agent-8", JOB)

    leftovers = ok(await manager.agent_leftovers("job1"))

    assert {leftover.path for leftover in leftovers} >= {
        creating.path,
        assigning.path,
        releasing.path,
    }
    for leftover in leftovers:
        ok(await manager.remove_worktree(leftover))
    assert agent_branches(git_repo) == []
    assert len(git_repo.worktree_paths()) == 2


# -- the pool on real git ---------------------------------------------------------------------


async def test_a_pool_serves_agents_and_close_leaves_nothing(git_repo: GitRepo) -> None:
    manager, merger, job = await setup(git_repo)
    pool = WorktreePool(manager, "job1", JOB, 2)
    for round_ in range(3):
        lent = [ok(await pool.acquire(f"agent-{round_}-{side}")) for side in "ab"]
        for worktree in lent:
            assert git_repo.rev(worktree.branch) == git_repo.rev(JOB) == worktree.base_commit
            assert status(git_repo, worktree) == ""
        for worktree in lent:
            await commit_in(manager, worktree, f"out/{worktree.branch.rsplit('/')[-1]}", "x\n")
            write(os.path.join(worktree.path, "debug.log"), "ignored\n")
            ok(await merger.merge(worktree.branch, JOB, f"merge {worktree.branch}"))
            ok(await pool.release(worktree))
    assert len(git_repo.files_on(JOB)) == 4 + 6
    assert (pool.metrics.misses, pool.metrics.hits, pool.metrics.peak_slots) == (2, 4, 2)

    ok(await pool.close())

    assert agent_branches(git_repo) == []
    listed = [os.path.realpath(path) for path in git_repo.worktree_paths()]
    assert listed == [os.path.realpath(git_repo.path), os.path.realpath(job.path)]
    assert sorted(os.listdir(manager.state_dir)) == [job.name]
    assert ok(await manager.agent_leftovers("job1")) == []


async def test_an_acquisition_cancelled_during_the_checkout_loses_no_slot(
    git_repo: GitRepo,
) -> None:
    manager, _, job = await setup(git_repo)
    pool = WorktreePool(manager, "job1", JOB, 1)
    with trio.CancelScope() as scope:

        async def cancel_when_busy() -> None:
            await trio.testing.wait_all_tasks_blocked()  # the slot's checkout is under way
            scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_when_busy)
            await pool.acquire("agent-1")
            pytest.fail("a cancelled acquire returned")
    assert agent_branches(git_repo) == []
    assert pool.metrics.in_use == 0
    assert pool.metrics.slots == len(git_repo.worktree_paths()) - 2  # 0 or 1: never lost
    ok(await pool.close())
    assert len(git_repo.worktree_paths()) == 2
    assert sorted(os.listdir(manager.state_dir)) == [job.name]


# -- timing (printed, not asserted: benchmarks/ measures) -------------------------------------


async def test_print_assign_and_create_times_on_two_thousand_files(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    for index in range(2000):
        write(os.path.join(git_repo.path, f"d{index // 100}", f"f{index}.txt"), f"{index}\n" * 5)
    manager, _, _job = await setup(git_repo)  # commits the generated files too
    git_repo.git("add", ".")
    git_repo.git("commit", "--quiet", "-m", "two thousand files")
    job = ok(await manager.create_job_worktree("job2"))
    rounds = 3

    started = time.perf_counter()
    for index in range(rounds):
        agent = ok(await manager.create_agent_worktree(f"agent-{index}", job.branch))
        ok(await manager.remove_worktree(agent))
    unpooled = (time.perf_counter() - started) / rounds

    slot = ok(await manager.create_pool_worktree("job2", 0, job.branch))
    started = time.perf_counter()
    for index in range(rounds):
        agent = ok(await manager.assign_pool_worktree(slot, f"agent-{index}", job.branch))
        assert ok(await manager.pool_worktree_clean(agent)) is True
        write(os.path.join(agent.path, "d3", "f300.txt"), "changed\n")
        ok(await manager.release_pool_worktree(agent))
    pooled = (time.perf_counter() - started) / rounds

    print(
        f"\n2,000 files: create+remove {unpooled * 1000:.0f} ms, "
        f"assign+check+release {pooled * 1000:.0f} ms, ratio {unpooled / pooled:.1f}x"
    )
    ok(await manager.remove_worktree(slot))


# -- damaged slots --------------------------------------------------------------------------


async def test_a_slot_whose_directory_vanished_fails_to_assign_and_is_removable(
    git_repo: GitRepo,
) -> None:
    manager, _, _job = await setup(git_repo)
    slot = ok(await manager.create_pool_worktree("job1", 0, JOB))
    shutil.rmtree(slot.path)

    error = error_of(await manager.assign_pool_worktree(slot, "agent-1", JOB))

    assert "does not exist" in error.message
    ok(await manager.remove_worktree(slot))
    assert agent_branches(git_repo) == []
    assert len(git_repo.worktree_paths()) == 2


async def test_a_leftover_directory_at_a_slot_path_is_replaced(git_repo: GitRepo) -> None:
    manager, _, _job = await setup(git_repo)
    path = os.path.join(manager.state_dir, worktree_id("job1", "pool-0"))
    write(os.path.join(path, "junk.txt"), "left over\n")

    slot = ok(await manager.create_pool_worktree("job1", 0, JOB))

    assert slot.path == path
    assert not os.path.exists(os.path.join(path, "junk.txt"))
    assert ok(await manager.pool_worktree_clean(slot)) is True


async def test_a_failed_creation_leaves_no_branch_nor_worktree(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the state directory should be\n")
    manager = GitWorktreeManager(git_repo.path, state_dir=str(blocked))
    git_repo.git("branch", JOB)  # the job branch, without a worktree of its own

    error = error_of(await manager.create_pool_worktree("job1", 0, JOB))

    assert error.operation == "create_pool_worktree"
    assert agent_branches(git_repo) == []
    assert git_repo.worktree_paths() == [git_repo.path]


async def test_a_slot_whose_checkout_fails_is_undone(
    git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager, _, job = await setup(git_repo)

    def full_disk(path: str, commit: object, filters: object) -> None:
        raise OSError(28, "No space left on device", path)

    monkeypatch.setattr("envs.git_worktrees.fill_worktree", full_disk)
    error = error_of(await manager.create_pool_worktree("job1", 0, JOB))

    assert error.operation == "create_pool_worktree"
    assert "No space left on device" in error.message
    assert agent_branches(git_repo) == []
    assert sorted(os.listdir(manager.state_dir)) == [job.name]
    assert len(git_repo.worktree_paths()) == 2


async def test_a_new_slot_lent_at_its_own_commit_is_not_reset_again(
    git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager, _, job = await setup(git_repo)
    resets: list[str] = []
    real_reset = slot_reset.reset_slot

    def recording(repo: pygit2.Repository, commit: pygit2.Oid) -> None:
        resets.append(str(commit))
        real_reset(repo, commit)

    monkeypatch.setattr("envs.git_pool_slots.reset_slot", recording)
    fresh = ok(await manager.create_pool_worktree("job1", 0, JOB))
    first = ok(await manager.assign_pool_worktree(fresh, "agent-1", JOB))
    assert resets == []  # checked out at this very commit a moment ago
    assert ok(await manager.pool_worktree_clean(first)) is True

    stale = ok(await manager.create_pool_worktree("job1", 1, JOB))
    moved = await commit_in(manager, job, "moved.txt", "the job moved on\n")
    second = ok(await manager.assign_pool_worktree(stale, "agent-2", JOB))
    assert resets == [moved]  # created before the job moved: reset to the new head
    assert ok(await manager.pool_worktree_clean(second)) is True
    ok(await manager.release_pool_worktree(first))
    again = ok(await manager.assign_pool_worktree(fresh, "agent-3", JOB))
    assert resets == [moved, moved]  # lent before: always reset
    assert ok(await manager.pool_worktree_clean(again)) is True

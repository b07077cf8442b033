"""GitMerger: in-memory merges into a job branch, in real temporary repositories."""

from __future__ import annotations

import os
from pathlib import Path

import pygit2
import pytest
import trio
from returns.result import Failure, Result, Success

from envs.git_merger import GitMerger
from envs.git_repository import (
    GitProblem,
    NotARepositoryError,
    locate_repository,
    open_repository,
    update_branch_if_unchanged,
)
from envs.git_worktrees import GitWorktreeManager
from envs.protocols import MergeConflict, MergeOutcome, Worktree, WorktreeError
from tests.envs.conftest import GitRepo, ok, write


async def agent_with(
    manager: GitWorktreeManager, job: Worktree, name: str, files: dict[str, str]
) -> Worktree:
    """An agent worktree from the job branch's head with ``files`` written and committed."""
    agent = ok(await manager.create_agent_worktree(name, job.branch))
    for relative, content in files.items():
        write(os.path.join(agent.path, relative), content)
    ok(await manager.commit_changes(agent, f"work of {name}"))
    return agent


def test_a_directory_outside_any_repository_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotARepositoryError):
        GitMerger(str(tmp_path))


async def test_non_conflicting_agents_from_the_same_base_both_land(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    merger = GitMerger(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    first = await agent_with(manager, job, "agent-1", {"one.txt": "1\n"})
    second = await agent_with(manager, job, "agent-2", {"two.txt": "2\n"})
    assert first.base_commit == second.base_commit == job.base_commit

    one = ok(await merger.merge(first.branch, job.branch, "merge agent-1"))
    two = ok(await merger.merge(second.branch, job.branch, "merge agent-2"))

    assert one.target_branch == two.target_branch == job.branch
    assert git_repo.rev(job.branch) == two.commit
    assert git_repo.files_on(job.branch) == ["README.md", "notes.txt", "one.txt", "two.txt"]
    merges = git_repo.git("rev-list", "--merges", f"{job.base_commit}..{job.branch}").splitlines()
    assert merges == [two.commit, one.commit]
    assert git_repo.git("log", "-1", "--format=%P", two.commit).split() == [
        one.commit,
        git_repo.rev(second.branch),
    ]
    assert git_repo.git("log", "-1", "--format=%s|%an", two.commit) == "merge agent-2|Test User"


async def test_a_fast_forwardable_merge_still_makes_a_merge_commit(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    merger = GitMerger(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    agent = await agent_with(manager, job, "agent-1", {"one.txt": "1\n"})

    merged = ok(await merger.merge(agent.branch, job.branch, "merge"))

    parents = git_repo.git("log", "-1", "--format=%P", job.branch).split()
    assert parents == [job.base_commit, git_repo.rev(agent.branch)]
    assert merged.commit == git_repo.rev(job.branch)


async def test_a_conflicting_pair_gives_one_success_and_one_conflict(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    merger = GitMerger(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    first = await agent_with(manager, job, "agent-1", {"notes.txt": "one\nFIRST\nthree\n"})
    second = await agent_with(manager, job, "agent-2", {"notes.txt": "one\nSECOND\nthree\n"})

    ok(await merger.merge(first.branch, job.branch, "merge agent-1"))
    target_before = git_repo.rev(job.branch)
    conflict = await merger.merge(second.branch, job.branch, "merge agent-2")

    assert conflict == Failure(MergeConflict(second.branch, job.branch, ("notes.txt",)))
    assert git_repo.rev(job.branch) == target_before
    assert git_repo.show(job.branch, "notes.txt") == "one\nFIRST\nthree"
    assert "notes.txt" in str(conflict.failure())


async def test_conflicts_list_every_path_sorted(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    merger = GitMerger(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    first = await agent_with(manager, job, "a1", {"notes.txt": "x\n", "README.md": "x\n"})
    second = await agent_with(manager, job, "a2", {"notes.txt": "y\n", "README.md": "y\n"})
    ok(await merger.merge(first.branch, job.branch, "merge a1"))

    conflict = await merger.merge(second.branch, job.branch, "merge a2")

    assert isinstance(conflict, Failure)
    assert conflict.failure().paths == ("README.md", "notes.txt")


async def test_nothing_to_merge(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    merger = GitMerger(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    idle = ok(await manager.create_agent_worktree("idle", job.branch))
    busy = await agent_with(manager, job, "busy", {"busy.txt": "busy\n"})

    assert ok(await merger.merge(idle.branch, job.branch, "m")) == MergeOutcome(None, job.branch)
    assert git_repo.rev(job.branch) == job.base_commit
    merged = ok(await merger.merge(busy.branch, job.branch, "m"))
    assert merged.commit is not None
    again = ok(await merger.merge(busy.branch, job.branch, "m again"))
    assert again == MergeOutcome(None, job.branch)
    assert git_repo.rev(job.branch) == merged.commit
    # idle started before busy was merged: it is an ancestor, so still nothing to merge
    assert ok(await merger.merge(idle.branch, job.branch, "m")) == MergeOutcome(None, job.branch)


async def test_a_missing_branch_is_an_error_naming_it(git_repo: GitRepo) -> None:
    merger = GitMerger(git_repo.path)
    result = await merger.merge("forkmerge-agents/job1/ghost", "main", "m")
    assert isinstance(result, Failure)
    error = result.failure()
    assert isinstance(error, WorktreeError)
    assert error.operation == "merge"
    assert "forkmerge-agents/job1/ghost does not exist" in error.message


async def test_concurrent_merges_are_serialized_and_all_land(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    merger = GitMerger(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    agents = [
        await agent_with(manager, job, f"agent-{n}", {f"file-{n}.txt": f"{n}\n"}) for n in range(6)
    ]
    outcomes: list[Result[MergeOutcome, MergeConflict | WorktreeError]] = []

    async def merge(agent: Worktree) -> None:
        outcomes.append(await merger.merge(agent.branch, job.branch, f"merge {agent.branch}"))

    async with trio.open_nursery() as nursery:
        for agent in agents:
            nursery.start_soon(merge, agent)

    assert all(isinstance(outcome, Success) for outcome in outcomes)
    files = git_repo.files_on(job.branch)
    assert all(f"file-{n}.txt" in files for n in range(6))
    merges = git_repo.git("rev-list", "--merges", "--count", f"{job.base_commit}..{job.branch}")
    assert merges == "6"


async def test_merging_does_not_touch_any_working_tree(git_repo: GitRepo) -> None:
    write(os.path.join(git_repo.path, "notes.txt"), "dirty\n")
    before = git_repo.user_state()
    manager = GitWorktreeManager(git_repo.path)
    merger = GitMerger(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    agent = await agent_with(manager, job, "agent-1", {"new.txt": "new\n"})

    ok(await merger.merge(agent.branch, job.branch, "merge"))

    assert git_repo.user_state() == before
    assert not os.path.exists(os.path.join(job.path, "new.txt"))  # stale until synced


def test_the_branch_update_is_a_compare_and_swap(git_repo: GitRepo) -> None:
    repo = open_repository(locate_repository(git_repo.path))
    parent = repo.head.peel(pygit2.Commit)
    head, tree = parent.id, parent.tree_id
    signature = pygit2.Signature("t", "t@example.com")
    ours = repo.create_commit(None, signature, signature, "ours", tree, [head])
    theirs = repo.create_commit(None, signature, signature, "theirs", tree, [head])
    update_branch_if_unchanged(repo, "main", head, theirs, "someone else")

    with pytest.raises(GitProblem, match="moved"):
        update_branch_if_unchanged(repo, "main", head, ours, "us")
    with pytest.raises(GitProblem, match="does not exist"):
        update_branch_if_unchanged(repo, "nope", head, ours, "us")

    assert git_repo.rev("main") == str(theirs)


def test_a_branch_moved_between_read_and_write_is_not_overwritten(git_repo: GitRepo) -> None:
    location = locate_repository(git_repo.path)
    repo = open_repository(location)
    parent = repo.head.peel(pygit2.Commit)
    signature = pygit2.Signature("t", "t@example.com")
    ours = repo.create_commit(None, signature, signature, "ours", parent.tree_id, [parent.id])
    theirs = repo.create_commit(None, signature, signature, "theirs", parent.tree_id, [parent.id])

    class RacedRepository:
        """Hands out the branch as read, then lets another writer move it at once."""

        def lookup_branch(self, name: str) -> pygit2.Branch:
            branch = repo.lookup_branch(name)
            open_repository(location).lookup_branch(name).set_target(theirs)
            return branch

    with pytest.raises(GitProblem, match="changed concurrently"):
        update_branch_if_unchanged(
            RacedRepository(),  # type: ignore[arg-type]
            "main",
            parent.id,
            ours,
            "us",
        )

    assert git_repo.rev("main") == str(theirs)


async def test_concurrent_agent_cycles_leave_only_the_job_branch_behind(git_repo: GitRepo) -> None:
    before = git_repo.user_state()
    manager = GitWorktreeManager(git_repo.path)
    merger = GitMerger(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))

    async def cycle(n: int) -> None:
        agent = ok(await manager.create_agent_worktree(f"agent-{n:02d}", job.branch))
        ok(await manager.write_file(agent, f"out/{n:02d}.txt", f"{n}\n".encode(), create_dirs=True))
        assert ok(await manager.commit_changes(agent, f"agent {n}")) is not None
        assert ok(await merger.merge(agent.branch, job.branch, f"merge {n}")).commit is not None
        ok(await manager.remove_worktree(agent))

    async with trio.open_nursery() as nursery:
        for n in range(10):
            nursery.start_soon(cycle, n)

    assert [f for f in git_repo.files_on(job.branch) if f.startswith("out/")] == [
        f"out/{n:02d}.txt" for n in range(10)
    ]
    assert git_repo.git("branch", "--list", "forkmerge-agents/*") == ""
    ok(await manager.remove_worktree(job, delete_branch=False))
    assert git_repo.worktree_paths() == [git_repo.path]
    assert os.listdir(manager.state_dir) == []
    assert git_repo.user_state() == before

"""locate_agent_worktree and is_merged: finding what an interrupted agent left, real and mock."""

from __future__ import annotations

import os

from returns.result import Failure, Success

from envs.git_merger import GitMerger
from envs.git_worktrees import GitWorktreeManager
from envs.mock import mock_kit, mock_map_env
from envs.worktree_layout import MARKER_FILE
from tests.envs.conftest import GitRepo, ok, write


async def test_locate_finds_the_worktree_create_makes(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    created = ok(await manager.create_agent_worktree("agent-0001-x", job.branch))
    located = ok(manager.locate_agent_worktree("agent-0001-x", job.branch))
    assert (located.name, located.path, located.branch) == (
        created.name,
        created.path,
        created.branch,
    )
    assert manager.locate_agent_worktree("../x", job.branch).failure().operation == (
        "locate_agent_worktree"
    )
    assert ok(await manager.remove_worktree(located)) is None
    assert not os.path.exists(created.path) and not git_repo.has_branch(created.branch)


async def test_is_merged_tells_merged_unmerged_and_missing(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    merger = GitMerger(git_repo.path)
    job = ok(await manager.create_job_worktree("job2"))
    agent = ok(await manager.create_agent_worktree("agent-0001-y", job.branch))
    write(os.path.join(agent.path, "y.txt"), "y\n")
    ok(await manager.commit_changes(agent, "y"))
    assert await merger.is_merged(agent.branch, job.branch) == Success(False)
    ok(await merger.merge(agent.branch, job.branch, "merge y"))
    assert await merger.is_merged(agent.branch, job.branch) == Success(True)
    assert await merger.is_merged("forkmerge-agents/job2/none", job.branch) == Success(None)


async def test_mock_locate_and_is_merged_mirror_the_real_ones() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    job_branch = env.job.job_branch
    agent = ok(await kit.worktrees.create_agent_worktree("agent-0001-z", job_branch))
    located = ok(kit.worktrees.locate_agent_worktree("agent-0001-z", job_branch))
    assert (located.path, located.branch) == (agent.path, agent.branch)
    kit.worktrees.set_file(agent, "z.txt", b"z")
    ok(await kit.worktrees.commit_changes(agent, "z"))
    assert await kit.merger.is_merged(agent.branch, job_branch) == Success(False)
    ok(await kit.merger.merge(agent.branch, job_branch, "merge z"))
    assert await kit.merger.is_merged(agent.branch, job_branch) == Success(True)
    assert await kit.merger.is_merged("forkmerge-agents/x/none", job_branch) == Success(None)


async def test_a_worktree_killed_before_its_marker_landed_is_still_recognised(
    git_repo: GitRepo,
) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job3"))
    agent = ok(await manager.create_agent_worktree("agent-0001-k", job.branch))
    admin = os.path.join(git_repo.path, ".git", "worktrees", agent.name)
    # The state a kill during the checkout leaves: the marker still pending beside it.
    pending = os.path.join(manager.state_dir, ".pending", agent.name)
    os.makedirs(pending)
    os.replace(os.path.join(admin, MARKER_FILE), os.path.join(pending, MARKER_FILE))
    leftovers = ok(await manager.agent_leftovers("job3"))
    assert [leftover.branch for leftover in leftovers] == [agent.branch]
    assert ok(await manager.remove_worktree(leftovers[0])) is None
    assert not os.path.exists(agent.path) and not git_repo.has_branch(agent.branch)
    assert not os.path.exists(os.path.join(manager.state_dir, ".pending"))


async def test_an_agent_branch_without_commits_of_its_own_is_not_merged(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    merger = GitMerger(git_repo.path)
    job = ok(await manager.create_job_worktree("job4"))
    idle = ok(await manager.create_agent_worktree("agent-0001-idle", job.branch))
    busy = ok(await manager.create_agent_worktree("agent-0002-busy", job.branch))
    write(os.path.join(busy.path, "b.txt"), "b\n")
    ok(await manager.commit_changes(busy, "b"))
    ok(await merger.merge(busy.branch, job.branch, "merge b"))
    # idle's head is the job branch's old head: an ancestor, yet never merged
    assert await merger.is_merged(idle.branch, job.branch) == Success(False)
    assert await merger.is_merged(busy.branch, job.branch) == Success(True)


async def test_mock_agent_branch_without_commits_is_not_merged() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    job_branch = env.job.job_branch
    idle = ok(await kit.worktrees.create_agent_worktree("agent-0001-idle", job_branch))
    busy = ok(await kit.worktrees.create_agent_worktree("agent-0002-busy", job_branch))
    kit.worktrees.set_file(busy, "b.txt", b"b")
    ok(await kit.worktrees.commit_changes(busy, "b"))
    ok(await kit.merger.merge(busy.branch, job_branch, "merge b"))
    assert await kit.merger.is_merged(idle.branch, job_branch) == Success(False)
    assert await kit.merger.is_merged(busy.branch, job_branch) == Success(True)


async def test_a_resumed_job_clears_the_lock_files_a_killed_run_left(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    merger = GitMerger(git_repo.path)
    job = ok(await manager.create_job_worktree("job5"))
    agent = ok(await manager.create_agent_worktree("agent-0001-l", job.branch))
    write(os.path.join(agent.path, "l.txt"), "l\n")
    refs = os.path.join(git_repo.path, ".git", "refs", "heads")
    stale = [
        os.path.join(refs, "forkmerge", "job5.lock"),
        os.path.join(refs, "forkmerge-agents", "job5", "agent-0001-l.lock"),
        os.path.join(git_repo.path, ".git", "worktrees", agent.name, "index.lock"),
    ]
    for path in stale:
        write(path, "")
    # killed in the middle: libgit2 refuses to go on while the locks exist
    assert isinstance(await manager.commit_changes(agent, "l"), Failure)
    ok(await manager.create_job_worktree("job5"))  # what a resume does first
    assert not any(os.path.exists(path) for path in stale)
    ok(await manager.commit_changes(agent, "l"))
    assert ok(await merger.merge(agent.branch, job.branch, "merge l")).commit is not None

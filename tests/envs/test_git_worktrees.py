"""GitWorktreeManager against real temporary repositories, inspected with the git CLI."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from envs.git_merger import GitMerger
from envs.git_repository import NotARepositoryError, locate_repository
from envs.git_worktrees import GitWorktreeManager
from envs.protocols import Worktree
from envs.worktree_layout import MARKER_FILE, worktree_id
from tests.envs.conftest import GitRepo, admin_dir, error_of, marker_of, ok, read, write

# -- construction ---------------------------------------------------------------------------


def test_a_directory_outside_any_repository_is_refused(tmp_path: Path) -> None:
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    with pytest.raises(NotARepositoryError) as raised:
        GitWorktreeManager(str(lonely))
    assert raised.value.path == str(lonely)
    assert "not a git repository" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotARepositoryError, match="no such directory"):
        GitWorktreeManager(str(tmp_path / "missing"))


def test_a_malformed_git_link_is_reported(tmp_path: Path) -> None:
    (tmp_path / ".git").write_text("garbage\n")
    with pytest.raises(NotARepositoryError, match="malformed"):
        GitWorktreeManager(str(tmp_path))


def test_the_repository_is_found_from_a_subdirectory(git_repo: GitRepo) -> None:
    subdirectory = os.path.join(git_repo.path, "src", "deep")
    os.makedirs(subdirectory)
    manager = GitWorktreeManager(subdirectory)
    git_dir = os.path.join(os.path.realpath(git_repo.path), ".git")
    assert os.path.realpath(manager.location.common_dir) == git_dir
    assert manager.state_dir == os.path.join(manager.location.common_dir, "forkmerge", "worktrees")


async def test_from_a_linked_worktree_the_job_starts_at_its_head(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    linked = str(tmp_path / "linked")
    git_repo.git("worktree", "add", "--quiet", "-b", "feature", linked)
    write(os.path.join(linked, "feature.txt"), "feature\n")
    git_repo.git("add", "feature.txt", cwd=linked)
    git_repo.git("commit", "--quiet", "-m", "feature work", cwd=linked)

    location = locate_repository(linked)
    assert os.path.realpath(location.common_dir) == os.path.realpath(
        os.path.join(git_repo.path, ".git")
    )
    assert location.git_dir != location.common_dir
    job = ok(await GitWorktreeManager(linked).create_job_worktree("job1"))
    assert job.base_commit == git_repo.rev("feature")
    assert job.path.startswith(os.path.join(location.common_dir, "forkmerge", "worktrees"))


# -- the job worktree -----------------------------------------------------------------------


async def test_job_worktree_is_created_outside_the_working_tree(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))

    assert job.branch == "forkmerge/job1"
    assert job.name == worktree_id("job1", None)
    assert job.base_commit == git_repo.rev("main")
    assert git_repo.rev("forkmerge/job1") == git_repo.rev("main")
    assert os.path.dirname(job.path) == manager.state_dir
    assert job.path.startswith(os.path.join(git_repo.path, ".git") + os.sep)
    assert read(os.path.join(job.path, "notes.txt")) == "one\ntwo\nthree\n"
    assert os.path.realpath(job.path) in [os.path.realpath(p) for p in git_repo.worktree_paths()]
    assert git_repo.git("status", "--porcelain", cwd=job.path) == ""

    marker = marker_of(git_repo, job)
    assert marker["job_id"] == "job1"
    assert marker["name"] is None
    assert marker["branch"] == "forkmerge/job1"
    assert marker["path"] == job.path
    assert marker["pid"] == os.getpid()
    assert isinstance(marker["created"], float)


async def test_job_worktree_is_reused_when_it_exists(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    first = ok(await manager.create_job_worktree("job1"))
    write(os.path.join(first.path, "scratch.txt"), "still here\n")
    git_repo.git("commit", "--quiet", "--allow-empty", "-m", "main moves on")

    again = ok(await manager.create_job_worktree("job1"))

    assert again == first
    assert read(os.path.join(first.path, "scratch.txt")) == "still here\n"
    assert git_repo.rev("forkmerge/job1") == first.base_commit


async def test_resumed_job_keeps_its_branch_and_adds_the_worktree_again(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    write(os.path.join(job.path, "setup.txt"), "set up\n")
    setup_commit = ok(await manager.commit_changes(job, "setup"))
    ok(await manager.remove_worktree(job, delete_branch=False))
    assert not os.path.exists(job.path)

    resumed = ok(await manager.create_job_worktree("job1", base="main"))

    assert resumed.path == job.path
    assert git_repo.rev("forkmerge/job1") == setup_commit
    assert resumed.base_commit == setup_commit
    assert read(os.path.join(resumed.path, "setup.txt")) == "set up\n"


async def test_a_job_worktree_whose_directory_vanished_is_added_again(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    shutil.rmtree(job.path)

    again = ok(await manager.create_job_worktree("job1"))

    assert read(os.path.join(again.path, "README.md")) == "# test\n"
    assert git_repo.git("status", "--porcelain", cwd=again.path) == ""


async def test_a_leftover_directory_without_git_metadata_is_replaced(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    path = os.path.join(manager.state_dir, worktree_id("job1", None))
    write(os.path.join(path, "junk.txt"), "left over\n")

    job = ok(await manager.create_job_worktree("job1"))

    assert job.path == path
    assert not os.path.exists(os.path.join(path, "junk.txt"))
    assert os.path.isfile(os.path.join(path, "README.md"))


async def test_the_job_branch_can_start_at_a_given_revision(git_repo: GitRepo) -> None:
    first = git_repo.rev("HEAD")
    git_repo.git("commit", "--quiet", "--allow-empty", "-m", "second")
    manager = GitWorktreeManager(git_repo.path)

    job = ok(await manager.create_job_worktree("job1", base="HEAD~1"))

    assert job.base_commit == first
    assert git_repo.rev("forkmerge/job1") == first


async def test_a_base_that_names_no_commit_is_an_error(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    error = error_of(await manager.create_job_worktree("job1", base="no-such-branch"))
    assert error.operation == "create_job_worktree"
    assert "'no-such-branch'" in error.message
    assert not git_repo.has_branch("forkmerge/job1")


async def test_a_custom_state_directory_holds_the_worktrees(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    state = str(tmp_path / "state")
    manager = GitWorktreeManager(git_repo.path, state_dir=state)
    job = ok(await manager.create_job_worktree("job1"))
    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))
    assert os.path.dirname(job.path) == state
    assert os.path.dirname(agent.path) == state
    ok(await manager.remove_worktree(agent))
    assert not os.path.exists(agent.path)


@pytest.mark.parametrize(
    "bad",
    ["", "../x", "a/b", ".hidden", "-dash", "x..y", "a.lock", "end.", "a" * 101, "sp ce"],
)
async def test_unsafe_names_are_refused(git_repo: GitRepo, bad: str) -> None:
    manager = GitWorktreeManager(git_repo.path)
    assert error_of(await manager.create_job_worktree(bad)).operation == "create_job_worktree"
    job = ok(await manager.create_job_worktree("job1"))
    error = error_of(await manager.create_agent_worktree(bad, job.branch))
    assert error.operation == "create_agent_worktree"
    assert repr(bad) in error.message
    assert sorted(os.listdir(manager.state_dir)) == [job.name]


# -- agent worktrees ------------------------------------------------------------------------


async def test_agent_worktree_starts_at_the_job_branch_current_head(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    merger = GitMerger(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    first = ok(await manager.create_agent_worktree("agent-0001", job.branch))
    assert first.branch == "forkmerge-agents/job1/agent-0001"
    assert first.base_commit == job.base_commit
    write(os.path.join(first.path, "first.txt"), "first\n")
    ok(await manager.commit_changes(first, "first agent"))
    merged = ok(await merger.merge(first.branch, job.branch, "merge first"))

    second = ok(await manager.create_agent_worktree("agent-0002", job.branch))

    assert second.base_commit == merged.commit == git_repo.rev("forkmerge/job1")
    assert read(os.path.join(second.path, "first.txt")) == "first\n"
    assert git_repo.rev(second.branch) == merged.commit
    assert marker_of(git_repo, second)["name"] == "agent-0002"


async def test_agent_needs_a_job_branch_as_parent(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    error = error_of(await manager.create_agent_worktree("agent-1", "main"))
    assert "'main' is not a forkmerge job branch" in error.message
    missing = error_of(await manager.create_agent_worktree("agent-1", "forkmerge/nojob"))
    assert "forkmerge/nojob" in missing.message


async def test_an_agent_worktree_in_use_is_not_replaced(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))
    write(os.path.join(agent.path, "work.txt"), "in progress\n")

    error = error_of(await manager.create_agent_worktree("agent-1", job.branch))

    assert "already in use" in error.message
    assert read(os.path.join(agent.path, "work.txt")) == "in progress\n"


async def test_an_agent_worktree_left_by_an_earlier_process_is_replaced(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    stale = ok(await manager.create_agent_worktree("agent-1", job.branch))
    write(os.path.join(stale.path, "stale.txt"), "stale\n")
    ok(await manager.commit_changes(stale, "stale work"))
    admin = os.path.join(git_repo.path, ".git", "worktrees", stale.name)
    marker = marker_of(git_repo, stale)
    marker["created"] = 0.0  # written long before this process started
    with open(os.path.join(admin, MARKER_FILE), "w", encoding="utf-8") as file:
        json.dump(marker, file)

    fresh = ok(await manager.create_agent_worktree("agent-1", job.branch))

    assert fresh.path == stale.path
    assert not os.path.exists(os.path.join(fresh.path, "stale.txt"))
    assert git_repo.rev(fresh.branch) == git_repo.rev(job.branch)


# -- removal --------------------------------------------------------------------------------


async def test_remove_leaves_no_directory_worktree_entry_or_branch(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))
    write(os.path.join(agent.path, "uncommitted.txt"), "dropped\n")

    ok(await manager.remove_worktree(agent))

    assert not os.path.exists(agent.path)
    assert not os.path.exists(os.path.join(git_repo.path, ".git", "worktrees", agent.name))
    listed = [os.path.realpath(p) for p in git_repo.worktree_paths()]
    assert os.path.realpath(agent.path) not in listed
    assert os.path.realpath(job.path) in listed
    assert not git_repo.has_branch(agent.branch)
    assert git_repo.has_branch(job.branch)


async def test_removal_is_idempotent(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))
    ok(await manager.remove_worktree(agent))
    assert ok(await manager.remove_worktree(agent)) is None
    assert ok(await manager.remove_worktree(job, delete_branch=False)) is None
    assert ok(await manager.remove_worktree(job, delete_branch=False)) is None
    assert git_repo.has_branch("forkmerge/job1")
    assert git_repo.worktree_paths() == [git_repo.path]
    assert ok(await manager.remove_worktree(job)) is None
    assert not git_repo.has_branch("forkmerge/job1")


async def test_remove_finishes_what_an_interrupted_removal_left(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))
    git_repo.git("worktree", "remove", "--force", agent.path)  # directory and metadata gone

    ok(await manager.remove_worktree(agent))

    assert not git_repo.has_branch(agent.branch)


async def test_remove_handles_read_only_files_and_directories(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))
    locked = os.path.join(agent.path, "locked", "inner")
    write(os.path.join(locked, "file.txt"), "read only\n")
    os.chmod(os.path.join(locked, "file.txt"), stat.S_IRUSR)
    os.chmod(locked, stat.S_IRUSR | stat.S_IXUSR)
    os.chmod(os.path.dirname(locked), stat.S_IRUSR | stat.S_IXUSR)

    ok(await manager.remove_worktree(agent))

    assert not os.path.exists(agent.path)


async def test_a_worktree_forkmerge_did_not_create_is_left_alone(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    path = os.path.join(manager.state_dir, "fm-foreign")
    os.makedirs(manager.state_dir)
    git_repo.git("worktree", "add", "--quiet", "-b", "forkmerge/foreign", path)
    foreign = Worktree("fm-foreign", path, "forkmerge/foreign", git_repo.rev("main"))

    error = error_of(await manager.remove_worktree(foreign))

    assert error.operation == "remove_worktree"
    assert MARKER_FILE in error.message
    assert os.path.isfile(os.path.join(path, "README.md"))
    assert git_repo.has_branch("forkmerge/foreign")


async def test_paths_outside_the_state_directory_are_left_alone(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    outside = Worktree("fm-elsewhere", git_repo.path, job.branch, job.base_commit)
    assert "left alone" in error_of(await manager.remove_worktree(outside)).message
    assert os.path.isfile(os.path.join(git_repo.path, "README.md"))

    bad_name = Worktree("../../..", job.path, job.branch, job.base_commit)
    assert "not the name" in error_of(await manager.remove_worktree(bad_name)).message

    users_branch = Worktree(job.name, job.path, "main", job.base_commit)
    assert "not forkmerge's" in error_of(await manager.remove_worktree(users_branch)).message
    assert git_repo.has_branch("main")
    assert os.path.isdir(job.path)


# -- damaged and foreign states -------------------------------------------------------------


async def test_a_job_worktree_without_its_marker_is_adopted(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    os.remove(os.path.join(admin_dir(git_repo, job), MARKER_FILE))  # as if interrupted

    again = ok(await manager.create_job_worktree("job1"))

    assert again == job
    assert marker_of(git_repo, job)["branch"] == job.branch


async def test_a_job_worktree_marked_for_another_branch_is_refused(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    marker = marker_of(git_repo, job)
    marker["branch"] = "forkmerge/other"
    with open(os.path.join(admin_dir(git_repo, job), MARKER_FILE), "w", encoding="utf-8") as file:
        json.dump(marker, file)

    error = error_of(await manager.create_job_worktree("job1"))

    assert "belongs to branch forkmerge/other" in error.message
    assert os.path.isdir(job.path)


async def test_a_job_worktree_that_lost_its_git_link_is_added_again(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    os.remove(os.path.join(job.path, ".git"))
    write(os.path.join(job.path, "notes.txt"), "changed\n")

    broken = error_of(await manager.commit_changes(job, "must not reach the main repository"))
    assert "is not a git worktree" in broken.message
    again = ok(await manager.create_job_worktree("job1"))

    assert read(os.path.join(again.path, "notes.txt")) == "one\ntwo\nthree\n"
    assert git_repo.git("status", "--porcelain", cwd=again.path) == ""
    assert git_repo.rev("main") == job.base_commit


async def test_a_git_worktree_of_the_same_name_elsewhere_is_not_touched(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    manager = GitWorktreeManager(git_repo.path)
    elsewhere = str(tmp_path / "elsewhere" / worktree_id("job1", None))
    git_repo.git("worktree", "add", "--quiet", "-b", "someone", elsewhere)

    error = error_of(await manager.create_job_worktree("job1"))

    assert f"is at {elsewhere}" in error.message
    assert os.path.isfile(os.path.join(elsewhere, "README.md"))


async def test_an_unmarked_agent_worktree_is_not_replaced(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))
    os.remove(os.path.join(admin_dir(git_repo, agent), MARKER_FILE))

    error = error_of(await manager.create_agent_worktree("agent-1", job.branch))

    assert "is not forkmerge's" in error.message
    assert os.path.isdir(agent.path)


async def test_a_leftover_agent_directory_is_replaced(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    path = os.path.join(manager.state_dir, worktree_id("job1", "agent-1"))
    write(os.path.join(path, "junk.txt"), "junk\n")

    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))

    assert agent.path == path
    assert sorted(os.listdir(path)) == [".git", "README.md", "notes.txt"]


async def test_a_failed_checkout_leaves_nothing_behind(git_repo: GitRepo, tmp_path: Path) -> None:
    manager = GitWorktreeManager(git_repo.path)
    git_repo.git("branch", "forkmerge/job1")
    git_repo.git("worktree", "add", "--quiet", str(tmp_path / "users"), "forkmerge/job1")

    error = error_of(await manager.create_job_worktree("job1"))

    assert "checked out" in error.message
    assert os.listdir(manager.state_dir) == []
    assert not os.path.exists(
        os.path.join(git_repo.path, ".git", "worktrees", worktree_id("job1", None))
    )


@pytest.mark.parametrize(
    "content",
    ["not json", "[1, 2]", '{"version": 2}', '{"version": 1, "job_id": "job1"}', "PID"],
)
async def test_a_worktree_with_a_damaged_marker_is_not_removed(
    git_repo: GitRepo, content: str
) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))
    marker_path = os.path.join(admin_dir(git_repo, agent), MARKER_FILE)
    if content == "PID":
        marker = marker_of(git_repo, agent)
        marker["pid"] = "1234"
        content = json.dumps(marker)
    with open(marker_path, "w", encoding="utf-8") as file:
        file.write(content)

    error = error_of(await manager.remove_worktree(agent))

    assert "left alone" in error.message
    assert os.path.isdir(agent.path)
    assert git_repo.has_branch(agent.branch)


async def test_remove_copes_with_metadata_libgit2_cannot_read(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))
    os.remove(os.path.join(admin_dir(git_repo, agent), "gitdir"))

    ok(await manager.remove_worktree(agent))

    assert not os.path.exists(admin_dir(git_repo, agent))
    assert not os.path.exists(agent.path)
    assert not git_repo.has_branch(agent.branch)


async def test_a_detached_job_worktree_is_checked_out_again(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    git_repo.git("checkout", "--quiet", "--detach", cwd=job.path)

    again = ok(await manager.create_job_worktree("job1"))

    assert git_repo.git("symbolic-ref", "--short", "HEAD", cwd=again.path) == "forkmerge/job1"


async def test_a_checkout_that_fails_after_the_worktree_was_added_is_undone(
    git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))

    def full_disk(path: str, commit: object, filters: object) -> None:
        raise OSError(28, "No space left on device", path)

    monkeypatch.setattr("envs.git_worktrees.fill_worktree", full_disk)
    error = error_of(await manager.create_agent_worktree("agent-1", job.branch))

    assert error.operation == "create_agent_worktree"
    assert "No space left on device" in error.message
    assert not git_repo.has_branch("forkmerge-agents/job1/agent-1")
    assert sorted(os.listdir(manager.state_dir)) == [job.name]
    assert git_repo.worktree_paths() == [git_repo.path, job.path]


async def test_the_agent_branch_reaches_its_base_only_once_the_files_are_there(
    git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    seen: list[tuple[list[str], str]] = []
    real_fill = GitWorktreeManager._fill

    def observing(self: GitWorktreeManager, path: str, commit: object) -> None:
        seen.append((sorted(os.listdir(path)), git_repo.rev("forkmerge-agents/job1/agent-1")))
        real_fill(self, path, commit)  # type: ignore[arg-type]

    monkeypatch.setattr(GitWorktreeManager, "_fill", observing)
    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))

    # While the files are checked out the branch is at the empty placeholder commit, which
    # no merge ever took: a process killed then leaves an agent that resume runs again.
    [(files_before, branch_before)] = seen
    assert files_before == [".git"]
    assert git_repo.git("ls-tree", branch_before) == ""
    assert git_repo.rev(agent.branch) == git_repo.rev(job.branch)

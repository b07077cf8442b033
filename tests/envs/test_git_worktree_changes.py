"""GitWorktreeManager inside a worktree: commits, sync, file access, and the user's tree."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest
from pygit2.enums import ConfigLevel
from returns.result import Failure

from envs.git_merger import GitMerger
from envs.git_worktrees import GitWorktreeManager
from envs.protocols import Worktree
from tests.envs.conftest import GitRepo, error_of, ok, read, write

# -- commits --------------------------------------------------------------------------------


async def test_commit_stages_new_modified_and_deleted_files(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))
    write(os.path.join(agent.path, "src", "new.py"), "print('new')\n")
    write(os.path.join(agent.path, "notes.txt"), "one\nTWO\nthree\n")
    os.remove(os.path.join(agent.path, "README.md"))

    commit = ok(await manager.commit_changes(agent, "agent work"))

    assert commit is not None
    assert git_repo.rev(agent.branch) == commit
    assert git_repo.git("log", "-1", "--format=%P", commit) == agent.base_commit
    changes = git_repo.git("diff", "--name-status", agent.base_commit, commit).splitlines()
    assert sorted(changes) == ["A\tsrc/new.py", "D\tREADME.md", "M\tnotes.txt"]
    assert git_repo.git("log", "-1", "--format=%an <%ae>|%s", commit) == (
        "Test User <test@example.com>|agent work"
    )
    assert git_repo.git("status", "--porcelain", cwd=agent.path) == ""


async def test_nothing_to_commit_gives_none(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))
    assert ok(await manager.commit_changes(agent, "nothing")) is None
    assert git_repo.rev(agent.branch) == agent.base_commit


async def test_commit_honours_gitignore(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))
    write(os.path.join(agent.path, ".gitignore"), "*.log\nbuild/\n")
    write(os.path.join(agent.path, "debug.log"), "noise\n")
    write(os.path.join(agent.path, "build", "out.bin"), "binary\n")
    write(os.path.join(agent.path, "kept.txt"), "kept\n")

    commit = ok(await manager.commit_changes(agent, "with ignores"))

    assert commit is not None
    assert sorted(git_repo.files_on(commit)) == [".gitignore", "README.md", "kept.txt", "notes.txt"]
    write(os.path.join(agent.path, "more.log"), "more noise\n")
    assert ok(await manager.commit_changes(agent, "only ignored files")) is None


@pytest.fixture
def no_user_config(tmp_path: Path) -> Iterator[None]:
    """libgit2 reads no global, XDG or system configuration while the test runs."""
    empty = str(tmp_path / "no-config")
    os.makedirs(empty)
    levels = (ConfigLevel.GLOBAL, ConfigLevel.XDG, ConfigLevel.SYSTEM)
    saved = {level: pygit2.settings.search_path[level] for level in levels}
    for level in levels:
        pygit2.settings.search_path[level] = empty
    try:
        yield
    finally:
        for level, value in saved.items():
            pygit2.settings.search_path[level] = value


@pytest.mark.usefixtures("no_user_config")
async def test_commit_without_configured_identity_uses_forkmerge(git_repo: GitRepo) -> None:
    git_repo.git("config", "--unset", "user.name")
    git_repo.git("config", "--unset", "user.email")
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    write(os.path.join(job.path, "x.txt"), "x\n")
    commit = ok(await manager.commit_changes(job, "anonymous"))
    assert commit is not None
    author = git_repo.git("log", "-1", "--format=%an <%ae>|%cn <%ce>", commit)
    assert author == "forkmerge <forkmerge@localhost>|forkmerge <forkmerge@localhost>"


async def test_commit_identity_from_the_environment_wins(
    git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Env Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "env@example.com")
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    write(os.path.join(job.path, "x.txt"), "x\n")
    commit = ok(await manager.commit_changes(job, "from env"))
    assert commit is not None
    assert git_repo.git("log", "-1", "--format=%an <%ae>|%cn", commit) == (
        "Env Author <env@example.com>|Test User"
    )


async def test_commit_refuses_a_worktree_on_another_branch(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))
    write(os.path.join(agent.path, "x.txt"), "x\n")
    wrong = Worktree(agent.name, agent.path, "forkmerge-agents/job1/other", agent.base_commit)

    error = error_of(await manager.commit_changes(wrong, "misdirected"))

    assert error.operation == "commit_changes"
    assert "expected branch forkmerge-agents/job1/other" in error.message
    assert git_repo.rev(agent.branch) == agent.base_commit


async def test_commit_in_a_missing_worktree_is_an_error(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    ghost = Worktree("fm-ghost", os.path.join(git_repo.path, "ghost"), "forkmerge/ghost", "0" * 40)
    assert "does not exist" in error_of(await manager.commit_changes(ghost, "x")).message
    assert "does not exist" in error_of(await manager.sync_worktree(ghost)).message
    assert "forkmerge/ghost" in error_of(await manager.head_commit(ghost)).message
    unwritten = error_of(await manager.write_file(ghost, "x", b"x", create_dirs=True))
    assert "does not exist" in unwritten.message


# -- head and sync --------------------------------------------------------------------------


async def test_sync_brings_a_stale_job_worktree_to_its_branch_head(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    merger = GitMerger(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))
    write(os.path.join(agent.path, "added.txt"), "added\n")
    os.remove(os.path.join(agent.path, "notes.txt"))
    ok(await manager.commit_changes(agent, "add and delete"))
    merged = ok(await merger.merge(agent.branch, job.branch, "merge agent"))
    assert os.path.exists(os.path.join(job.path, "notes.txt"))  # stale until synced

    ok(await manager.sync_worktree(job))

    assert ok(await manager.head_commit(job)) == merged.commit
    assert read(os.path.join(job.path, "added.txt")) == "added\n"
    assert not os.path.exists(os.path.join(job.path, "notes.txt"))
    assert git_repo.git("status", "--porcelain", cwd=job.path) == ""


# -- files ----------------------------------------------------------------------------------


async def test_write_and_read_files_inside_the_worktree(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))

    ok(await manager.write_file(job, "out/result.json", b'{"ok": true}', create_dirs=True))
    assert ok(await manager.read_file(job, "out/result.json")) == b'{"ok": true}'
    ok(await manager.write_file(job, "notes.txt", b"replaced", create_dirs=False))
    assert ok(await manager.read_file(job, "./out/../notes.txt")) == b"replaced"

    missing_dir = error_of(await manager.write_file(job, "no/dir.txt", b"x", create_dirs=False))
    assert missing_dir.operation == "write_file"
    assert "does not exist" in missing_dir.message
    missing_file = error_of(await manager.read_file(job, "absent.txt"))
    assert "'absent.txt'" in missing_file.message


@pytest.mark.parametrize("escape", ["../x", "/etc/passwd", "out/../../x", ".git/config", "link/x"])
async def test_paths_leaving_the_worktree_are_refused(
    git_repo: GitRepo, tmp_path: Path, escape: str
) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), os.path.join(job.path, "link"))

    written = error_of(await manager.write_file(job, escape, b"evil", create_dirs=True))
    read_back = error_of(await manager.read_file(job, escape))

    assert written.operation == "write_file"
    assert read_back.operation == "read_file"
    assert repr(escape) in written.message
    assert os.listdir(outside) == []
    assert not os.path.exists(os.path.join(os.path.dirname(git_repo.path), "x"))


async def test_a_symlinked_file_pointing_outside_is_refused(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    secret = tmp_path / "secret.txt"
    secret.write_text("secret\n")
    os.symlink(str(secret), os.path.join(job.path, "innocent.txt"))

    written = await manager.write_file(job, "innocent.txt", b"x", create_dirs=False)
    assert isinstance(written, Failure)
    assert isinstance(await manager.read_file(job, "innocent.txt"), Failure)
    assert secret.read_text() == "secret\n"


# -- the user's repository ------------------------------------------------------------------


async def test_no_operation_touches_the_users_branch_or_working_tree(git_repo: GitRepo) -> None:
    write(os.path.join(git_repo.path, "notes.txt"), "the user's uncommitted edit\n")
    write(os.path.join(git_repo.path, "untracked.txt"), "the user's new file\n")
    before = git_repo.user_state()
    manager = GitWorktreeManager(git_repo.path)
    merger = GitMerger(git_repo.path)

    job = ok(await manager.create_job_worktree("job1"))
    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))
    write(os.path.join(agent.path, "agent.txt"), "agent\n")
    os.remove(os.path.join(agent.path, "README.md"))
    ok(await manager.commit_changes(agent, "agent"))
    ok(await merger.merge(agent.branch, job.branch, "merge"))
    ok(await manager.sync_worktree(job))
    ok(await manager.write_file(job, "setup.txt", b"setup", create_dirs=False))
    ok(await manager.commit_changes(job, "setup"))
    ok(await manager.remove_worktree(agent))
    ok(await manager.remove_worktree(job, delete_branch=False))

    assert git_repo.user_state() == before
    assert read(os.path.join(git_repo.path, "notes.txt")) == "the user's uncommitted edit\n"
    assert git_repo.files_on("forkmerge/job1") == ["agent.txt", "notes.txt", "setup.txt"]


async def test_commit_concludes_a_merge_left_uncommitted(git_repo: GitRepo) -> None:
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))
    other = ok(await manager.create_agent_worktree("other", job.branch))
    write(os.path.join(other.path, "other.txt"), "other\n")
    other_commit = ok(await manager.commit_changes(other, "other"))
    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))
    git_repo.git("merge", "--quiet", "--no-ff", "--no-commit", other.branch, cwd=agent.path)

    commit = ok(await manager.commit_changes(agent, "resolve"))

    assert commit is not None
    parents = git_repo.git("log", "-1", "--format=%P", commit).split()
    assert parents == [agent.base_commit, other_commit]
    assert "other.txt" in git_repo.files_on(commit)
    assert git_repo.git("status", "--porcelain", cwd=agent.path) == ""
    git_dir = git_repo.git("rev-parse", "--git-dir", cwd=agent.path)
    assert not os.path.exists(os.path.join(agent.path, git_dir, "MERGE_HEAD"))

"""A temporary git repository to run the real git services against."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import attrs
import pytest
from returns.result import Failure, Result, Success

from envs.protocols import Worktree, WorktreeError
from envs.worktree_layout import MARKER_FILE

T = TypeVar("T")


@attrs.frozen
class GitRepo:
    """A throwaway repository with one commit on ``main``; inspected with the git CLI."""

    path: str

    def git(self, *args: str, cwd: str | None = None) -> str:
        """Run git in the repository (or in ``cwd``) and return its stripped stdout."""
        completed = subprocess.run(
            ["git", "-C", cwd or self.path, *args],
            check=True,
            capture_output=True,
            text=True,
        )
        return completed.stdout.strip()

    def rev(self, revision: str) -> str:
        return self.git("rev-parse", "--verify", "--quiet", revision)

    def has_branch(self, branch: str) -> bool:
        listed = self.git("branch", "--list", "--format=%(refname:short)", branch)
        return listed == branch

    def worktree_paths(self) -> list[str]:
        lines = self.git("worktree", "list", "--porcelain").splitlines()
        return [line.removeprefix("worktree ") for line in lines if line.startswith("worktree ")]

    def files_on(self, revision: str) -> list[str]:
        return self.git("ls-tree", "-r", "--name-only", revision).splitlines()

    def show(self, revision: str, path: str) -> str:
        return self.git("show", f"{revision}:{path}")

    def user_state(self) -> tuple[str, str, str]:
        """What no forkmerge operation may change: HEAD's branch and commit, and the status."""
        return (
            self.git("symbolic-ref", "HEAD"),
            self.rev("HEAD"),
            self.git("status", "--porcelain", "--untracked-files=all"),
        )


def ok(result: Result[T, object]) -> T:
    """The value of a result that must be a success."""
    assert isinstance(result, Success), result
    value: T = result.unwrap()
    return value


def error_of(result: Result[object, WorktreeError]) -> WorktreeError:
    """The error of a result that must be a failure."""
    assert isinstance(result, Failure), result
    error: WorktreeError = result.failure()
    return error


def read(path: str) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()


def admin_dir(repo: GitRepo, worktree: Worktree) -> str:
    """The git metadata directory of a linked worktree of ``repo``."""
    return os.path.join(repo.path, ".git", "worktrees", worktree.name)


def marker_of(repo: GitRepo, worktree: Worktree) -> dict[str, object]:
    """The forkmerge marker of ``worktree``, as JSON."""
    with open(os.path.join(admin_dir(repo, worktree), MARKER_FILE), encoding="utf-8") as file:
        data: dict[str, object] = json.load(file)
    return data


def write(path: str, content: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        file.write(content)


@pytest.fixture
def git_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GitRepo]:
    """A repository at ``tmp_path/repo``: README.md and notes.txt committed on ``main``.

    The identity is configured in the repository itself; git's identity
    variables and the user's global configuration are kept out of the way.
    """
    for variable in (
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_DIR",
        "GIT_WORK_TREE",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    path = str(tmp_path / "repo")
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main", path], check=True)
    repo = GitRepo(path)
    repo.git("config", "user.name", "Test User")
    repo.git("config", "user.email", "test@example.com")
    write(os.path.join(path, "README.md"), "# test\n")
    write(os.path.join(path, "notes.txt"), "one\ntwo\nthree\n")
    repo.git("add", "README.md", "notes.txt")
    repo.git("commit", "--quiet", "-m", "initial commit")
    yield repo

"""fill_worktree: the files git would check out, without filters only when none can apply."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

import pygit2
import pytest
from pygit2.enums import ConfigLevel

from envs import git_checkout
from envs.git_checkout import (
    CheckoutFilters,
    fast_checkout_available,
    fill_worktree,
    placeholder_commit,
)
from envs.git_worktrees import GitWorktreeManager
from tests.envs.conftest import GitRepo, ok, write


@pytest.fixture
def unfiltered_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records each checkout that ran with libgit2's filters off (by worktree)."""
    calls: list[str] = []
    real = git_checkout._checkout_unfiltered

    def recording(repo: pygit2.Repository, tree: pygit2.Tree, binding: object) -> None:
        calls.append(str(repo.workdir))
        real(repo, tree, binding)  # type: ignore[arg-type]

    monkeypatch.setattr(git_checkout, "_checkout_unfiltered", recording)
    yield calls


def _commit_files(repo: GitRepo, files: dict[str, str]) -> None:
    for relative, text in files.items():
        write(os.path.join(repo.path, relative), text)
    repo.git("add", "--all")
    repo.git("commit", "--quiet", "-m", "files")


def _raw(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def test_this_pygit2_offers_the_unfiltered_checkout() -> None:
    # Without it every checkout still works, but costs 3x: a pygit2 upgrade must not
    # take it away unnoticed.
    assert fast_checkout_available()


def test_the_placeholder_is_one_root_commit_of_the_empty_tree(git_repo: GitRepo) -> None:
    repo = pygit2.Repository(git_repo.path)
    first = placeholder_commit(repo)
    commit = repo[first].peel(pygit2.Commit)
    assert placeholder_commit(repo) == first
    assert commit.parents == []
    assert len(commit.tree) == 0


async def test_without_attributes_the_files_are_the_blobs_and_the_worktree_is_clean(
    git_repo: GitRepo, unfiltered_calls: list[str]
) -> None:
    _commit_files(git_repo, {"src/a.py": "print('a')\r\n", "src/deep/b.txt": "b\n"})
    os.chmod(os.path.join(git_repo.path, "src", "a.py"), 0o755)
    os.symlink("deep/b.txt", os.path.join(git_repo.path, "src", "link"))
    git_repo.git("add", "--all")
    git_repo.git("commit", "--quiet", "-m", "mode and link")
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))

    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))

    assert unfiltered_calls == [agent.path + "/"]
    assert _raw(os.path.join(agent.path, "src", "a.py")) == b"print('a')\r\n"
    assert os.stat(os.path.join(agent.path, "src", "a.py")).st_mode & stat.S_IXUSR
    assert os.readlink(os.path.join(agent.path, "src", "link")) == "deep/b.txt"
    assert git_repo.git("status", "--porcelain", cwd=agent.path) == ""
    assert git_repo.rev(agent.branch) == git_repo.rev("main")
    assert git_repo.git("diff", "--cached", "--stat", cwd=agent.path) == ""


async def test_a_gitattributes_file_anywhere_in_the_tree_keeps_the_filters(
    git_repo: GitRepo, unfiltered_calls: list[str]
) -> None:
    _commit_files(
        git_repo,
        {"docs/deeper/.gitattributes": "*.txt text eol=crlf\n", "docs/deeper/x.txt": "x\ny\n"},
    )
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))

    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))

    assert unfiltered_calls == []
    assert _raw(os.path.join(agent.path, "docs", "deeper", "x.txt")) == b"x\r\ny\r\n"
    assert git_repo.git("status", "--porcelain", cwd=agent.path) == ""


async def test_core_autocrlf_keeps_the_filters(
    git_repo: GitRepo, unfiltered_calls: list[str]
) -> None:
    git_repo.git("config", "core.autocrlf", "true")
    manager = GitWorktreeManager(git_repo.path)
    job = ok(await manager.create_job_worktree("job1"))

    agent = ok(await manager.create_agent_worktree("agent-1", job.branch))

    assert unfiltered_calls == []
    assert _raw(os.path.join(agent.path, "notes.txt")) == b"one\r\ntwo\r\nthree\r\n"


@pytest.mark.parametrize("autocrlf", ["false", "off", "0"])
def test_autocrlf_off_allows_the_unfiltered_checkout(git_repo: GitRepo, autocrlf: str) -> None:
    git_repo.git("config", "core.autocrlf", autocrlf)
    repo = pygit2.Repository(git_repo.path)
    assert not CheckoutFilters().may_apply(repo, repo.head.peel(pygit2.Tree))


def test_attributes_outside_the_tree_keep_the_filters(
    git_repo: GitRepo, tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = pygit2.Repository(git_repo.path)
    tree = repo.head.peel(pygit2.Tree)
    filters = CheckoutFilters()
    assert not filters.may_apply(repo, tree)

    info = os.path.join(git_repo.path, ".git", "info", "attributes")
    write(info, "* text\n")
    assert filters.may_apply(repo, tree)
    os.remove(info)

    git_repo.git("config", "core.attributesFile", "/nowhere/attributes")
    assert filters.may_apply(pygit2.Repository(git_repo.path), tree)
    git_repo.git("config", "--unset", "core.attributesFile")

    xdg = os.path.join(str(tmp_path), "xdg")
    write(os.path.join(xdg, "attributes"), "* text\n")
    saved = pygit2.settings.search_path[ConfigLevel.XDG]
    pygit2.settings.search_path[ConfigLevel.XDG] = xdg
    try:
        assert filters.may_apply(pygit2.Repository(git_repo.path), tree)
    finally:
        pygit2.settings.search_path[ConfigLevel.XDG] = saved


class _CountingRepository:
    """Stands in for a repository, recording which objects are read."""

    def __init__(self, repo: pygit2.Repository) -> None:
        self.repo = repo
        self.read: list[pygit2.Oid] = []

    def __getitem__(self, oid: pygit2.Oid) -> pygit2.Object:
        self.read.append(oid)
        return self.repo[oid]


def test_the_tree_scan_reads_only_trees_it_has_not_seen(git_repo: GitRepo) -> None:
    _commit_files(git_repo, {f"d{n}/f{n}.txt": f"{n}\n" for n in range(3)})
    filters = CheckoutFilters()
    before = _CountingRepository(pygit2.Repository(git_repo.path))
    first_root = before.repo.head.peel(pygit2.Tree)
    assert not filters.tree_has_attributes(before, first_root.id)  # type: ignore[arg-type]
    assert len(before.read) == 4  # the root and d0, d1, d2

    _commit_files(git_repo, {"d1/.gitattributes": "*.txt -text\n"})
    after = _CountingRepository(pygit2.Repository(git_repo.path))
    root = after.repo.head.peel(pygit2.Tree)
    assert filters.tree_has_attributes(after, root.id)  # type: ignore[arg-type]
    assert after.read == [root.id, root["d1"].id]  # d0 is known; d2 is never reached

    again = _CountingRepository(after.repo)
    assert filters.tree_has_attributes(again, root.id)  # type: ignore[arg-type]
    assert not filters.tree_has_attributes(again, first_root.id)  # type: ignore[arg-type]
    assert again.read == []


def test_fill_worktree_of_a_plain_repository_leaves_head_alone(git_repo: GitRepo) -> None:
    repo = pygit2.Repository(git_repo.path)
    head = repo.head.peel(pygit2.Commit).id
    fill_worktree(git_repo.path, head, CheckoutFilters())
    assert pygit2.Repository(git_repo.path).head.target == head
    assert git_repo.git("status", "--porcelain") == ""

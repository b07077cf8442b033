"""reset_slot: whatever the previous agent left, one scan makes the slot its commit again."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence

import pygit2
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.git_worktrees import GitWorktreeManager
from envs.protocols import Worktree
from envs.slot_reset import stray_paths
from tests.envs.conftest import ok, write

JOB = "forkmerge/job1"
_TRACKED = ["a.txt", "src/b.py", "src/deep/c.txt", "docs/d.md", "run.sh"]
_NEW = ["new.txt", "src/new.py", "fresh/dir/e.txt", "build/out.o", "x.log", "src/deep/y.log"]

Op = tuple[str, str]
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("modify"), st.sampled_from(_TRACKED)),
        st.tuples(st.just("delete"), st.sampled_from(_TRACKED)),
        st.tuples(st.just("add"), st.sampled_from(_NEW)),
        st.tuples(st.just("mkdir"), st.sampled_from(["empty", "src/empty/deeper", "build"])),
        st.tuples(st.just("to_dir"), st.sampled_from(_TRACKED)),
        st.tuples(st.just("chmod"), st.sampled_from(_TRACKED)),
        st.tuples(st.just("symlink"), st.sampled_from(["link", "src/link"])),
    ),
    max_size=6,
)


def _apply(root: str, ops: Sequence[Op]) -> None:
    for kind, path in ops:
        target = os.path.join(root, path)
        if kind in ("modify", "add"):
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            write(target, f"{kind} {path}\n")
        elif kind == "delete" and os.path.lexists(target):
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            else:
                os.remove(target)
        elif kind == "mkdir" and not os.path.lexists(target):
            os.makedirs(target, exist_ok=True)
        elif kind == "to_dir":
            if os.path.lexists(target) and not os.path.isdir(target):
                os.remove(target)
            write(os.path.join(target, "inside.txt"), "a directory now\n")
        elif kind == "chmod" and os.path.isfile(target):
            os.chmod(target, 0o755)
        elif kind == "symlink" and not os.path.lexists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink("a.txt", target)


def _files(root: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [each for each in subdirectories if each != ".git"]
        for name in files:
            path = os.path.join(directory, name)
            if name == ".git" and directory == root:
                continue
            with open(path, "rb") as file:
                found[os.path.relpath(path, root)] = file.read()
    return found


def _tree_files(repo: pygit2.Repository, commit: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}

    def walk(tree: pygit2.Tree, prefix: str) -> None:
        for entry in tree:
            path = prefix + str(entry.name)
            if entry.filemode == pygit2.enums.FileMode.TREE:
                walk(repo[entry.id].peel(pygit2.Tree), path + "/")
            else:
                files[path] = repo[entry.id].peel(pygit2.Blob).data

    walk(repo[pygit2.Oid(hex=commit)].peel(pygit2.Tree), "")
    return files


class _Scene:
    """One repository, its job and one pool slot, reused by every example."""

    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="forkmerge-slot-reset-")
        env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}

        def run(*args: str) -> None:
            subprocess.run(["git", *args], cwd=self.path, check=True, env=env, capture_output=True)

        run("init", "--quiet", "--initial-branch=main")
        run("config", "user.name", "T")
        run("config", "user.email", "t@example.com")
        for path in _TRACKED:
            write(os.path.join(self.path, path), f"{path}\n")
        write(os.path.join(self.path, ".gitignore"), "*.log\nbuild/\n")
        run("add", "--all")
        run("commit", "--quiet", "-m", "base")
        self.manager = GitWorktreeManager(self.path)
        self.job: Worktree = ok(trio.run(self.manager.create_job_worktree, "job1"))
        self.slot: Worktree = ok(trio.run(self.manager.create_pool_worktree, "job1", 0, JOB))
        self.round = 0


_SCENE: list[_Scene] = []


@settings(max_examples=40, deadline=None)
@given(agent=_ops, commit=st.booleans(), job_changes=_ops)
def test_after_any_agent_the_next_assignment_is_exactly_the_job_head(
    agent: list[Op], commit: bool, job_changes: list[Op]
) -> None:
    if not _SCENE:
        _SCENE.append(_Scene())
    scene = _SCENE[0]
    scene.round += 1

    async def cycle() -> Worktree:
        manager = scene.manager
        assigned = ok(await manager.assign_pool_worktree(scene.slot, f"a-{scene.round}", JOB))
        _apply(assigned.path, agent)
        if commit:
            await manager.commit_changes(assigned, "agent work")
        ok(await manager.release_pool_worktree(assigned))
        # The job moves on meanwhile (merges of other agents).
        _apply(
            scene.job.path,
            [op for op in job_changes if op[0] in ("modify", "add", "delete", "to_dir")],
        )
        ok(await manager.commit_changes(scene.job, "job moves on"))
        return ok(await manager.assign_pool_worktree(scene.slot, f"b-{scene.round}", JOB))

    again = trio.run(cycle)

    repo = pygit2.Repository(again.path)
    assert stray_paths(repo) == []
    assert _files(again.path) == _tree_files(repo, again.base_commit)
    head = ok(trio.run(scene.manager.head_commit, Worktree("", "", JOB, "")))
    assert again.base_commit == head
    trio.run(scene.manager.release_pool_worktree, again)

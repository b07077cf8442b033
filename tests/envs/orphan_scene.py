"""A repository holding every kind of leftover the orphan cleaner must tell apart.

Built with forkmerge's real :class:`GitWorktreeManager`; a crash is simulated by
not removing what a job created. The scene (``label``: what it is):

- ``live``, ``live/a``: the job worktree and an agent worktree of job ``live``,
  whose lock the test process holds (active);
- ``crashed`` (old), ``crashed/a`` (old), ``crashed/b`` (new): worktrees of job
  ``crashed`` (in the job store, status running, no lock holder: orphaned);
  ``forkmerge-agents/crashed/c`` is an agent branch whose worktree was removed;
  ``crashed/p`` a checkout killed half-way (a directory, a pending marker and
  its branch, no git metadata);
- ``vanish/x`` (old): an agent worktree of job ``vanish`` (not in the store,
  known by its marker) whose directory was deleted by hand;
- ``forkmerge-agents/stored/s``: an agent branch of job ``stored`` (in the
  store, failed), no worktree and no marker;
- the user's: a worktree on ``feature``, a worktree on ``gone`` whose directory
  was deleted by hand, branches ``topic`` and ``forkmerge-agents/stranger/z``
  (in forkmerge's namespace but of no job forkmerge knows).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import ExitStack

import attrs
import pytest
from returns.result import Success

from envs.demo_repository import create_repository
from envs.git_merger import GitMerger
from envs.git_worktrees import GitWorktreeManager
from envs.job_lock import JobLock
from envs.job_records import JobRecord, JobStatus
from envs.local import StateLayout, state_layout
from envs.protocols import Worktree
from envs.worktree_layout import (
    WorktreeMarker,
    agent_branch,
    job_branch,
    read_marker,
    worktree_id,
    write_marker,
)

DAY = 86400.0
OLD = 3 * DAY


@attrs.frozen
class Scene:
    """The repository, its state layout, and forkmerge's worktrees by label."""

    repo: str
    layout: StateLayout
    worktrees: dict[str, Worktree]
    user_worktree: str
    user_vanished: str

    def git(self, *args: str) -> str:
        completed = subprocess.run(
            ["git", "-C", self.repo, *args], check=True, capture_output=True, text=True
        )
        return completed.stdout.strip()

    def branches(self) -> set[str]:
        return set(self.git("branch", "--list", "--format=%(refname:short)").splitlines())

    def admin(self, label: str) -> str:
        return os.path.join(self.repo, ".git", "worktrees", self.worktrees[label].name)

    def exists(self, label: str) -> bool:
        """Whether anything of the worktree is left: its directory or git's metadata."""
        worktree = self.worktrees[label]
        return os.path.lexists(worktree.path) or os.path.lexists(self.admin(label))

    def snapshot(self) -> tuple[object, ...]:
        """Everything cleaning could change: worktrees, branches and files under .git."""
        files = []
        for directory, _subdirectories, names in os.walk(os.path.join(self.repo, ".git")):
            files += [os.path.join(directory, name) for name in names]
        outside = sorted(os.listdir(os.path.dirname(self.repo)))
        return (
            self.git("worktree", "list", "--porcelain"),
            self.branches(),
            sorted(files),
            outside,
        )


# What the scene holds besides forkmerge's leftovers: the user's branches (one
# in forkmerge's namespace but of no known job) and the job branches.
USERS = {"main", "feature", "gone", "topic", "forkmerge-agents/stranger/z"}
JOB_BRANCHES = {"forkmerge/live", "forkmerge/crashed", "forkmerge/vanish"}


def ok(result: object) -> Worktree:
    assert isinstance(result, Success), result
    worktree: Worktree = result.unwrap()
    return worktree


def age_marker(admin: str, age: float) -> None:
    """Make the worktree whose admin directory is ``admin`` look ``age`` seconds old."""
    marker = read_marker(admin)
    assert marker is not None
    write_marker(admin, attrs.evolve(marker, created=time.time() - age))


def record(job_id: str, status: JobStatus) -> JobRecord:
    now = time.time()
    return JobRecord(
        job_id, "flow", "flow.yml", "hash", None, "/repo", job_branch(job_id), status, now, now
    )


def isolate_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the user's git configuration and git's variables out of the tests."""
    for variable in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def init_repository(path: str) -> str:
    """A repository at ``path`` with one commit on ``main`` and a configured identity."""
    repo = create_repository(path, {"README.md": "# scene\n", "src/code.py": "print(1)\n" * 200})
    return repo.rstrip("/")


async def build_scene(repo: str, locks: ExitStack) -> Scene:
    """Build the scene in ``repo`` (see the module docstring); ``locks`` holds ``live``'s lock."""
    layout = state_layout(repo)
    manager = GitWorktreeManager(repo, state_dir=layout.worktrees)
    with layout.open_store() as store:
        await store.create_job(record("live", JobStatus.RUNNING))
        await store.create_job(record("crashed", JobStatus.RUNNING))
        await store.create_job(record("stored", JobStatus.FAILED))
    locks.enter_context(JobLock(layout.locks, "live"))
    made: dict[str, Worktree] = {}
    for job in ("live", "crashed", "vanish"):
        made[job] = ok(await manager.create_job_worktree(job))
    for label in ("live/a", "crashed/a", "crashed/b", "crashed/c", "vanish/x"):
        job, name = label.split("/")
        made[label] = ok(await manager.create_agent_worktree(name, job_branch(job)))
    # Leftovers a crash would leave: worktrees simply not removed, and then
    assert isinstance(
        await manager.remove_worktree(made.pop("crashed/c"), delete_branch=False), Success
    )
    assert isinstance(
        await manager.remove_worktree(made.pop("vanish"), delete_branch=False), Success
    )
    shutil.rmtree(made["vanish/x"].path)  # deleted by hand
    root = os.path.join(repo, ".git", "worktrees")
    for label in ("crashed", "crashed/a", "vanish/x"):
        age_marker(os.path.join(root, made[label].name), OLD)
    made["crashed/p"] = _interrupted_checkout(repo, layout, "crashed", "p")
    scene = Scene(
        repo,
        layout,
        made,
        os.path.join(os.path.dirname(repo), "user-feature"),
        os.path.join(os.path.dirname(repo), "user-gone"),
    )
    scene.git("worktree", "add", "--quiet", "-b", "feature", scene.user_worktree)
    scene.git("worktree", "add", "--quiet", "-b", "gone", scene.user_vanished)
    shutil.rmtree(scene.user_vanished)
    for branch in ("topic", agent_branch("stranger", "z"), agent_branch("stored", "s")):
        scene.git("branch", branch, "main")
    return scene


def _interrupted_checkout(repo: str, layout: StateLayout, job: str, name: str) -> Worktree:
    """What a process killed during ``add_worktree`` leaves: a pending marker, a partial
    directory and the agent branch (git's metadata not yet written)."""
    identifier = worktree_id(job, name)
    path = os.path.join(layout.worktrees, identifier)
    branch = agent_branch(job, name)
    subprocess.run(["git", "-C", repo, "branch", branch, job_branch(job)], check=True)
    pending = os.path.join(layout.worktrees, ".pending", identifier)
    os.makedirs(pending)
    write_marker(
        pending, WorktreeMarker(job, name, branch, path, "", time.time() - 60, os.getpid())
    )
    os.makedirs(os.path.join(path, "src"))
    with open(os.path.join(path, "src", "partial.py"), "w", encoding="utf-8") as file:
        file.write("x" * 10000)
    return Worktree(identifier, path, branch, "")


async def merged_agent(scene: Scene, label: str = "crashed/a") -> str:
    """Commit in the agent worktree ``label`` and merge it into the job branch, as a run
    that died right after the merge (before recording it) leaves it; the merge commit."""
    manager = GitWorktreeManager(scene.repo, state_dir=scene.layout.worktrees)
    worktree = scene.worktrees[label]
    assert isinstance(
        await manager.write_file(worktree, f"{worktree.name}.txt", b"done\n", create_dirs=False),
        Success,
    )
    assert isinstance(await manager.commit_changes(worktree, f"agent {label}"), Success)
    job = job_branch(label.split("/")[0])
    merged = await GitMerger(scene.repo).merge(worktree.branch, job, f"merge {label}")
    assert isinstance(merged, Success)
    commit = merged.unwrap().commit
    assert commit is not None
    return str(commit)

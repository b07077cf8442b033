"""A repository with jobs in every state and age, and their files, for ``jobs prune``.

Built in a real git repository with the real job store and files written
where forkmerge writes them (``label``: what it is; OLD is ten days ago):

- ``done``: completed, OLD, with a log, an archive, metrics, a lock guard and
  its job branch: pruned by ``--older-than 7d``;
- ``broke``: failed, OLD, with a log and its job branch: pruned too;
- ``fresh``: completed an hour ago, with a log: too recent for 7d;
- ``stopped``: interrupted, OLD, one of its two items merged: kept unless forced;
- ``crashed``: running, OLD, no process holds its lock: kept unless forced;
- ``live``: running, OLD, its lock held by the test process (lock files aged
  too): kept even when forced;
- ``busy``: completed, OLD, its job worktree still there: kept;
- ``gone``: no record, OLD files only (log, lock guard, half-written lock):
  stray files, removed; there is also a branch ``forkmerge/gone`` (not
  provably forkmerge's without a record: never deleted);
- ``ghost``: no record, a lock guard made a minute ago: too recent;
- files that are not forkmerge's in ``logs/`` and ``locks/``, and the user's
  branches ``main`` and ``topic``.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import time
from contextlib import ExitStack

import attrs
from returns.result import Success

from envs.git_worktrees import GitWorktreeManager
from envs.job_lock import JobLock
from envs.job_records import JobRecord, JobStatus
from envs.local import StateLayout, state_layout
from envs.store import SqliteJobStore
from envs.worktree_layout import job_branch
from pure.job_events import ItemMerged, ItemStarted, ItemSucceeded, JobPlanned, PhaseStarted

DAY = 86400.0
NOW = time.time()
OLD = NOW - 10 * DAY
HOUR_AGO = NOW - 3600.0

RECORDED = ("done", "broke", "fresh", "stopped", "crashed", "live", "busy")
STRANGERS = (
    "logs/README.txt",
    "logs/.hidden.jsonl",
    "logs/bad..id.jsonl",
    "locks/notes.lock.txt",
    "locks/x.lock.guard.bak",
)
USER_BRANCHES = {"main", "topic", "forkmerge/gone"}


@attrs.frozen
class PruneScene:
    """The repository and its state layout."""

    repo: str
    layout: StateLayout

    def git(self, *args: str) -> str:
        completed = subprocess.run(
            ["git", "-C", self.repo, *args], check=True, capture_output=True, text=True
        )
        return completed.stdout.strip()

    def branches(self) -> set[str]:
        return set(self.git("branch", "--list", "--format=%(refname:short)").splitlines())

    def path(self, relative: str) -> str:
        return os.path.join(self.layout.root, relative)

    def state_files(self) -> set[str]:
        """Every file under logs/ and locks/, relative to the state directory."""
        found = set()
        for directory in ("logs", "locks"):
            root = self.path(directory)
            if os.path.isdir(root):
                found |= {f"{directory}/{name}" for name in os.listdir(root)}
        return found

    def store(self) -> SqliteJobStore:
        return self.layout.open_store()

    def database_rows(self) -> dict[str, int]:
        """Each table's row count per job: ``{"events/done": 4, ...}``."""
        counts: dict[str, int] = {}
        with sqlite3.connect(self.path("jobs.sqlite3")) as connection:
            for table in ("jobs", "events", "items", "phases"):
                query = f"SELECT job_id, count(*) FROM {table} GROUP BY job_id"
                for job_id, count in connection.execute(query):
                    counts[f"{table}/{job_id}"] = count
        return counts


def write(path: str, text: str, modified: float) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
    os.utime(path, (modified, modified))


def job_files(job_id: str) -> dict[str, str]:
    """The files the scene writes for a job, relative to the state directory, with contents."""
    return {
        "done": {
            "logs/done.jsonl": '{"event": "x"}\n' * 40,
            "logs/done.1.jsonl.gz": "z" * 300,
            "logs/done.metrics.json": "{}",
            "locks/done.lock.guard": "",
        },
        "broke": {"logs/broke.jsonl": "{}\n" * 10},
        "fresh": {"logs/fresh.jsonl": "{}\n"},
        "stopped": {"logs/stopped.jsonl": "{}\n", "locks/stopped.lock.guard": ""},
        "crashed": {
            "logs/crashed.jsonl": "{}\n",
            # a dead process's lock: no process has that pid on this host
            "locks/crashed.lock": json.dumps(
                {"pid": 999_999_999, "host": socket.gethostname(), "since": 1.0}
            ),
        },
        "live": {"logs/live.jsonl": "{}\n"},
        "busy": {"logs/busy.jsonl": "{}\n"},
        "gone": {
            "logs/gone.jsonl": "{}\n" * 5,
            "locks/gone.lock.guard": "",
            "locks/gone.lock.4242.tmp": "{}",
        },
    }.get(job_id, {})


def _record(job_id: str, status: JobStatus, at: float) -> JobRecord:
    return JobRecord(
        job_id, "flow", "flow.yml", "hash", None, "/repo", job_branch(job_id), status, at, at
    )


async def _create(layout: StateLayout, job_id: str, status: JobStatus, at: float) -> None:
    with SqliteJobStore.for_repository(layout.root, state_dir=layout.root, now=lambda: at) as store:
        await store.create_job(_record(job_id, status, at))
        await store.append_many(
            job_id,
            [
                PhaseStarted("map"),
                JobPlanned(("a", "b")),
                ItemStarted("a", 1),
                ItemSucceeded("a"),
                ItemMerged("a", "m1"),
            ],
        )


async def build_prune_scene(repo: str, locks: ExitStack) -> PruneScene:
    """Build the scene in ``repo``; ``locks`` holds the lock of ``live``."""
    layout = state_layout(repo)
    scene = PruneScene(repo, layout)
    statuses = {
        "done": JobStatus.COMPLETED,
        "broke": JobStatus.FAILED,
        "fresh": JobStatus.COMPLETED,
        "stopped": JobStatus.INTERRUPTED,
        "crashed": JobStatus.RUNNING,
        "live": JobStatus.RUNNING,
        "busy": JobStatus.COMPLETED,
    }
    for job_id, status in statuses.items():
        await _create(layout, job_id, status, HOUR_AGO if job_id == "fresh" else OLD)
    for job_id in (*RECORDED, "gone"):
        at = HOUR_AGO if job_id == "fresh" else OLD
        for relative, text in job_files(job_id).items():
            write(scene.path(relative), text, at)
    write(scene.path("locks/ghost.lock.guard"), "", NOW - 60)
    for relative in STRANGERS:
        write(scene.path(relative), "not forkmerge's", OLD)
    for job_id in ("done", "broke", "stopped", "crashed", "live"):
        scene.git("branch", job_branch(job_id), "main")
    scene.git("branch", "topic", "main")
    scene.git("branch", "forkmerge/gone", "main")
    manager = GitWorktreeManager(repo, state_dir=layout.worktrees)
    assert isinstance(await manager.create_job_worktree("busy"), Success)
    locks.enter_context(JobLock(layout.locks, "live"))
    for name in ("live.lock", "live.lock.guard"):
        os.utime(os.path.join(layout.locks, name), (OLD, OLD))
    return scene

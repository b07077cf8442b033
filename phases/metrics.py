"""Resource metrics: forkmerge's worktrees in a repository, and what a job's last run cost.

``worktree_usage`` looks at the repository now (how many worktrees each job
holds, active or orphaned, and the disk they use); ``run_metrics`` is what a
run measured (pool hits and misses, cleanup operations, failures and their
average time), saved next to the job's event log so that ``status --json`` can
show it later; while the job runs, ``live_snapshot`` gives the same figures
from its pool (plus agents and processes running), published to the same file.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from typing import Any

from envs.local import StateLayout
from envs.orphans import KnownJob, scan_leftovers
from envs.pool import PoolMetrics
from phases.results import JobResult

__all__ = [
    "live_snapshot",
    "load_run_metrics",
    "metrics_path",
    "run_metrics",
    "save_run_metrics",
    "worktree_usage",
]


def worktree_usage(layout: StateLayout, known: dict[str, KnownJob]) -> dict[str, Any]:
    """Worktrees per job and in total, active and orphaned, and the bytes they use."""
    scan = scan_leftovers(layout.repository, layout, known)
    per_job: dict[str, dict[str, int]] = defaultdict(
        lambda: {"worktrees": 0, "active": 0, "bytes": 0, "branches": 0}
    )
    for leftover in scan.leftovers:
        entry = per_job[leftover.job_id]
        if leftover.kind == "worktree":
            entry["worktrees"] += 1
            entry["active"] += leftover.state == "active"
            entry["bytes"] += leftover.size_bytes
        else:
            entry["branches"] += 1
    return {
        "worktrees": sum(entry["worktrees"] for entry in per_job.values()),
        "active": sum(entry["active"] for entry in per_job.values()),
        "bytes": sum(entry["bytes"] for entry in per_job.values()),
        "jobs": dict(per_job),
    }


def run_metrics(result: JobResult) -> dict[str, Any]:
    """What the run measured: pool hits/misses, cleanups (count, failures, average time)."""
    resources = result.resources()
    pool = resources.get("pool", {})
    released = pool.get("released", len(result.map.results))
    release_seconds = resources["release_seconds"]
    return {
        "job_id": result.job_id,
        "status": result.status,
        "pool_hits": pool.get("hits", 0),
        "pool_misses": pool.get("misses", 0),
        "peak_worktrees": pool.get("peak_slots", 0),
        "cleanups": released,
        "cleanup_failures": pool.get("discarded", 0),
        "average_cleanup_seconds": round(release_seconds / released, 4) if released else 0.0,
        "acquire_seconds": resources["acquire_seconds"],
        "release_seconds": release_seconds,
        "agents": len(result.map.results),
        "agents_running": 0,
        "processes_running": 0,
        "live": False,
    }


def live_snapshot(job_id: str, pool: PoolMetrics, *, processes_running: int) -> dict[str, Any]:
    """A running job's figures, with the keys of :func:`run_metrics` (from its pool), plus
    ``live`` (true) and ``updated_at`` (seconds since the epoch)."""
    return {
        "job_id": job_id,
        "status": "running",
        "live": True,
        "updated_at": round(time.time(), 3),
        "pool_hits": pool.hits,
        "pool_misses": pool.misses,
        "pool_slots": pool.slots,
        "peak_worktrees": pool.peak_slots,
        "cleanups": pool.released,
        "cleanup_failures": pool.discarded,
        "average_cleanup_seconds": (
            round(pool.release_seconds / pool.released, 4) if pool.released else 0.0
        ),
        "acquire_seconds": round(pool.acquire_seconds, 3),
        "release_seconds": round(pool.release_seconds, 3),
        "agents": pool.acquired,
        "agents_running": pool.in_use,
        "processes_running": processes_running,
    }


def metrics_path(layout: StateLayout, job_id: str) -> str:
    """Where the job's metrics are kept: live while it runs, its last run's afterwards."""
    return os.path.join(layout.logs, f"{job_id}.metrics.json")


def save_run_metrics(layout: StateLayout, result: JobResult) -> None:
    """Keep the run's metrics beside the job's event log (replaced atomically)."""
    os.makedirs(layout.logs, exist_ok=True)
    path = metrics_path(layout, result.job_id)
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(run_metrics(result), file, indent=2)
    os.replace(temporary, path)


def load_run_metrics(layout: StateLayout, job_id: str) -> dict[str, Any] | None:
    """The job's metrics, if some were saved: a running job's latest (``live`` true),
    else its last finished run's. A live snapshot whose run was killed stays until the
    job runs again."""
    try:
        with open(metrics_path(layout, job_id), encoding="utf-8") as file:
            data: dict[str, Any] = json.load(file)
    except (OSError, ValueError):
        return None
    return data

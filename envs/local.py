"""The production environment: pygit2 worktrees and merges, trio processes, the job store."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import attrs

from envs.console import NullSink
from envs.environment import DEFAULT_AGENT_COMMAND, PhaseEnv, RunConfig, Services
from envs.git_merger import GitMerger
from envs.git_repository import locate_repository
from envs.git_worktrees import GitWorktreeManager
from envs.limits import LimitGuard, ResourceLimits
from envs.live_metrics import MetricsPublisher
from envs.processes import TrioProcessExecutor
from envs.protocols import EventSink, JobStore
from envs.store import SqliteJobStore
from envs.system_clock import SystemClock

__all__ = ["StateLayout", "local_env", "state_layout"]


@attrs.frozen
class StateLayout:
    """Where forkmerge keeps its state for a repository.

    ``root`` is ``--state-dir`` or ``<git common dir>/forkmerge``; under it
    live the worktrees (``worktrees/``), the job database
    (``jobs.sqlite3``) and the job locks (``locks/``).
    """

    repository: str
    root: str

    @property
    def worktrees(self) -> str:
        return os.path.join(self.root, "worktrees")

    @property
    def locks(self) -> str:
        return os.path.join(self.root, "locks")

    @property
    def logs(self) -> str:
        """Each job's event log: ``<job id>.jsonl``, rotated and compressed when large."""
        return os.path.join(self.root, "logs")

    def open_store(self) -> SqliteJobStore:
        """The repository's job database (created on first use)."""
        return SqliteJobStore.for_repository(self.root, state_dir=self.root)


def state_layout(repo_path: str, state_dir: str | None = None) -> StateLayout:
    """The state layout of the repository containing ``repo_path``.

    Raises ``NotARepositoryError`` when there is none.
    """
    location = locate_repository(repo_path)
    root = state_dir or os.path.join(location.common_dir, "forkmerge")
    return StateLayout(os.path.dirname(location.common_dir.rstrip("/")), os.path.abspath(root))


def local_env(
    repo_path: str,
    *,
    store: JobStore,
    agent_command: tuple[str, ...] = DEFAULT_AGENT_COMMAND,
    workflow_env: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
    worktrees_dir: str | None = None,
    events: EventSink | None = None,
    process_env: Mapping[str, str] | None = None,
    max_output_bytes: int = 1_000_000,
    limits: ResourceLimits | None = None,
    live_metrics: MetricsPublisher | None = None,
) -> PhaseEnv:
    """The real environment for the repository containing ``repo_path``.

    Worktrees live under ``worktrees_dir`` (default: inside the repository's
    git directory, see :class:`StateLayout`); processes start from ``process_env`` (default: this
    process's environment) plus ``workflow_env``; ``secrets`` are masked in
    everything reported. Raises ``NotARepositoryError`` when ``repo_path``
    is in no git repository.
    """
    worktrees = GitWorktreeManager(repo_path, state_dir=worktrees_dir)
    sink = events if events is not None else NullSink()
    guard = LimitGuard(limits or ResourceLimits(), worktrees.state_dir, sink)
    services = Services(
        worktrees=worktrees,
        executor=TrioProcessExecutor(max_output_bytes=max_output_bytes),
        merger=GitMerger(repo_path),
        store=store,
        events=sink,
        clock=SystemClock(),
        limits=guard,
        live_metrics=live_metrics,
    )
    config = RunConfig(
        agent_command=agent_command,
        process_env=dict(os.environ if process_env is None else process_env),
        workflow_env=dict(workflow_env or {}),
        secrets=tuple(secret for secret in secrets if secret),
    )
    return PhaseEnv(services, config)

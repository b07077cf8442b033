"""The environments phases run in: the services plus the run's configuration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import attrs

from envs.live_metrics import MetricsPublisher
from envs.pool import WorktreeAdmission, WorktreePool
from envs.protocols import (
    Clock,
    CommandExecutor,
    EventSink,
    JobStore,
    Merger,
    Worktree,
    WorktreeManager,
)

__all__ = ["JobContext", "MapEnv", "PhaseEnv", "RunConfig", "ServiceEnv", "Services"]

DEFAULT_AGENT_COMMAND = ("claude", "--print")


@attrs.frozen
class Services:
    """Everything that touches the world, behind its protocol.

    ``limits`` is asked before a job's pool creates a worktree or starts an
    agent (resource limits such as a full disk); ``None`` means no limits.
    ``live_metrics`` receives the running job's pool figures after every
    acquisition and release (``status`` reads them); ``None``: not published.
    """

    worktrees: WorktreeManager
    executor: CommandExecutor
    merger: Merger
    store: JobStore
    events: EventSink
    clock: Clock
    limits: WorktreeAdmission | None = None
    live_metrics: MetricsPublisher | None = None


@attrs.frozen
class RunConfig:
    """How commands run: the agent program, the process environment, secrets to mask.

    ``process_env`` is the environment every process starts from (the
    caller's, in production); ``workflow_env`` is the workflow's ``env``
    after the chosen profile, added on top and visible to interpolation;
    ``secrets`` are the values masked in every output, event and error;
    ``kill_grace`` is how long a stopped command may take to exit before
    it is killed (``None``: the executor's default).
    """

    agent_command: tuple[str, ...] = DEFAULT_AGENT_COMMAND
    process_env: Mapping[str, str] = attrs.field(factory=dict)
    workflow_env: Mapping[str, str] = attrs.field(factory=dict)
    secrets: tuple[str, ...] = ()
    shell: tuple[str, ...] = ("sh", "-c")
    kill_grace: float | None = None


@attrs.frozen
class JobContext:
    """The job being run: its id, its branch and the job's own worktree."""

    job_id: str
    job_branch: str
    job_worktree: Worktree


class ServiceEnv(Protocol):
    """What every domain effect needs from its environment."""

    @property
    def services(self) -> Services: ...

    @property
    def config(self) -> RunConfig: ...


@attrs.frozen
class PhaseEnv:
    """The environment of the setup and reduce phases and of the whole job."""

    services: Services
    config: RunConfig


@attrs.frozen
class MapEnv:
    """The environment of the map phase: a phase environment plus the job it works for.

    ``pool`` lends the agents their worktrees when set (the default for jobs);
    without it each agent creates and removes its own worktree.
    """

    services: Services
    config: RunConfig
    job: JobContext
    pool: WorktreePool | None = None

    @staticmethod
    def for_job(env: PhaseEnv, job: JobContext, pool: WorktreePool | None = None) -> MapEnv:
        return MapEnv(env.services, env.config, job, pool)

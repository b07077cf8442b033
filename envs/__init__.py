"""Environments: the services that perform I/O, behind protocols, and their holders."""

from envs.environment import JobContext, MapEnv, PhaseEnv, RunConfig, ServiceEnv, Services
from envs.protocols import (
    Clock,
    CommandExecutor,
    CommandResult,
    CommandSpec,
    EventSink,
    JobStore,
    MergeConflict,
    MergeOutcome,
    Merger,
    Worktree,
    WorktreeError,
    WorktreeManager,
)

__all__ = [
    "Clock",
    "CommandExecutor",
    "CommandResult",
    "CommandSpec",
    "EventSink",
    "JobContext",
    "JobStore",
    "MapEnv",
    "MergeConflict",
    "MergeOutcome",
    "Merger",
    "PhaseEnv",
    "RunConfig",
    "ServiceEnv",
    "Services",
    "Worktree",
    "WorktreeError",
    "WorktreeManager",
]

"""The mock environment: in-memory git, scripted commands and recorders, for fast tests.

``mock_phase_env(...)`` and ``mock_map_env(...)`` build a ``PhaseEnv`` /
``MapEnv`` whose services are the mocks of this package, sharing one
repository and one :class:`CallRecorder`; :func:`mock_kit` gives a test the
mocks behind an env, typed as the mock classes. Example::

    env = mock_map_env(files={"src/a.py": b"a = 1\\n"})
    kit = mock_kit(env)
    kit.executor.on("claude", duration=1.0, effect=kit.writes("out.txt", "done\\n"))
    result = await some_effect.run(env)
    assert kit.worktrees.branch_files(env.job.job_branch)["out.txt"] == b"done\\n"
    assert kit.recorder.methods("worktrees")[0] == "worktrees.create_agent_worktree"

Everything is deterministic: the same test makes the same commits with the
same ids. Durations elapse on trio's clock (use pytest-trio's
``autojump_clock`` fixture to run them in zero real time).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import final

import attrs

from envs.environment import (
    DEFAULT_AGENT_COMMAND,
    JobContext,
    MapEnv,
    PhaseEnv,
    RunConfig,
    Services,
)
from envs.mock_executor import (
    CommandRun,
    ContentOf,
    PathOf,
    Rule,
    ScriptedExecutor,
    SideEffect,
    delete_in_cwd,
    write_in_cwd,
)
from envs.mock_failures import FailureInjector
from envs.mock_git import AGENT_BRANCH_PREFIX, JOB_BRANCH_PREFIX, MockWorktreeManager
from envs.mock_merger import MockMerger
from envs.mock_repository import MOCK_REPO_PATH, MockCommit, MockRepository
from envs.mock_store import (
    DEFAULT_WALL_TIME,
    Call,
    CallRecorder,
    MemoryJobStore,
    MockWallClock,
    RecordingEventSink,
)

__all__ = [
    "AGENT_BRANCH_PREFIX",
    "Call",
    "CallRecorder",
    "CommandRun",
    "FailureInjector",
    "JOB_BRANCH_PREFIX",
    "MOCK_JOB_ID",
    "MOCK_REPO_PATH",
    "MemoryJobStore",
    "MockCommit",
    "MockKit",
    "MockMerger",
    "MockRepository",
    "MockWallClock",
    "MockWorktreeManager",
    "RecordingEventSink",
    "Rule",
    "ScriptedExecutor",
    "delete_in_cwd",
    "mock_kit",
    "mock_map_env",
    "mock_phase_env",
    "mock_services",
    "write_in_cwd",
]

MOCK_JOB_ID = "job-test"
"""The job :func:`mock_map_env` creates unless told otherwise (branch ``forkmerge/job-test``)."""


@final
@attrs.frozen
class MockKit:
    """The mock services behind an environment, typed as the mock classes.

    ``repository`` is shared by ``worktrees`` and ``merger``; ``recorder``
    by all six services.
    """

    repository: MockRepository
    worktrees: MockWorktreeManager
    merger: MockMerger
    executor: ScriptedExecutor
    store: MemoryJobStore
    events: RecordingEventSink
    clock: MockWallClock
    recorder: CallRecorder

    @property
    def services(self) -> Services:
        return Services(
            worktrees=self.worktrees,
            executor=self.executor,
            merger=self.merger,
            store=self.store,
            events=self.events,
            clock=self.clock,
        )

    def writes(self, path: PathOf, content: ContentOf) -> SideEffect:
        """A rule side effect writing a file in the command's worktree (:func:`write_in_cwd`)."""
        return write_in_cwd(self.worktrees, path, content)

    def deletes(self, path: PathOf) -> SideEffect:
        """A rule side effect deleting a file in the command's worktree."""
        return delete_in_cwd(self.worktrees, path)


def _build_kit(
    files: Mapping[str, bytes] | None,
    rules: Iterable[Rule],
    strict: bool,
    latency: Mapping[str, float] | None,
    merge_duration: float,
    wall_time: float,
) -> MockKit:
    recorder = CallRecorder()
    repository = MockRepository(files)
    worktrees = MockWorktreeManager(repository, recorder=recorder, latency=latency)
    return MockKit(
        repository=repository,
        worktrees=worktrees,
        merger=MockMerger(repository, recorder=recorder, duration=merge_duration),
        executor=ScriptedExecutor(rules, strict=strict, worktrees=worktrees, recorder=recorder),
        store=MemoryJobStore(recorder),
        events=RecordingEventSink(recorder),
        clock=MockWallClock(wall_time, recorder=recorder),
        recorder=recorder,
    )


def mock_services(
    *,
    files: Mapping[str, bytes] | None = None,
    rules: Iterable[Rule] = (),
    strict: bool = False,
    latency: Mapping[str, float] | None = None,
    merge_duration: float = 0.0,
    wall_time: float = DEFAULT_WALL_TIME,
) -> Services:
    """Mock services over a repository whose ``main`` holds ``files`` (default: a README).

    ``rules`` and ``strict`` script the executor (:class:`ScriptedExecutor`);
    ``latency`` gives worktree operations durations (by method name);
    ``merge_duration`` is each merge's; ``wall_time`` is where the wall clock
    starts. Get the mocks back with :func:`mock_kit`.
    """
    kit = _build_kit(files, rules, strict, latency, merge_duration, wall_time)
    return kit.services


def mock_phase_env(
    *,
    files: Mapping[str, bytes] | None = None,
    rules: Iterable[Rule] = (),
    strict: bool = False,
    agent_command: tuple[str, ...] = DEFAULT_AGENT_COMMAND,
    workflow_env: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
    process_env: Mapping[str, str] | None = None,
    latency: Mapping[str, float] | None = None,
    merge_duration: float = 0.0,
    wall_time: float = DEFAULT_WALL_TIME,
) -> PhaseEnv:
    """A ``PhaseEnv`` over fresh mock services (see :func:`mock_services`) and this run config."""
    services = mock_services(
        files=files,
        rules=rules,
        strict=strict,
        latency=latency,
        merge_duration=merge_duration,
        wall_time=wall_time,
    )
    config = RunConfig(
        agent_command=tuple(agent_command),
        process_env=dict(process_env or {}),
        workflow_env=dict(workflow_env or {}),
        secrets=tuple(secrets),
    )
    return PhaseEnv(services, config)


def mock_map_env(
    *,
    job_id: str = MOCK_JOB_ID,
    files: Mapping[str, bytes] | None = None,
    rules: Iterable[Rule] = (),
    strict: bool = False,
    agent_command: tuple[str, ...] = DEFAULT_AGENT_COMMAND,
    workflow_env: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
    process_env: Mapping[str, str] | None = None,
    latency: Mapping[str, float] | None = None,
    merge_duration: float = 0.0,
    wall_time: float = DEFAULT_WALL_TIME,
) -> MapEnv:
    """A ``MapEnv`` for job ``job_id`` whose job branch and worktree already exist.

    The job branch ``forkmerge/<job_id>`` starts at ``main``; creating it is
    not recorded, so the recorder starts empty.
    """
    env = mock_phase_env(
        files=files,
        rules=rules,
        strict=strict,
        agent_command=agent_command,
        workflow_env=workflow_env,
        secrets=secrets,
        process_env=process_env,
        latency=latency,
        merge_duration=merge_duration,
        wall_time=wall_time,
    )
    kit = mock_kit(env)
    job_worktree = kit.worktrees.add_job_worktree(job_id)
    job = JobContext(job_id=job_id, job_branch=job_worktree.branch, job_worktree=job_worktree)
    return MapEnv.for_job(env, job)


def mock_kit(env: PhaseEnv | MapEnv | Services) -> MockKit:
    """The mock services behind ``env`` (built by this module), typed as the mock classes.

    Raises ``TypeError`` when a service is not one of the mocks.
    """
    services = env if isinstance(env, Services) else env.services
    worktrees, merger, executor = services.worktrees, services.merger, services.executor
    store, events, clock = services.store, services.events, services.clock
    if not (
        isinstance(worktrees, MockWorktreeManager)
        and isinstance(merger, MockMerger)
        and isinstance(executor, ScriptedExecutor)
        and isinstance(store, MemoryJobStore)
        and isinstance(events, RecordingEventSink)
        and isinstance(clock, MockWallClock)
    ):
        kinds = [type(service).__name__ for service in attrs.astuple(services, recurse=False)]
        raise TypeError(f"expected the services of envs.mock, found {kinds}")
    return MockKit(
        repository=worktrees.repository,
        worktrees=worktrees,
        merger=merger,
        executor=executor,
        store=store,
        events=events,
        clock=clock,
        recorder=worktrees.recorder,
    )

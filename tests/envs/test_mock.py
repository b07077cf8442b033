"""The mock environment builders and the shared recorder, as phase tests use them."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from returns.result import Failure, Success

from envs.environment import DEFAULT_AGENT_COMMAND, MapEnv, PhaseEnv, Services
from envs.mock import (
    MOCK_JOB_ID,
    MOCK_REPO_PATH,
    CommandRun,
    MockKit,
    Rule,
    mock_kit,
    mock_map_env,
    mock_phase_env,
    mock_services,
)
from envs.protocols import CommandSpec, MergeConflict, Worktree

FILES = {"README.md": b"hi\n", "shared.txt": b"base\n"}


def agent_spec(worktree: Worktree, prompt: str) -> CommandSpec:
    return CommandSpec(("claude", "--print", prompt), worktree.path, {}, None, "claude --print")


def test_map_env_has_its_job_worktree_and_a_clean_recorder() -> None:
    env = mock_map_env(files=FILES, workflow_env={"A": "1"}, secrets=["s3cret"])
    kit = mock_kit(env)
    assert isinstance(env, MapEnv)
    assert env.job.job_id == MOCK_JOB_ID
    assert env.job.job_branch == "forkmerge/job-test"
    assert env.job.job_worktree == kit.worktrees.worktree_at(env.job.job_worktree.path)
    assert kit.worktrees.files(env.job.job_worktree) == FILES
    assert kit.worktrees.branches() == ["forkmerge/job-test", "main"]
    assert kit.recorder.calls == []
    assert env.config.agent_command == DEFAULT_AGENT_COMMAND
    assert env.config.workflow_env == {"A": "1"}
    assert env.config.secrets == ("s3cret",)
    assert kit.repository.path == MOCK_REPO_PATH


def test_phase_env_and_services_share_one_recorder_and_repository() -> None:
    env = mock_phase_env(agent_command=("agent", "-x"), process_env={"PATH": "/bin"})
    assert isinstance(env, PhaseEnv)
    assert env.config.agent_command == ("agent", "-x")
    assert env.config.process_env == {"PATH": "/bin"}
    kit = mock_kit(env)
    assert kit.worktrees.repository is kit.merger.repository is kit.repository
    assert kit.executor.worktrees is kit.worktrees
    assert kit.executor.recorder is kit.merger.recorder is kit.recorder
    assert kit.services == env.services
    assert kit.worktrees.active_worktrees() == []
    assert isinstance(mock_kit(mock_services()), MockKit)


def test_mock_kit_refuses_services_that_are_not_mocks() -> None:
    kit = mock_kit(mock_services())
    real_like = Services(
        worktrees=kit.worktrees,
        executor=kit.executor,
        merger=kit.merger,
        store=kit.store,
        events=kit.events,
        clock=kit.clock,
    )
    assert isinstance(mock_kit(real_like), MockKit)

    class OtherClock:
        def now(self) -> float:
            return 0.0

    odd = Services(kit.worktrees, kit.executor, kit.merger, kit.store, kit.events, OtherClock())
    with pytest.raises(TypeError, match="OtherClock"):
        mock_kit(odd)


async def test_an_agent_cycle_is_recorded_across_services(
    autojump_clock: trio.testing.MockClock,
) -> None:
    env = mock_map_env(files=FILES, latency={"create_agent_worktree": 0.5}, merge_duration=0.25)
    kit = mock_kit(env)
    kit.executor.on(
        "claude", duration=2.0, stdout="ok", effect=kit.writes("out.txt", lambda s: s.argv[-1])
    )
    kit.executor.on("clean", effect=kit.deletes("README.md"))
    services, job = env.services, env.job
    start = trio.current_time()

    agent = (await services.worktrees.create_agent_worktree("agent-0", job.job_branch)).unwrap()
    result = await services.executor.run(agent_spec(agent, "item one"))
    cleaned = CommandSpec(("sh", "-c", "clean"), agent.path, {}, None, "clean")
    await services.executor.run(cleaned)
    commit = (await services.worktrees.commit_changes(agent, "agent-0")).unwrap()
    merged = (await services.merger.merge(agent.branch, job.job_branch, "merge")).unwrap()
    await services.worktrees.remove_worktree(agent)
    services.events.emit({"type": "item_done"})

    assert result.stdout == "ok" and commit is not None and merged.commit is not None
    assert trio.current_time() - start == pytest.approx(2.75)
    assert kit.worktrees.branch_files(job.job_branch) == {
        "shared.txt": b"base\n",
        "out.txt": b"item one",
    }
    assert kit.recorder.calls == [
        ("worktrees", "create_agent_worktree", ("agent-0", "forkmerge/job-test")),
        ("executor", "run", (agent_spec(agent, "item one"),)),
        ("executor", "run", (cleaned,)),
        ("worktrees", "commit_changes", (agent, "agent-0")),
        ("merger", "merge", (agent.branch, "forkmerge/job-test", "merge")),
        ("worktrees", "remove_worktree", (agent, True)),
        ("events", "emit", ({"type": "item_done"},)),
    ]
    assert kit.worktrees.active_worktrees() == [job.job_worktree]
    assert kit.worktrees.branches() == ["forkmerge/job-test", "main"]
    assert kit.events.events == [{"type": "item_done"}]


async def test_two_agents_editing_one_line_give_a_success_and_a_conflict() -> None:
    env = mock_map_env(files=FILES)
    kit = mock_kit(env)
    kit.executor.on("claude", effect=kit.writes("shared.txt", lambda s: s.argv[-1] + "\n"))
    services, job = env.services, env.job
    agents = [
        (await services.worktrees.create_agent_worktree(name, job.job_branch)).unwrap()
        for name in ("agent-a", "agent-b")
    ]
    outcomes = []
    for agent in agents:
        await services.executor.run(agent_spec(agent, agent.name))
        await services.worktrees.commit_changes(agent, agent.name)
        outcomes.append(await services.merger.merge(agent.branch, job.job_branch, agent.name))
        await services.worktrees.remove_worktree(agent)
    assert isinstance(outcomes[0], Success)
    assert outcomes[1] == Failure(
        MergeConflict("forkmerge-agents/job-test/agent-b", job.job_branch, ("shared.txt",))
    )
    assert kit.worktrees.branch_files(job.job_branch)["shared.txt"] == b"agent-a\n"
    assert kit.worktrees.branch_files("main") == FILES
    assert kit.worktrees.active_worktrees() == [job.job_worktree]


async def test_builders_pass_rules_strictness_and_a_custom_job_id() -> None:
    env = mock_map_env(job_id="job-7", rules=[Rule("make", exit_code=2)], strict=True)
    kit = mock_kit(env)
    assert env.job.job_branch == "forkmerge/job-7"
    wt = env.job.job_worktree
    spec = CommandSpec(("make",), wt.path, {}, None, "make")
    assert (await env.services.executor.run(spec)).exit_code == 2
    with pytest.raises(AssertionError, match="no scripted rule"):
        await env.services.executor.run(CommandSpec(("ls",), wt.path, {}, None, "ls"))
    assert [run.spec for run in kit.executor.runs] == [spec]
    assert isinstance(kit.executor.runs[0], CommandRun)


async def test_the_mock_world_is_deterministic() -> None:
    async def run_once() -> list[str]:
        env = mock_map_env(files=FILES)
        kit = mock_kit(env)
        kit.executor.on("claude", effect=kit.writes("f.txt", lambda s: s.argv[-1]))
        services, job = env.services, env.job
        for name in ("a", "b"):
            agent = (await services.worktrees.create_agent_worktree(name, job.job_branch)).unwrap()
            await services.executor.run(agent_spec(agent, name))
            await services.worktrees.commit_changes(agent, name)
            await services.merger.merge(agent.branch, job.job_branch, name)
        return [commit.id for commit in kit.worktrees.commit_log(job.job_branch)]

    assert await run_once() == await run_once()

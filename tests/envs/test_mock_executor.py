"""The scripted executor: rule matching, durations on MockClock, timeouts, side effects, records."""

from __future__ import annotations

import re
import time

import pytest
import trio
import trio.testing

from envs.mock_executor import CommandRun, Rule, ScriptedExecutor, delete_in_cwd, write_in_cwd
from envs.mock_git import MockWorktreeManager
from envs.mock_repository import MOCK_REPO_PATH
from envs.protocols import CommandExecutor, CommandResult, CommandSpec, Worktree


def spec(
    *argv: str, cwd: str = MOCK_REPO_PATH, timeout: float | None = None, display: str = ""
) -> CommandSpec:
    return CommandSpec(argv, cwd, {}, timeout, display or " ".join(argv))


def shell(text: str, **kwargs: str | float | None) -> CommandSpec:
    return spec("sh", "-c", text, **kwargs)  # type: ignore[arg-type]


def test_implements_the_protocol() -> None:
    service: CommandExecutor = ScriptedExecutor()  # checked by mypy
    assert isinstance(service, ScriptedExecutor)


async def test_first_matching_rule_answers(autojump_clock: trio.testing.MockClock) -> None:
    executor = ScriptedExecutor(
        [
            Rule("make test", stdout="ok\n", exit_code=0),
            Rule("make", stdout="built\n", stderr="warn\n", exit_code=2),
        ]
    )
    assert await executor.run(shell("make test")) == CommandResult(0, "ok\n", "", 0.0)
    assert await executor.run(shell("make all")) == CommandResult(2, "built\n", "warn\n", 0.0)


async def test_matchers_search_display_last_argument_and_whole_argv(
    autojump_clock: trio.testing.MockClock,
) -> None:
    executor = ScriptedExecutor(
        [
            Rule("SHOWN", stdout="display"),
            Rule(re.compile(r"^item \d+$"), stdout="last"),
            Rule(re.compile(r"^tool --flag value$"), stdout="argv"),
            Rule(lambda s: s.cwd == "/elsewhere", stdout="predicate"),
        ]
    )
    assert (await executor.run(spec("x", display="SHOWN x"))).stdout == "display"
    assert (await executor.run(spec("claude", "-p", "item 7", display="***"))).stdout == "last"
    assert (await executor.run(spec("tool", "--flag", "value", display="***"))).stdout == "argv"
    assert (await executor.run(spec("ls", cwd="/elsewhere"))).stdout == "predicate"
    assert (await executor.run(spec("ls"))).stdout == ""


async def test_output_may_depend_on_the_command(autojump_clock: trio.testing.MockClock) -> None:
    executor = ScriptedExecutor(
        [Rule("echo", stdout=lambda s: s.argv[-1].removeprefix("echo ") + "\n", stderr="e")]
    )
    result = await executor.run(shell("echo hello"))
    assert (result.stdout, result.stderr) == ("hello\n", "e")


async def test_times_limits_a_rule_so_a_retry_can_succeed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    executor = ScriptedExecutor()
    executor.on("flaky", exit_code=1, stderr="boom", times=2)
    executor.on("flaky", stdout="fine")
    codes = [(await executor.run(shell("flaky"))).exit_code for _ in range(4)]
    assert codes == [1, 1, 0, 0]
    with pytest.raises(ValueError, match="`times` must be at least 1"):
        Rule("x", times=0)
    with pytest.raises(ValueError, match="`duration` must be non-negative"):
        Rule("x", duration=-1)


async def test_unmatched_commands_succeed_or_fail_loudly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lenient = ScriptedExecutor()
    assert await lenient.run(shell("anything")) == CommandResult(0, "", "", 0.0)
    strict = ScriptedExecutor([Rule("known")], strict=True)
    assert (await strict.run(shell("known"))).succeeded
    with pytest.raises(AssertionError, match=r"no scripted rule matches the command 'sh -c rm'"):
        await strict.run(shell("rm"))


async def test_durations_elapse_on_the_mock_clock_in_zero_real_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    executor = ScriptedExecutor([Rule("agent", duration=1.0, stdout="done")])
    limiter = trio.CapacityLimiter(5)
    results: list[CommandResult] = []

    async def agent(index: int) -> None:
        async with limiter:
            results.append(await executor.run(shell(f"agent {index}")))

    real_start, start = time.perf_counter(), trio.current_time()
    async with trio.open_nursery() as nursery:
        for index in range(10):
            nursery.start_soon(agent, index)
    assert trio.current_time() - start == pytest.approx(2.0)
    assert time.perf_counter() - real_start < 1.0
    assert [r.duration for r in results] == [pytest.approx(1.0)] * 10
    assert executor.peak_running == 5 and executor.running == 0
    starts = sorted(run.started - start for run in executor.runs)
    assert starts == [pytest.approx(0.0)] * 5 + [pytest.approx(1.0)] * 5
    assert all(run.ended == pytest.approx(run.started + 1.0) for run in executor.runs)


async def test_a_timeout_shorter_than_the_duration_kills_the_command(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wts = MockWorktreeManager()
    job = wts.add_job_worktree("job-1")
    executor = ScriptedExecutor(
        [Rule("slow", stdout="partial", duration=10.0, effect=write_in_cwd(wts, "x", b"x"))],
        worktrees=wts,
    )
    start = trio.current_time()
    result = await executor.run(shell("slow", cwd=job.path, timeout=3.0))
    assert result == CommandResult(None, "partial", "", 3.0, timed_out=True)
    assert not result.succeeded
    assert trio.current_time() - start == pytest.approx(3.0)
    assert "x" not in wts.files(job)
    in_time = await executor.run(shell("slow", cwd=job.path, timeout=10.0))
    assert in_time.exit_code == 0 and not in_time.timed_out
    assert wts.files(job)["x"] == b"x"


async def test_side_effects_change_the_worktree_the_command_runs_in(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wts = MockWorktreeManager()
    job = wts.add_job_worktree("job-1")
    agent = (await wts.create_agent_worktree("agent-0", job.branch)).unwrap()
    executor = ScriptedExecutor(worktrees=wts)
    executor.on(
        "claude",
        effect=write_in_cwd(
            wts, lambda s: f"out/{s.argv[-1].split()[-1]}.txt", lambda s: s.argv[-1]
        ),
    )
    executor.on("rm README.md", effect=delete_in_cwd(wts, "README.md"))
    await executor.run(spec("claude", "--print", "handle item-7", cwd=agent.path))
    await executor.run(shell("rm README.md", cwd=agent.path))
    assert wts.files(agent) == {"out/item-7.txt": b"handle item-7"}
    assert "README.md" in wts.files(job)


async def test_a_side_effect_outside_any_worktree_is_a_test_bug() -> None:
    wts = MockWorktreeManager()
    executor = ScriptedExecutor([Rule("w", effect=write_in_cwd(wts, "x", "y"))])
    with pytest.raises(AssertionError, match="not an active mock worktree"):
        await executor.run(shell("w", cwd="/tmp"))


async def test_commands_cannot_start_outside_worktrees_and_the_repository(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wts = MockWorktreeManager()
    job = wts.add_job_worktree("job-1")
    executor = ScriptedExecutor(strict=True, worktrees=wts)
    executor.on("")
    gone = Worktree("agent-0", "/mock/worktrees/gone", "b", "c")
    result = await executor.run(shell("ls", cwd=gone.path))
    assert result == CommandResult(
        127,
        "",
        "cannot use working directory '/mock/worktrees/gone': No such file or directory",
        0.0,
    )
    assert (await executor.run(shell("ls", cwd=job.path))).succeeded
    assert (await executor.run(shell("ls", cwd=wts.repository.path))).succeeded
    assert (await executor.run(spec())).exit_code == 127
    assert executor.runs[0].rule is None and executor.runs[1].rule is executor.rules[0]


async def test_cancellation_stops_a_command_and_is_recorded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wts = MockWorktreeManager()
    job = wts.add_job_worktree("job-1")
    executor = ScriptedExecutor(
        [Rule("long", duration=100.0, effect=write_in_cwd(wts, "x", b"x"))], worktrees=wts
    )
    with trio.move_on_after(5.0):
        await executor.run(shell("long", cwd=job.path))
    [run] = executor.runs
    assert run.cancelled and run.result is None
    assert run.ended is not None and run.ended - run.started == pytest.approx(5.0)
    assert executor.running == 0
    assert "x" not in wts.files(job)


async def test_every_call_is_recorded_in_order(autojump_clock: trio.testing.MockClock) -> None:
    executor = ScriptedExecutor([Rule("a", stdout="A")])
    first, second = shell("a"), shell("b")
    await executor.run(first)
    await executor.run(second)
    assert executor.calls == [first, second]
    assert executor.recorder.calls == [
        ("executor", "run", (first,)),
        ("executor", "run", (second,)),
    ]
    assert executor.runs == [
        CommandRun(first, 0.0, executor.rules[0], 0.0, CommandResult(0, "A", "", 0.0)),
        CommandRun(second, 0.0, None, 0.0, CommandResult(0, "", "", 0.0)),
    ]

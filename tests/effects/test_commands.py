"""execute_commands / run_step in the mock environment."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing
from returns.result import Failure, Success

from effects.commands import CommandsOutcome, StepFailure, execute_commands
from envs.environment import MapEnv
from envs.mock import mock_kit, mock_map_env
from pure.workflow import (
    ClaudeCommand,
    OnFailure,
    ShellCommand,
    Step,
    WriteFileCommand,
)


def shell(text: str, **fields: Any) -> Step:
    return Step(ShellCommand(text), **fields)


async def run(env: MapEnv, steps: list[Step], variables: dict[str, Any] | None = None) -> Any:
    return await execute_commands(steps, env.job.job_worktree, variables or {}).run(env)


async def test_shell_steps_run_in_order_in_the_worktree_with_quoted_values() -> None:
    env = mock_map_env(workflow_env={"PROJECT": "demo"}, process_env={"PATH": "/bin"})
    kit = mock_kit(env)
    result = await run(
        env, [shell("echo ${item.name}"), shell("ls")], {"item": {"name": "a; rm -rf /"}}
    )
    assert isinstance(result, Success)
    specs = [call.spec for call in kit.executor.runs]
    assert [spec.argv for spec in specs] == [("sh", "-c", "echo 'a; rm -rf /'"), ("sh", "-c", "ls")]
    assert all(spec.cwd == env.job.job_worktree.path for spec in specs)
    assert specs[0].env == {"PATH": "/bin", "PROJECT": "demo"}


async def test_claude_steps_use_the_agent_command_with_one_argument() -> None:
    env = mock_map_env(agent_command=("agent", "--print"))
    kit = mock_kit(env)
    steps = [Step(ClaudeCommand("/fix ${item.file} 'quoted' $(x)"))]
    assert isinstance(await run(env, steps, {"item": {"file": "a b.py"}}), Success)
    assert kit.executor.runs[0].spec.argv == ("agent", "--print", "/fix a b.py 'quoted' $(x)")


async def test_capture_formats_and_shell_output() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    kit.executor.on("count", stdout="42\n")
    kit.executor.on("data", stdout='{"files": ["a", "b"]}\n')
    kit.executor.on("list", stdout="x\ny\n\n")
    steps = [
        shell("count", capture="n", capture_format="number"),
        shell("data", capture="doc", capture_format="json"),
        shell("list", capture="names", capture_format="lines"),
        shell("echo ${doc.files[1]} ${n}"),
    ]
    result = await run(env, steps)
    outcome = result.unwrap()
    assert outcome.variables["n"] == 42
    assert outcome.variables["doc"] == {"files": ["a", "b"]}
    assert outcome.variables["names"] == ["x", "y"]
    assert outcome.variables["shell"]["output"] == ""
    assert kit.executor.runs[-1].spec.argv[-1] == "echo 'b' '42'"


async def test_capture_that_does_not_convert_fails_the_step() -> None:
    env = mock_map_env()
    mock_kit(env).executor.on("count", stdout="many\n")
    result = await run(env, [shell("count", capture="n", capture_format="number")])
    failure = result.failure()
    assert isinstance(failure, StepFailure)
    assert "expected a number" in failure.reason


async def test_failing_step_stops_the_sequence_with_exit_code_and_output() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    kit.executor.on("pytest", stdout="1 failed\n", exit_code=1)
    result = await run(env, [shell("pytest"), shell("never")])
    failure = result.failure()
    assert (failure.index, failure.exit_code, failure.reason) == (0, 1, "exit code 1")
    assert "1 failed" in failure.output
    assert [r.spec.argv[-1] for r in kit.executor.runs] == ["pytest"]


async def test_when_skips_a_step_whose_condition_is_false() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    steps = [
        shell("rust only", when="'${item.kind}' == 'rust'"),
        shell("always", when="true"),
    ]
    outcome = (await run(env, steps, {"item": {"kind": "python"}})).unwrap()
    assert [r.spec.argv[-1] for r in kit.executor.runs] == ["always"]
    assert [record.status for record in outcome.records] == ["skipped", "succeeded"]


async def test_bad_when_condition_is_a_step_failure() -> None:
    env = mock_map_env()
    result = await run(env, [shell("x", when="1 ==")])
    assert "when condition" in result.failure().reason


async def test_unresolved_reference_is_a_step_failure_not_a_crash() -> None:
    env = mock_map_env()
    result = await run(env, [shell("echo ${item.missing}")], {"item": {}})
    assert "item.missing" in result.failure().reason


async def test_on_failure_handler_success_recovers_the_step() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    kit.executor.on("cargo test", stdout="boom", exit_code=101)
    step = shell(
        "cargo test", on_failure=OnFailure(handler=(Step(ClaudeCommand("/debug ${shell.output}")),))
    )
    outcome = (await run(env, [step, shell("next")])).unwrap()
    argvs = [r.spec.argv[-1] for r in kit.executor.runs]
    assert argvs == ["cargo test", "/debug boom", "next"]
    assert outcome.records[0].status == "recovered"


async def test_on_failure_retries_the_step_up_to_max_attempts() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    kit.executor.on("flaky", exit_code=1, times=2)
    kit.executor.on("flaky", exit_code=0)
    step = shell("flaky", on_failure=OnFailure(handler=(shell("fix"),), max_attempts=3))
    outcome = (await run(env, [step])).unwrap()
    assert [r.spec.argv[-1] for r in kit.executor.runs] == ["flaky", "fix", "flaky", "fix", "flaky"]
    assert outcome.records[0].status == "succeeded"


async def test_on_failure_with_fail_workflow_fails_after_the_last_attempt() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    kit.executor.on("broken", exit_code=2)
    step = shell(
        "broken", on_failure=OnFailure(handler=(shell("fix"),), max_attempts=2, fail_workflow=True)
    )
    failure = (await run(env, [step])).failure()
    assert "after 2 attempts" in failure.reason
    assert len(kit.executor.runs) == 4


async def test_failing_handler_fails_the_step() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    kit.executor.on("broken", exit_code=2)
    kit.executor.on("fix", exit_code=3)
    step = shell("broken", on_failure=OnFailure(handler=(shell("fix"),)))
    failure = (await run(env, [step])).failure()
    assert "on_failure handler failed" in failure.reason


async def test_on_success_steps_run_after_success() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    step = shell("build", on_success=(shell("publish"),))
    outcome = (await run(env, [step])).unwrap()
    assert [r.spec.argv[-1] for r in kit.executor.runs] == ["build", "publish"]
    assert len(outcome.records) == 2


async def test_commit_required_fails_a_step_that_made_no_commit() -> None:
    env = mock_map_env()
    result = await run(env, [shell("noop", commit_required=True)])
    assert "commit_required" in result.failure().reason


async def test_commit_required_passes_when_the_step_committed() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    worktree = env.job.job_worktree

    def commit(spec: Any) -> None:
        kit.worktrees.set_file(worktree, "new.txt", b"x")
        head = kit.worktrees.head_of(worktree.branch)
        files = kit.worktrees.files(worktree)
        kit.repository.branches[worktree.branch] = kit.repository.commit(files, [head], "agent")

    kit.executor.on("commit it", effect=commit)
    result = await run(env, [shell("commit it", commit_required=True)])
    assert isinstance(result, Success), result


async def test_step_timeout_fails_with_timeout(autojump_clock: trio.testing.MockClock) -> None:
    env = mock_map_env()
    mock_kit(env).executor.on("slow", duration=100)
    failure = (await run(env, [shell("slow", timeout=5)])).failure()
    assert failure.timed_out and failure.reason == "timed out after 5 s"


async def test_step_timeouts_come_from_timeout_of(autojump_clock: trio.testing.MockClock) -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    steps = [shell("a", timeout=1.0), Step(ClaudeCommand("b"))]
    await execute_commands(steps, env.job.job_worktree, {}).run(env)
    await execute_commands(
        steps, env.job.job_worktree, {}, timeout_of=lambda index, step: 3.0 + index
    ).run(env)
    assert [r.spec.timeout for r in kit.executor.runs] == [1.0, None, 3.0, 4.0]


async def test_write_file_writes_inside_the_worktree() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    step = Step(WriteFileCommand("out/${item.name}.json", '{"n": ${item.n}}', "json", True))
    assert isinstance(await run(env, [step], {"item": {"name": "x", "n": 3}}), Success)
    written = kit.worktrees.files(env.job.job_worktree)["out/x.json"]
    assert json.loads(written) == {"n": 3}


@pytest.mark.parametrize("path", ["../escape.txt", "/etc/passwd", "a/../../b"])
async def test_write_file_refuses_paths_leaving_the_worktree(path: str) -> None:
    env = mock_map_env()
    result = await run(env, [Step(WriteFileCommand(path, "x"))])
    assert "leaves the worktree" in result.failure().reason or "absolute" in result.failure().reason


async def test_item_values_cannot_escape_through_write_file_paths() -> None:
    env = mock_map_env()
    result = await run(
        env, [Step(WriteFileCommand("${item.name}", "x"))], {"item": {"name": "../../x"}}
    )
    assert isinstance(result, Failure)


async def test_secrets_are_masked_in_outputs_records_and_errors() -> None:
    env = mock_map_env(workflow_env={"TOKEN": "s3cret"}, secrets=["s3cret"])
    kit = mock_kit(env)
    kit.executor.on("show", stdout="token=s3cret\n")
    kit.executor.on("fail", stdout="s3cret leaked", exit_code=1)
    ok = (
        await run(env, [shell("show $TOKEN ${TOKEN}", capture="out")], {"TOKEN": "s3cret"})
    ).unwrap()
    assert ok.variables["out"] == "token=***"
    assert "s3cret" not in ok.records[0].display and "s3cret" not in ok.records[0].output
    failure = (await run(env, [shell("fail ${TOKEN}")], {"TOKEN": "s3cret"})).failure()
    assert "s3cret" not in str(failure) and "s3cret" not in failure.output


async def test_working_dir_is_relative_to_the_worktree() -> None:
    env = mock_map_env(files={"sub/f": b""})
    kit = mock_kit(env)
    await run(env, [shell("ls", working_dir="sub")])
    assert kit.executor.runs[0].spec.cwd == env.job.job_worktree.path + "/sub"
    failure = (await run(env, [shell("ls", working_dir="../..")])).failure()
    assert "working_dir" in failure.reason


async def test_steps_emit_step_finished_events() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    await run(env, [shell("a")])
    events = kit.events.where(event="step_finished")
    assert [e["command"] for e in events] == ["sh -c a"] or [e["index"] for e in events] == [0]


def test_outcome_types() -> None:
    assert CommandsOutcome({}, ()).records == ()


async def test_failing_handler_retries_unless_fatal() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    kit.executor.on("broken", exit_code=2)
    kit.executor.on("fix", exit_code=3)
    lenient = shell("broken", on_failure=OnFailure(handler=(shell("fix"),), max_attempts=2))
    assert isinstance(await run(env, [lenient]), Failure)
    assert [r.spec.argv[-1] for r in kit.executor.runs] == ["broken", "fix", "broken", "fix"]
    kit.executor.runs.clear()
    fatal = shell(
        "broken",
        on_failure=OnFailure(handler=(shell("fix"),), max_attempts=2, handler_failure_fatal=True),
    )
    assert isinstance(await run(env, [fatal]), Failure)
    assert [r.spec.argv[-1] for r in kit.executor.runs] == ["broken", "fix"]


async def test_write_file_mode_is_passed_to_the_worktree_manager() -> None:
    env = mock_map_env()
    kit = mock_kit(env)
    step = Step(WriteFileCommand("run.sh", "#!/bin/sh\n", mode=0o755))
    assert isinstance(await run(env, [step]), Success)
    writes = [call for call in kit.recorder.of("worktrees") if call.method == "write_file"]
    assert writes[0].args[-1] == 0o755

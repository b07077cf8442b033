"""TrioProcessExecutor against real processes: exit codes, output, env, timeouts, process groups.

These are integration tests on real time with small timeouts; each takes well
under a second. Background ``sleep``s get a unique argument so that a test can
find them in ``/proc`` (and the fixture kill any a failing test left behind).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from envs.output_buffer import omission_marker
from envs.processes import TrioProcessExecutor, _raise_unwrapped
from envs.protocols import CommandResult, CommandSpec

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

GRACE = 0.2
TIMEOUT = 0.2
BASE_ENV = {"PATH": os.environ.get("PATH", os.defpath)}
_TAG = f"1000.{os.getpid()}"
_counter = itertools.count()


def unique_sleep_arg() -> str:
    """A `sleep` duration (about 1000 s) no other process on the machine uses."""
    return f"{_TAG}{next(_counter):04d}"


def living_pids_with_arg(arg: str) -> list[int]:
    """Pids of running (non-zombie) processes with ``arg`` as one of their arguments."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue
        if arg.encode() in argv and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def living_members(pgid: int) -> list[int]:
    """Pids of running (non-zombie) processes in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


@pytest.fixture(autouse=True)
def kill_stray_sleeps() -> Iterator[None]:
    """Kill any tagged sleep a failing test left running."""
    yield
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if entry.name.isdigit() and any(arg.startswith(_TAG.encode()) for arg in argv):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


def spec(
    *argv: str,
    cwd: str | Path = "/",
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> CommandSpec:
    return CommandSpec(
        argv=argv,
        cwd=str(cwd),
        env=BASE_ENV if env is None else env,
        timeout=timeout,
        display=" ".join(argv),
    )


def sh(script: str, **kwargs: object) -> CommandSpec:
    return spec("sh", "-c", script, **kwargs)  # type: ignore[arg-type]


async def run(command: CommandSpec, **options: float) -> CommandResult:
    executor = TrioProcessExecutor(kill_grace=GRACE, **options)  # type: ignore[arg-type]
    with trio.fail_after(5):  # a hang is a failure, not a stuck test run
        return await executor.run(command)


# --- exit codes and output -----------------------------------------------------------


async def test_success_and_exit_codes() -> None:
    ok = await run(spec("true"))
    assert (ok.exit_code, ok.succeeded, ok.timed_out, ok.truncated) == (0, True, False, False)
    failed = await run(sh("exit 3"))
    assert (failed.exit_code, failed.succeeded) == (3, False)


async def test_exit_by_signal_is_the_negative_signal_number() -> None:
    result = await run(sh("kill -TERM $$"))
    assert result.exit_code == -signal.SIGTERM


async def test_stdout_and_stderr_are_captured_separately() -> None:
    result = await run(sh("echo out; echo err >&2; printf 'é\\n'"))
    assert result.stdout == "out\né\n"
    assert result.stderr == "err\n"


async def test_stdin_is_dev_null() -> None:
    result = await run(sh("cat; readlink /proc/self/fd/0"))
    assert result.stdout == "/dev/null\n"


async def test_environment_is_exactly_the_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORKMERGE_TEST_MUST_NOT_LEAK", "1")
    env = {**BASE_ENV, "ONLY_THIS": "a value with spaces"}
    result = await run(spec("env", env=env))
    assert sorted(result.stdout.splitlines()) == sorted(f"{k}={v}" for k, v in env.items())


async def test_working_directory_is_the_specs(tmp_path: Path) -> None:
    result = await run(spec("pwd", "-P", cwd=tmp_path))
    assert result.stdout == f"{tmp_path.resolve()}\n"


async def test_duration_is_measured() -> None:
    result = await run(spec("sleep", "0.1"))
    assert 0.1 <= result.duration < 1


async def test_huge_output_is_bounded_keeping_head_and_tail() -> None:
    script = "echo START; head -c 5000000 /dev/zero | tr '\\0' x; echo END; echo E >&2"
    result = await run(sh(script), max_output_bytes=1000)
    marker = omission_marker(6 + 5_000_000 + 4 - 1000)
    assert result.truncated
    assert result.stdout == "START\n" + "x" * 494 + marker + "x" * 496 + "END\n"
    assert result.stderr == "E\n"
    assert result.exit_code == 0


async def test_output_written_right_before_exit_is_all_collected() -> None:
    for _ in range(3):
        result = await run(sh("head -c 300000 /dev/zero | tr '\\0' y; printf z"))
        assert result.stdout == "y" * 300_000 + "z"
        assert not result.truncated


# --- commands that cannot start --------------------------------------------------------


async def test_missing_program_gives_127() -> None:
    result = await run(spec("forkmerge-no-such-program", "arg"))
    assert result.exit_code == 127
    assert not result.succeeded
    assert "program not found: 'forkmerge-no-such-program'" in result.stderr
    assert result.stdout == ""


async def test_program_not_executable_gives_126(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)
    result = await run(spec(str(script)))
    assert result.exit_code == 126
    assert f"cannot execute {str(script)!r}" in result.stderr


async def test_script_with_a_missing_interpreter_gives_127(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/forkmerge/no/such/interpreter\n")
    script.chmod(stat.S_IRWXU)
    result = await run(spec(str(script)))
    assert result.exit_code == 127
    assert "the interpreter on its #! line is missing" in result.stderr


async def test_missing_working_directory_gives_127(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    result = await run(spec("true", cwd=missing))
    assert result.exit_code == 127
    assert f"cannot use working directory {str(missing)!r}" in result.stderr


async def test_empty_command_and_nul_byte_give_127() -> None:
    empty = await run(spec())
    assert empty.exit_code == 127
    assert "empty command" in empty.stderr
    nul = await run(spec("echo", "a\0b"))
    assert nul.exit_code == 127
    assert "null" in nul.stderr


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="`max_output_bytes` must be at least 1"):
        TrioProcessExecutor(max_output_bytes=0)
    with pytest.raises(ValueError, match="`kill_grace` must be a non-negative number"):
        TrioProcessExecutor(kill_grace=-1)
    with pytest.raises(ValueError, match="`kill_grace`"):
        TrioProcessExecutor(kill_grace=float("nan"))


# --- timeouts and process groups -------------------------------------------------------


async def test_timeout_kills_the_whole_group_and_keeps_the_output() -> None:
    background, foreground = unique_sleep_arg(), unique_sleep_arg()
    script = f"echo $$; echo started >&2; sleep {background} & sleep {foreground}"
    result = await run(sh(script, timeout=TIMEOUT))
    assert (result.exit_code, result.timed_out, result.succeeded) == (None, True, False)
    assert result.stderr == "started\n"
    assert TIMEOUT <= result.duration < TIMEOUT + GRACE + 0.5
    assert living_members(int(result.stdout)) == []
    assert living_pids_with_arg(background) == living_pids_with_arg(foreground) == []


async def test_timeout_escalates_to_sigkill_when_sigterm_is_ignored() -> None:
    background, foreground = unique_sleep_arg(), unique_sleep_arg()
    script = f"trap '' TERM; echo $$; sleep {background} & sleep {foreground}"
    result = await run(sh(script, timeout=TIMEOUT))
    assert result.timed_out
    assert result.duration >= TIMEOUT + GRACE
    assert living_members(int(result.stdout)) == []
    assert living_pids_with_arg(background) == living_pids_with_arg(foreground) == []


async def test_background_process_of_a_successful_command_is_killed() -> None:
    # The sleep holds the stdout pipe open: run must not wait for its end of file. It
    # dies at SIGTERM, so run does not wait for the grace either, even where init leaves
    # the dead sleep a zombie in the group.
    background = unique_sleep_arg()
    executor = TrioProcessExecutor(kill_grace=2)
    with trio.fail_after(5):
        result = await executor.run(sh(f"echo $$; sleep {background} & echo done"))
    pid, done = result.stdout.splitlines()
    assert (result.exit_code, done) == (0, "done")
    assert result.duration < 1
    assert living_members(int(pid)) == []
    assert living_pids_with_arg(background) == []


async def test_background_process_ignoring_sigterm_is_killed_after_the_grace() -> None:
    background = unique_sleep_arg()
    result = await run(sh(f"trap '' TERM; sleep {background} & echo done"))
    assert (result.exit_code, result.stdout) == (0, "done\n")
    assert result.duration >= GRACE
    assert living_pids_with_arg(background) == []


async def test_process_that_left_the_group_does_not_block_the_command() -> None:
    # setsid moves the sleep to a session of its own; it still holds the stdout pipe.
    escaped = unique_sleep_arg()
    result = await run(sh(f"setsid sleep {escaped} & sleep 0.05; echo done"))
    assert (result.exit_code, result.stdout) == (0, "done\n")
    assert result.duration < 1


async def test_cancellation_kills_the_group_and_propagates(tmp_path: Path) -> None:
    background, foreground = unique_sleep_arg(), unique_sleep_arg()
    pid_file = tmp_path / "pid"
    script = f"echo $$ > {pid_file}; sleep {background} & sleep {foreground}"
    executor = TrioProcessExecutor(kill_grace=GRACE)
    saw_cancelled = returned = False
    with trio.move_on_after(0.3) as scope:
        try:
            await executor.run(sh(script))
        except trio.Cancelled:  # a bare Cancelled, not wrapped in an exception group
            saw_cancelled = True
            raise
        returned = True
    assert scope.cancelled_caught
    assert saw_cancelled
    assert not returned
    # The kill and the reap completed before Cancelled left run().
    assert living_members(int(pid_file.read_text())) == []
    assert living_pids_with_arg(background) == living_pids_with_arg(foreground) == []


async def test_commands_run_concurrently() -> None:
    executor = TrioProcessExecutor(kill_grace=GRACE)
    results: dict[int, CommandResult] = {}

    async def one(index: int) -> None:
        results[index] = await executor.run(sh(f"sleep 0.3; echo {index}; echo e{index} >&2"))

    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        for index in range(6):
            nursery.start_soon(one, index)
    assert trio.current_time() - started < 1.2  # one after the other: 1.8 s
    assert {i: (r.stdout, r.stderr) for i, r in results.items()} == {
        i: (f"{i}\n", f"e{i}\n") for i in range(6)
    }


# --- how a nursery's exceptions leave run() ---------------------------------------------


class Boom(Exception):
    pass


def test_a_single_defect_leaves_bare_and_several_stay_a_group() -> None:
    one = Boom("one")
    with pytest.raises(Boom) as raised:
        _raise_unwrapped(BaseExceptionGroup("g", [ExceptionGroup("inner", [one])]))
    assert raised.value is one
    with pytest.raises(ExceptionGroup) as group:
        _raise_unwrapped(BaseExceptionGroup("g", [Boom("a"), Boom("b")]))
    assert [str(leaf) for leaf in group.value.exceptions] == ["a", "b"]


async def test_running_counts_the_commands_under_way(tmp_path: Path) -> None:
    executor = TrioProcessExecutor()
    gate = tmp_path / "gate"
    seen: list[int] = []

    async def watch() -> None:
        while executor.running < 2:
            await trio.sleep(0.01)
        seen.append(executor.running)
        gate.touch()

    async with trio.open_nursery() as nursery:
        for _ in range(2):
            nursery.start_soon(executor.run, sh(f"while [ ! -e {gate} ]; do sleep 0.01; done"))
        nursery.start_soon(watch)
    assert (seen, executor.running) == ([2], 0)
    await executor.run(sh("exit 3"))  # an ended command is not counted, whatever its end
    assert executor.running == 0
    executor.close()

"""The process reaper against real processes: SIGKILL, Ctrl-C, normal exit, a reaper gone.

Scenarios that kill forkmerge run a tiny Python program (``PARENT``) that
uses a real ``TrioProcessExecutor``. Waits poll ``/proc`` with a generous
bound (``WAIT``) and never assert how long something took. Whether a group
was signalled is read from ``/proc/<pid>/status``: a process that blocks
SIGTERM, SIGCONT, SIGINT and SIGHUP keeps any it was sent pending there.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio

from envs import process_reaper
from envs.process_reaper import ProcessReaper, follow_registrations, main
from envs.processes import TrioProcessExecutor
from envs.protocols import CommandSpec

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

ROOT = Path(__file__).resolve().parents[2]
GRACE = 0.2
WAIT = 10.0  # the bound of every wait; reaching it is a failure
BASE_ENV = {"PATH": os.environ.get("PATH", os.defpath)}
_TAG = f"1000.{os.getpid()}"
_counter = itertools.count()

# Runs one step per "run <pid file> <sleep arg>" line on stdin, printing its group id once
# it runs; Ctrl-C stops the step (printing "interrupted"), end of input exits.
PARENT = """
import os, sys, trio
from envs.processes import TrioProcessExecutor
from envs.protocols import CommandSpec

executor = TrioProcessExecutor(kill_grace=0.2)

async def run_step(pid_file, arg):
    script = f"echo $$ > {pid_file}; sleep {arg} & sleep {arg}"
    spec = CommandSpec(argv=("sh", "-c", script), cwd="/", env=dict(os.environ), timeout=None,
                       display="step")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(executor.run, spec)
        while not (os.path.exists(pid_file) and open(pid_file).read().strip()):
            await trio.sleep(0.005)
        pgid = int(open(pid_file).read())
        while pgid not in executor._reaper.registered:  # registered a moment after the fork
            await trio.sleep(0.005)
        print(pgid, flush=True)

for line in sys.stdin:
    _, pid_file, arg = line.split()
    try:
        trio.run(run_step, pid_file, arg)
    except* KeyboardInterrupt:  # raised inside the nursery
        print("interrupted", flush=True)
"""

# Blocks the signals a reaper sends first (so they stay pending), then waits to be killed.
SUBJECT = """
import signal, sys, time
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGCONT, signal.SIGINT,
                                          signal.SIGHUP})
print("ready", flush=True)
time.sleep(1000)
"""


def unique_sleep_arg() -> str:
    """A `sleep` duration (about 1000 s) no other process on the machine uses."""
    return f"{_TAG}{next(_counter):04d}"


def proc_stat(pid: int) -> list[str] | None:
    """The fields after ``(comm)`` of ``/proc/<pid>/stat``; None if the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def is_living(pid: int) -> bool:
    fields = proc_stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def living_members(pgid: int) -> list[int]:
    """Pids of running (non-zombie) processes in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        fields = proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def pending_signals(pid: int) -> set[int]:
    """The signals sent to the process (``kill``/``killpg``) and not yet delivered."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("ShdPnd:"):
            mask = int(line.split()[1], 16)
            return {number for number in range(1, 65) if mask >> (number - 1) & 1}
    raise AssertionError("no ShdPnd in /proc status")


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"still not true after {WAIT} s: {what}"
        time.sleep(0.01)


def read_line(process: subprocess.Popen[str]) -> str:
    """The next line the process prints, waiting at most ``WAIT`` seconds."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], WAIT)
    assert ready, f"no output from the process after {WAIT} s"
    return process.stdout.readline().strip()


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


@pytest.fixture
def start_process() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start processes in sessions of their own; SIGKILL whatever is left of them at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(*argv: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def start_parent(start: Callable[..., subprocess.Popen[str]]) -> subprocess.Popen[str]:
    return start(sys.executable, "-c", PARENT)


def run_step(parent: subprocess.Popen[str], tmp_path: Path) -> tuple[int, int]:
    """Have ``PARENT`` start a step; its group id and the pid of the parent's reaper."""
    assert parent.stdin is not None
    pid_file = tmp_path / f"step-{next(_counter)}.pid"
    parent.stdin.write(f"run {pid_file} {unique_sleep_arg()}\n")
    parent.stdin.flush()
    pgid = int(read_line(parent))
    reapers = [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and (proc_stat(int(entry.name)) or ["", ""])[1] == str(parent.pid)
        and b"process_reaper" in _cmdline(entry)
    ]
    assert len(reapers) == 1, f"the parent has reapers {reapers}"
    return pgid, reapers[0]


def _cmdline(entry: Path) -> bytes:
    try:
        return (entry / "cmdline").read_bytes()
    except OSError:
        return b""


def start_subject(start: Callable[..., subprocess.Popen[str]]) -> subprocess.Popen[str]:
    subject = start(sys.executable, "-c", SUBJECT)
    assert read_line(subject) == "ready"
    return subject


def sh(script: str) -> CommandSpec:
    return CommandSpec(
        argv=("sh", "-c", script), cwd="/", env=BASE_ENV, timeout=None, display=script
    )


# --- forkmerge killed or interrupted ------------------------------------------------------


def test_sigkill_of_forkmerge_stops_its_step_groups(
    start_process: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    parent = start_parent(start_process)
    pgid, reaper = run_step(parent, tmp_path)
    assert len(living_members(pgid)) == 3  # sh and its two sleeps
    os.killpg(parent.pid, signal.SIGKILL)  # the parent's group, as a shell's `kill -9 %1`
    parent.wait()
    wait_until(lambda: living_members(pgid) == [], "the step's group is empty")
    wait_until(lambda: not is_living(reaper), "the reaper exited")


def test_ctrl_c_leaves_the_reaper_alone_and_it_still_acts_when_forkmerge_dies(
    start_process: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    parent = start_parent(start_process)
    first, reaper = run_step(parent, tmp_path)
    os.killpg(parent.pid, signal.SIGINT)  # Ctrl-C: the terminal's foreground group
    assert read_line(parent) == "interrupted"
    assert living_members(first) == []  # forkmerge stopped its step itself
    # An operator's or a CI runner's signals aimed at the reaper while forkmerge lives:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        os.kill(reaper, signum)
    second, reaper_then = run_step(parent, tmp_path)
    assert reaper_then == reaper  # the same reaper: it survived, forkmerge did not replace it
    assert is_living(reaper)
    os.kill(parent.pid, signal.SIGKILL)  # now forkmerge dies without cleaning up
    parent.wait()
    wait_until(lambda: living_members(second) == [], "the second step's group is empty")
    wait_until(lambda: not is_living(reaper), "the reaper exited")


def test_forkmerge_ending_normally_ends_the_reaper(
    start_process: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    parent = start_parent(start_process)
    pgid, reaper = run_step(parent, tmp_path)
    os.killpg(parent.pid, signal.SIGINT)
    assert read_line(parent) == "interrupted"
    assert is_living(reaper)  # the parent lives, so does the reaper
    assert parent.stdin is not None
    parent.stdin.close()  # the program ends normally
    assert parent.wait(WAIT) == 0
    wait_until(lambda: not is_living(reaper), "the reaper exited")
    assert living_members(pgid) == []


# --- the reaper program: who gets signalled -----------------------------------------------


def test_at_end_of_input_only_groups_still_registered_are_stopped(
    start_process: Callable[..., subprocess.Popen[str]],
) -> None:
    left, finished = start_subject(start_process), start_subject(start_process)
    reaper = start_process(sys.executable, "-m", "envs.process_reaper", "--grace", str(GRACE))
    assert reaper.stdin is not None
    reaper.stdin.write(f"+{left.pid}\n+{finished.pid}\n-{finished.pid}\n+bogus\n")
    reaper.stdin.close()
    assert reaper.wait(WAIT) == 0
    # SIGTERM and SIGCONT stayed pending (blocked), so the grace ended in SIGKILL.
    assert left.wait(WAIT) == -signal.SIGKILL
    assert is_living(finished.pid)
    assert pending_signals(finished.pid) == set()  # never signalled at all


def test_with_nothing_registered_the_reaper_exits_at_once_without_signalling(
    start_process: Callable[..., subprocess.Popen[str]],
) -> None:
    subject = start_subject(start_process)
    reaper = ProcessReaper(grace=GRACE)
    reaper.register(subject.pid)
    reaper.unregister(subject.pid)
    pid = reaper.pid
    assert pid is not None
    reaper.close()  # waits for the reaper's exit
    assert reaper.pid is None
    assert proc_stat(pid) is None  # exited and reaped
    assert pending_signals(subject.pid) == set()


def test_registered_groups_are_stopped_when_the_reaper_is_closed(
    start_process: Callable[..., subprocess.Popen[str]],
) -> None:
    subject = start_subject(start_process)
    reaper = ProcessReaper(grace=GRACE)
    reaper.register(subject.pid)
    assert reaper.registered == {subject.pid}
    reaper.close()
    assert subject.wait(WAIT) == -signal.SIGKILL
    assert reaper.registered == frozenset()


def test_signals_aimed_at_the_reaper_do_not_stop_it(
    start_process: Callable[..., subprocess.Popen[str]],
) -> None:
    subject = start_subject(start_process)
    reaper = ProcessReaper(grace=GRACE)
    reaper.register(subject.pid)
    pid = reaper.pid
    assert pid is not None
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        os.kill(pid, signum)
    reaper.register(subject.pid)  # a dead reaper would be replaced here
    assert reaper.pid == pid
    reaper.close()
    assert subject.wait(WAIT) == -signal.SIGKILL


def test_emptied_groups_are_forgotten_while_forkmerge_lives(
    monkeypatch: pytest.MonkeyPatch, start_process: Callable[..., subprocess.Popen[str]]
) -> None:
    ended, running = start_subject(start_process), start_subject(start_process)
    ended.kill()
    ended.wait()
    pruned = threading.Event()
    real_living_groups = process_reaper.living_groups

    def living_groups(pgids: set[int]) -> set[int]:
        living = real_living_groups(pgids)
        if ended.pid not in living:
            pruned.set()
        return living

    monkeypatch.setattr(process_reaper, "_PRUNE_INTERVAL", 0.01)
    monkeypatch.setattr(process_reaper, "living_groups", living_groups)
    read_end, write_end = os.pipe()
    result: list[set[int]] = []
    follower = threading.Thread(target=lambda: result.append(follow_registrations(read_end)))
    follower.start()
    os.write(write_end, f"+{ended.pid}\n+{running.pid}\n".encode())
    assert pruned.wait(WAIT)
    os.close(write_end)
    follower.join(WAIT)
    os.close(read_end)
    assert result == [{running.pid}]  # a living group is kept: it may still need stopping


def test_the_program_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--grace", "-1"]) == 2
    assert main(["--speed", "1"]) == 2
    assert main(["--grace"]) == 2
    assert capsys.readouterr().err.count("usage: process_reaper [--grace SECONDS]") == 3


# --- the executor with its reaper ---------------------------------------------------------


async def test_executor_registers_each_group_only_while_it_may_hold_processes(
    tmp_path: Path,
) -> None:
    reaper = ProcessReaper(grace=GRACE)
    executor = TrioProcessExecutor(kill_grace=GRACE, reaper=reaper)
    pid_file, go = tmp_path / "pid", tmp_path / "go"
    os.mkfifo(go)
    script = f"echo $$ > {pid_file}; sleep {unique_sleep_arg()} & read line < {go}; echo done"
    seen: list[frozenset[int]] = []

    async def watch() -> None:
        await wait_for_pid_file(pid_file)
        # The step may write its pid before run() is back from open_process's thread.
        while not reaper.registered:
            await trio.sleep(0.005)
        seen.append(reaper.registered)
        await trio.to_thread.run_sync(go.write_text, "go\n")  # lets the step finish

    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            result = await executor.run(sh(script))
    pgid = int(pid_file.read_text())
    assert (result.exit_code, result.stdout) == (0, "done\n")
    assert seen == [{pgid}]
    assert living_members(pgid) == []
    assert reaper.registered == frozenset()  # the group was emptied: unregistered
    reaper_pid = reaper.pid
    assert reaper_pid is not None
    executor.close()
    assert proc_stat(reaper_pid) is None  # the reaper exited (and was reaped)


async def wait_for_pid_file(path: Path) -> int:
    while not (path.exists() and path.read_text().strip()):
        await trio.sleep(0.005)
    return int(path.read_text())


async def test_commands_run_when_the_reaper_cannot_start(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_reaper(grace: float) -> subprocess.Popen[bytes]:
        raise OSError("no fork for the reaper")

    monkeypatch.setattr(process_reaper, "_spawn", no_reaper)
    reaper = ProcessReaper(grace=GRACE)
    executor = TrioProcessExecutor(kill_grace=GRACE, reaper=reaper)
    background = unique_sleep_arg()
    with trio.fail_after(WAIT):
        first = await executor.run(sh(f"echo $$; sleep {background} & echo done"))
        second = await executor.run(sh("echo again"))
    pgid, done = first.stdout.split()
    assert (first.exit_code, done, second.stdout) == (0, "done", "again\n")
    assert living_members(int(pgid)) == []  # the executor still stops leftovers itself
    assert reaper.pid is None


async def test_a_dead_reaper_is_replaced_and_told_every_running_group(tmp_path: Path) -> None:
    reaper = ProcessReaper(grace=GRACE)
    executor = TrioProcessExecutor(kill_grace=GRACE, reaper=reaper)
    pid_file = tmp_path / "pid"
    results = []

    async def long_step() -> None:
        script = f"echo $$ > {pid_file}; exec sleep {unique_sleep_arg()}"
        results.append(await executor.run(sh(script)))

    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(long_step)
            await wait_for_pid_file(pid_file)
            first = reaper.pid
            assert first is not None
            os.kill(first, signal.SIGKILL)
            while is_living(first):
                await trio.sleep(0.005)
            assert (await executor.run(sh("true"))).exit_code == 0
            second = reaper.pid
            assert second not in (None, first)
            assert proc_stat(first) is None  # the dead one was reaped
            # Closing the new reaper stops the long step: it knew about its group.
            await trio.to_thread.run_sync(executor.close)
    assert results[0].exit_code == -signal.SIGTERM


def test_a_stuck_reaper_never_blocks_a_write_and_is_replaced(
    start_process: Callable[..., subprocess.Popen[str]],
) -> None:
    subject = start_subject(start_process)
    reaper = ProcessReaper(grace=GRACE)
    reaper.register(subject.pid)
    first = reaper.pid
    assert first is not None
    os.kill(first, signal.SIGSTOP)  # it reads nothing more: its pipe fills up
    fake = 2**22 + 1  # above any pid_max: no such group
    done = threading.Event()

    def write_until_replaced() -> None:
        for _ in range(100_000):  # 64 KiB, a pipe's capacity, is about 3,600 rounds
            reaper.register(fake)
            reaper.unregister(fake)
            if reaper.pid != first:
                done.set()
                return

    writer = threading.Thread(target=write_until_replaced, daemon=True)
    writer.start()
    try:
        assert done.wait(WAIT), "a write to the stuck reaper blocked, or it was not replaced"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(first, signal.SIGKILL)  # unblocks the writer if the test failed
    writer.join(WAIT)
    assert reaper.pid is not None
    assert proc_stat(first) is None  # killed and reaped, not left to act on a stale set
    assert reaper.registered == {subject.pid}
    reaper.close()  # the new reaper knew the subject's group
    assert subject.wait(WAIT) == -signal.SIGKILL


def test_closing_and_starting_again_has_no_limit() -> None:
    reaper = ProcessReaper(grace=GRACE)
    pids = set()
    for _ in range(8):
        reaper.start()
        pids.add(reaper.pid)
        reaper.close()
    assert None not in pids
    assert len(pids) == 8


def test_reapers_that_keep_dying_are_replaced_five_times() -> None:
    reaper = ProcessReaper(grace=GRACE)
    fake = 2**22 + 1  # above any pid_max: no such group
    reaper.start()
    for _ in range(5):
        pid = reaper.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not is_living(pid), "the reaper died")  # noqa: B023
        reaper.register(fake)  # finds it dead: replaces it, if allowed
        assert proc_stat(pid) is None  # reaped
    assert reaper.pid is None  # the fifth loss was the last
    reaper.unregister(fake)  # no reaper, no error
    reaper.close()


def test_the_reapers_pipe_is_not_inherited() -> None:
    reaper = ProcessReaper(grace=GRACE)
    reaper.start()
    pid = reaper.pid
    assert pid is not None
    pipe = os.readlink(f"/proc/{pid}/fd/0")
    # Nothing of ours: only its stdin, stdout and stderr once its start-up has closed the
    # files it read (an inherited descriptor would stay open).
    fds = f"/proc/{pid}/fd"
    wait_until(lambda: sorted(os.listdir(fds)) == ["0", "1", "2"], "the reaper has fds 0-2 only")
    # A child started without closing descriptors (unlike trio's) still lacks the pipe.
    listing = subprocess.run(
        ["sh", "-c", "for fd in /proc/$$/fd/*; do readlink $fd || true; done"],
        close_fds=False,
        capture_output=True,
        text=True,
        check=True,
    )
    assert pipe.startswith("pipe:")
    assert pipe not in listing.stdout.split()
    reaper.close()

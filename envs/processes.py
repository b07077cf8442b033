"""The real :class:`~envs.protocols.CommandExecutor`: trio processes, one process group each.

Every command runs in a new session (so in a process group of its own, whose
id is the command's pid), and forkmerge owns that whole group. Decision:
forkmerge stops any leftover process in the command's group when the command
ends, whether it exited (even successfully), timed out or was cancelled, so
background processes never outlive their step: a step's ``sleep 1000 &`` is
stopped with it, and a background child still holding the output pipes cannot
keep the step from finishing. A command that leaves nothing behind gets no
signal and no delay.

Stopping a group: SIGTERM (and SIGCONT, so a stopped process sees it) to the
whole group, up to ``kill_grace`` seconds for it to empty, then SIGKILL.
A process that left the group on purpose (``setsid``, a daemon) is not
forkmerge's to stop; its output after the command ended is not collected.

If forkmerge itself dies without stopping its groups (SIGKILL, the OOM
killer), a :class:`~envs.process_reaper.ProcessReaper` does it: each group is
registered with it right after it is created and unregistered once it has
been seen empty. POSIX only.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import signal
import subprocess
from pathlib import Path
from typing import Final, NoReturn, final

import trio

from envs.output_buffer import OutputBuffer
from envs.process_reaper import ProcessReaper, living_groups
from envs.protocols import CommandResult, CommandSpec

__all__ = ["TrioProcessExecutor"]

_CHUNK: Final = 65536
# Reading what is left in a pipe once the group is gone never waits; a writer
# that escaped the group could keep writing, so stop after this many chunks.
_MAX_FINAL_CHUNKS: Final = 64
_FIRST_POLL: Final = 0.002
_MAX_POLL: Final = 0.05
# How long a group may take to empty after SIGKILL before the executor stops waiting.
_KILLED_WAIT: Final = 1.0
# Exit codes of a command that could not be started, as POSIX shells use them.
_NOT_FOUND: Final = 127
_NOT_EXECUTABLE: Final = 126
_NOT_FOUND_ERRNOS: Final = frozenset({errno.ENOENT, errno.ENOTDIR})


@final
class TrioProcessExecutor:
    """Runs each command as its own process group, with bounded output and a timeout.

    ``run(spec)`` starts ``spec.argv`` (never through a shell: a caller that
    wants one passes ``("sh", "-c", text)``) in ``spec.cwd`` with exactly
    ``spec.env`` as its environment, stdin from ``/dev/null``, and collects
    stdout and stderr separately, each bounded to ``max_output_bytes`` (its
    head and its tail, see :class:`~envs.output_buffer.OutputBuffer`).

    Outcomes:
      * the command exits: its exit code, or the negative signal number when
        a signal killed it (``-9`` for SIGKILL), as Python reports it; any
        process left in its group is then stopped (see the module docstring);
      * ``spec.timeout`` seconds pass (counted from the call): the group is
        stopped and the result has ``exit_code=None``, ``timed_out=True`` and
        the output collected so far;
      * the command cannot be started: exit code 127 (program or working
        directory not found) or 126 (found but not executable: permission,
        format, argument list too long), the reason in ``stderr``; no
        exception;
      * cancellation: the group is stopped, shielded so that the signals are
        sent and the command reaped, then ``trio.Cancelled`` propagates.

    ``duration`` is measured on trio's clock.

    Every group is registered with ``reaper`` while it may hold processes,
    so that they are stopped even if this process is killed outright. The
    reaper process starts with the first command; if it cannot start or
    dies, commands run on unprotected and nothing is reported (see
    :class:`~envs.process_reaper.ProcessReaper`).

    Args:
      max_output_bytes: the most bytes kept of each of stdout and stderr.
      kill_grace: seconds between SIGTERM and SIGKILL when stopping a group.
      reaper: the reaper to register groups with; by default one of the
        executor's own, with ``kill_grace`` as its grace (a step's own
        ``spec.kill_grace`` does not apply once this process is dead).

    Raises:
      ValueError: if ``max_output_bytes`` is less than 1 or ``kill_grace`` is
        negative or not a number.
    """

    __slots__ = ("_kill_grace", "_max_output_bytes", "_reaper", "_running")

    def __init__(
        self,
        *,
        max_output_bytes: int = 1_000_000,
        kill_grace: float = 2.0,
        reaper: ProcessReaper | None = None,
    ) -> None:
        if max_output_bytes < 1:
            raise ValueError(f"`max_output_bytes` must be at least 1, got {max_output_bytes}")
        if math.isnan(kill_grace) or kill_grace < 0:
            raise ValueError(f"`kill_grace` must be a non-negative number, got {kill_grace}")
        self._max_output_bytes = max_output_bytes
        self._kill_grace = kill_grace
        self._reaper = ProcessReaper(grace=kill_grace) if reaper is None else reaper
        self._running = 0

    @property
    def running(self) -> int:
        """How many commands are running now (started and not yet ended)."""
        return self._running

    def close(self) -> None:
        """Let the reaper process go (:meth:`ProcessReaper.close`); exiting does the same.

        Returns in milliseconds when no command runs. A later :meth:`run`
        starts a new reaper.
        """
        self._reaper.close()

    async def run(self, spec: CommandSpec) -> CommandResult:
        """Run ``spec`` to completion (see the class docstring for every outcome)."""
        started = trio.current_time()
        if not spec.argv:
            return _not_started(spec, started, _NOT_FOUND, "no program given (empty command)")
        # Started before the command, so that it holds none of the command's pipes and
        # registering the command's group is one small write.
        self._reaper.start()
        try:
            process = await trio.lowlevel.open_process(
                list(spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=spec.cwd,
                env=dict(spec.env),
                start_new_session=True,
            )
        except OSError as error:
            if error.filename is None:
                raise  # not about the command (no fork, no pipes): a broken machine
            code, reason = _start_failure(spec, error)
            return _not_started(spec, started, code, reason)
        except ValueError as error:  # a NUL byte in an argument or the environment
            return _not_started(spec, started, _NOT_FOUND, str(error))
        # Before any other checkpoint: from here on the group is known to the reaper. (A
        # SIGKILL between the fork, in open_process's thread, and this line escapes it.)
        self._reaper.register(process.pid)
        stdout = OutputBuffer(self._max_output_bytes)
        stderr = OutputBuffer(self._max_output_bytes)
        # Both are pipes (FdStreams) because open_process was asked for pipes.
        out_pipe, err_pipe = process.stdout, process.stderr
        assert isinstance(out_pipe, trio.lowlevel.FdStream)
        assert isinstance(err_pipe, trio.lowlevel.FdStream)
        self._running += 1
        try:
            timed_out = await self._supervise(
                process, spec, started, ((out_pipe, stdout), (err_pipe, stderr))
            )
        finally:
            self._running -= 1
            out_pipe.close()
            err_pipe.close()
        return CommandResult(
            exit_code=None if timed_out else process.returncode,
            stdout=stdout.text(),
            stderr=stderr.text(),
            duration=trio.current_time() - started,
            timed_out=timed_out,
            truncated=stdout.truncated or stderr.truncated,
        )

    async def _supervise(
        self,
        process: trio.Process,
        spec: CommandSpec,
        started: float,
        outputs: tuple[tuple[trio.lowlevel.FdStream, OutputBuffer], ...],
    ) -> bool:
        """Read the pipes while waiting for the command, then stop its group; True on timeout."""
        limit = trio.move_on_at(math.inf if spec.timeout is None else started + spec.timeout)
        try:
            async with trio.open_nursery() as nursery:
                for pipe, buffer in outputs:
                    nursery.start_soon(_collect, pipe, buffer)
                try:
                    with limit:
                        await process.wait()
                    await self._stop_group(process, spec)
                except BaseException:
                    with trio.CancelScope(shield=True):
                        await self._stop_group(process, spec)
                    raise
                # The group is gone: what is still in the pipes is read below without
                # waiting, so an escaped writer holding a pipe open cannot block us.
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            _raise_unwrapped(group)
        for pipe, buffer in outputs:
            _read_what_is_left(pipe, buffer)
        return limit.cancelled_caught

    async def _stop_group(self, process: trio.Process, spec: CommandSpec) -> None:
        """Stop every process of the command's group (TERM, grace, KILL), reap it, unregister it.

        The group is unregistered from the reaper once it has been seen
        empty. After SIGKILL that takes a moment (each process dies when it
        next runs); a group still not empty ``_KILLED_WAIT`` seconds later (a
        process stuck in the kernel) stays registered: the reaper forgets it
        once it empties, or signals it again if this process dies first.
        """
        pgid = process.pid  # a new session's id is its leader's pid
        if process.returncode is not None and not await _group_is_alive(pgid):
            self._reaper.unregister(pgid)
            return
        _signal_group(pgid, signal.SIGTERM)
        _signal_group(pgid, signal.SIGCONT)
        grace = self._kill_grace if spec.kill_grace is None else spec.kill_grace
        with trio.move_on_after(grace) as waiting:
            await process.wait()
            await _wait_until_empty(pgid)
        if waiting.cancelled_caught:
            _signal_group(pgid, signal.SIGKILL)
            await process.wait()
            with trio.move_on_after(_KILLED_WAIT) as waiting:
                await _wait_until_empty(pgid)
            if waiting.cancelled_caught:
                return
        self._reaper.unregister(pgid)


def _start_failure(spec: CommandSpec, error: OSError) -> tuple[int, str]:
    """The exit code and reason for a command that could not be started."""
    code = _NOT_FOUND if error.errno in _NOT_FOUND_ERRNOS else _NOT_EXECUTABLE
    # subprocess names the working directory when chdir failed, else the program.
    if error.filename == spec.cwd:
        return code, f"cannot use working directory {spec.cwd!r}: {error.strerror}"
    program = spec.argv[0]
    if error.errno == errno.ENOENT:
        if "/" in program and Path(spec.cwd, program).exists():
            return code, f"cannot execute {program!r}: the interpreter on its #! line is missing"
        return code, f"program not found: {program!r}"
    return code, f"cannot execute {program!r}: {error.strerror}"


def _not_started(spec: CommandSpec, started: float, code: int, reason: str) -> CommandResult:
    return CommandResult(
        exit_code=code,
        stdout="",
        stderr=f"forkmerge: cannot run {spec.display}: {reason}\n",
        duration=trio.current_time() - started,
    )


async def _collect(pipe: trio.lowlevel.FdStream, buffer: OutputBuffer) -> None:
    """Feed ``pipe`` into ``buffer`` until end of file."""
    while chunk := await pipe.receive_some(_CHUNK):
        buffer.feed(chunk)


def _read_what_is_left(pipe: trio.lowlevel.FdStream, buffer: OutputBuffer) -> None:
    """Feed what is already in ``pipe`` into ``buffer``, without waiting for more."""
    fd = pipe.fileno()  # trio made it non-blocking
    for _ in range(_MAX_FINAL_CHUNKS):
        try:
            chunk = os.read(fd, _CHUNK)
        except OSError:  # BlockingIOError: empty, a writer outside the group holds it
            return
        if not chunk:
            return
        buffer.feed(chunk)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    """Send ``signum`` to the group; a group already gone or not ours to signal is skipped."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


async def _wait_until_empty(pgid: int) -> None:
    """Return once no living process is left in the group (polling, backing off)."""
    delay = _FIRST_POLL
    while await _group_is_alive(pgid):
        await trio.sleep(delay)
        delay = min(delay * 2, _MAX_POLL)


async def _group_is_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies, already dead, do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Scanning /proc (see living_groups) takes a while: not on trio's thread.
    return pgid in await trio.to_thread.run_sync(living_groups, (pgid,))


def _raise_unwrapped(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Re-raise a nursery's group as one exception: a bare ``Cancelled`` or a bare defect."""
    leaves = _leaves(group)
    defects = [leaf for leaf in leaves if not isinstance(leaf, trio.Cancelled)]
    if not defects:
        raise leaves[0] from None
    if len(defects) == 1:
        raise defects[0] from None
    raise BaseExceptionGroup("the process executor failed", defects) from None


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]

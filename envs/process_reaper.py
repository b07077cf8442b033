"""A watchdog process that stops the step process groups a dead forkmerge left running.

The executor stops each step's process group when the step ends (see
:mod:`envs.processes`); a forkmerge killed with SIGKILL, or by the OOM killer,
runs none of that, and its steps would keep running. The reaper is a small
child process, in a session of its own, that reads ``+<pgid>`` / ``-<pgid>``
lines on its stdin (a pipe whose only writer is forkmerge) and so knows the
groups forkmerge started and has not finished. When its stdin ends (forkmerge
closed the pipe or died in whatever way), it sends SIGTERM and SIGCONT to each
group still registered, gives them up to ``--grace`` seconds to empty, sends
SIGKILL to what is left and exits; with nothing registered it exits at once
and signals nothing. While forkmerge lives it ignores SIGINT, SIGTERM and
SIGHUP: Ctrl-C (sent to the terminal's foreground group, which the reaper is
not in), a CI runner stopping the job or a stray ``kill`` must not lose the
registrations while forkmerge stops its steps itself.

Process id reuse: a group's id cannot be given to a new process while a member
lives or its leader is unreaped, so the reaper could signal a stranger only if
a group emptied and its id came round again between forkmerge's last look and
the reaper's signal. The executor unregisters a group as soon as it has seen
it empty; the reaper signals within milliseconds of forkmerge's death and,
while forkmerge lives, forgets every few seconds the registered groups that
emptied (so a registration never withdrawn cannot wait hours for a reused id).

Only the standard library is imported: the executor runs this file by path
(``python -I -S .../process_reaper.py``), which starts fast and works from any
directory and environment; ``python -m envs.process_reaper`` runs it too.
POSIX only; ``/proc`` (Linux) tells a group of zombies from a living one.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from typing import Final, final

__all__ = ["ProcessReaper", "living_groups", "main"]

_PROGRAM: Final = os.path.abspath(__file__)
_PROC: Final = "/proc"
_IGNORED: Final = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# While forkmerge lives, registered groups that emptied are forgotten this often.
_PRUNE_INTERVAL: Final = 5.0
_FIRST_POLL: Final = 0.002
_MAX_POLL: Final = 0.05
# After this many reapers died or got stuck, no new one is started.
_MAX_LOST: Final = 5
# close() waits this much longer than the grace for the reaper to exit.
_EXIT_MARGIN: Final = 1.0
# Reapers let go of without waiting for their exit, kept here until reaped (no zombies).
_RELEASED: Final[set[subprocess.Popen[bytes]]] = set()


@final
class ProcessReaper:
    """Keeps a reaper process that stops the registered process groups if this process dies.

    Think of it as a dead man's switch: the executor registers each step's
    process group right after creating it and unregisters it once it has seen
    the group empty; should this process end before that (SIGKILL, a crash,
    the OOM killer), the reaper stops the groups still registered (SIGTERM
    and SIGCONT, ``grace`` seconds, SIGKILL). See the module docstring.

        reaper = ProcessReaper(grace=2.0)
        reaper.register(process.pid)    # a new session's id is its leader's pid
        ...                             # the executor stops and empties the group
        reaper.unregister(process.pid)
        reaper.close()                  # or let this process exit

    The reaper process starts on the first :meth:`start` or :meth:`register`
    (a fork and exec: well under a millisecond here, Python's start-up then
    runs in the child). The methods are synchronous, so trio cannot cancel
    them; none raises or blocks for long: writes to the reaper are
    non-blocking lines of a few bytes. When the reaper cannot be started (no
    interpreter, no fork), commands run on without one; a dead or stuck
    reaper (its pipe full) is killed, which takes a moment, and replaced by
    a new one told every group still registered, five times at most. The
    pipe is close-on-exec and the reaper is started with every other
    descriptor closed, so neither the steps nor the reaper hold the other's
    pipes. A ``fork()`` without ``exec`` would hand the pipe to the child,
    delaying the reaper's end of input until that child exits too.

    Args:
      grace: seconds between SIGTERM and SIGKILL when the reaper stops the
        groups left behind.

    Raises:
      ValueError: if ``grace`` is negative or not a number.
    """

    __slots__ = (
        "__weakref__",
        "_finalizer",
        "_grace",
        "_lock",
        "_lost",
        "_registered",
        "_watchdog",
    )

    def __init__(self, *, grace: float = 2.0) -> None:
        if math.isnan(grace) or grace < 0:
            raise ValueError(f"`grace` must be a non-negative number, got {grace}")
        self._grace = grace
        self._lock = threading.Lock()
        self._registered: dict[int, None] = {}  # ordered, for a predictable restart
        self._lost = 0
        self._watchdog: _Watchdog | None = None
        self._finalizer: weakref.finalize[[], ProcessReaper] | None = None

    @property
    def pid(self) -> int | None:
        """The reaper's process id; None before it starts, after :meth:`close`, or if it cannot."""
        watchdog = self._watchdog
        return None if watchdog is None else watchdog.pid

    @property
    def registered(self) -> frozenset[int]:
        """The groups registered and not unregistered since (this process's view)."""
        with self._lock:
            return frozenset(self._registered)

    def start(self) -> None:
        """Start the reaper process unless it runs; never raises (see the class docstring)."""
        with self._lock:
            if self._watchdog is None:
                self._start()

    def register(self, pgid: int) -> None:
        """Tell the reaper to stop group ``pgid`` if this process dies before unregistering it."""
        with self._lock:
            self._registered[pgid] = None
            self._send(f"+{pgid}\n")

    def unregister(self, pgid: int) -> None:
        """Tell the reaper that group ``pgid`` is finished; an unknown ``pgid`` is ignored."""
        with self._lock:
            if pgid in self._registered:
                del self._registered[pgid]
                self._send(f"-{pgid}\n")

    def close(self) -> None:
        """Let the reaper go: it stops the groups still registered, then exits.

        With nothing registered the reaper exits at once and this returns in
        milliseconds; otherwise it waits up to ``grace`` plus a second for
        the reaper to stop the groups. A later :meth:`register` starts a new
        reaper. Exiting this process has the same effect.
        """
        with self._lock:
            self._registered.clear()
            if self._finalizer is not None:
                self._finalizer.detach()
            if self._watchdog is not None:
                self._watchdog.close(self._grace + _EXIT_MARGIN)
            self._watchdog = self._finalizer = None

    def _send(self, line: str) -> None:
        """Write ``line`` to the reaper; on failure replace the reaper (holding the lock)."""
        if self._watchdog is not None:
            if self._watchdog.send(line.encode()):
                return
            self._drop()
        self._start()

    def _start(self) -> None:
        """Start a reaper and register every group still registered (holding the lock)."""
        if self._lost >= _MAX_LOST:
            return
        try:
            watchdog = _Watchdog(_spawn(self._grace))
        except (OSError, subprocess.SubprocessError):
            self._lost = _MAX_LOST  # it will not work better next time
            return
        self._watchdog = watchdog
        # When this object is collected, or at exit, the pipe closes and the reaper goes.
        self._finalizer = weakref.finalize(self, watchdog.release)
        snapshot = "".join(f"+{pgid}\n" for pgid in self._registered)
        if snapshot and not watchdog.send(snapshot.encode()):
            self._drop()

    def _drop(self) -> None:
        """Kill the current reaper (dead or stuck) so that it cannot act on a stale set."""
        self._lost += 1
        if self._finalizer is not None:
            self._finalizer.detach()
        if self._watchdog is not None:
            self._watchdog.kill()
        self._watchdog = self._finalizer = None


@final
class _Watchdog:
    """One started reaper process and the write end of its stdin (non-blocking)."""

    __slots__ = ("_process",)

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process

    @property
    def pid(self) -> int:
        return self._process.pid

    def send(self, data: bytes) -> bool:
        """Write ``data`` without waiting; False if the reaper is gone or not reading."""
        stdin = self._process.stdin
        if stdin is None or stdin.closed:
            return False
        try:
            while data:
                data = data[os.write(stdin.fileno(), data) :]
        except OSError:  # BrokenPipeError: it died; BlockingIOError: its pipe is full
            return False
        return True

    def close(self, timeout: float) -> None:
        """Close the pipe (the reaper's end of input) and wait up to ``timeout`` for its exit."""
        self._close_pipe()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:  # still stopping groups: it exits on its own
            _RELEASED.add(self._process)

    def release(self) -> None:
        """Close the pipe without waiting; the exited reaper is reaped by a later start."""
        self._close_pipe()
        if self._process.poll() is None:
            _RELEASED.add(self._process)

    def _close_pipe(self) -> None:
        with contextlib.suppress(OSError):
            if self._process.stdin is not None:
                self._process.stdin.close()

    def kill(self) -> None:
        """Kill and reap the reaper (our unreaped child, so its pid is still its own)."""
        with contextlib.suppress(OSError):
            self._process.kill()
        self.close(_EXIT_MARGIN)


def _spawn(grace: float) -> subprocess.Popen[bytes]:
    """Start the reaper program in a session of its own, its stdin a non-blocking pipe."""
    for released in list(_RELEASED):
        if released.poll() is not None:
            _RELEASED.discard(released)
    if not sys.executable or not os.path.isfile(_PROGRAM):
        raise OSError("no Python interpreter or reaper program file to start the reaper with")
    # The reaper inherits this thread's signal mask through exec: with the signals it
    # ignores blocked, none can kill it before its main() ignores them. Meanwhile a signal
    # for this process goes to another thread, or waits the few microseconds of the spawn.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _IGNORED)
    try:
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", _PROGRAM, "--grace", repr(grace)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",  # holds no worktree or mount busy
            close_fds=True,
            start_new_session=True,
            bufsize=0,
        )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    assert process.stdin is not None  # asked for a pipe
    os.set_blocking(process.stdin.fileno(), False)
    return process


# --- the reaper program --------------------------------------------------------------


def main(argv: Sequence[str]) -> int:
    """Run the reaper: follow stdin until its end, then stop what is still registered.

    Returns the exit status: 0, or 2 (a usage message on stderr) for bad arguments.
    """
    grace = 2.0
    if argv:
        try:
            [option, value] = argv
            grace = float(value)
            if option != "--grace" or math.isnan(grace) or grace < 0:
                raise ValueError(option)
        except ValueError:
            print("usage: process_reaper [--grace SECONDS]", file=sys.stderr)
            return 2
    for signum in _IGNORED:  # discards any that came while they were blocked (_spawn)
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _IGNORED)
    stop_groups(follow_registrations(0), grace)
    return 0


def follow_registrations(fd: int) -> set[int]:
    """Apply the ``+<pgid>``/``-<pgid>`` lines read from ``fd`` until its end; the groups left.

    While waiting, registered groups that have emptied are forgotten every
    few seconds. A malformed or unfinished line is ignored.
    """
    registered: set[int] = set()
    pending = b""
    while True:
        ready, _, _ = select.select([fd], [], [], _PRUNE_INTERVAL if registered else None)
        if not ready:
            registered &= living_groups(registered)
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            return registered
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            _apply(line, registered)


def _apply(line: bytes, registered: set[int]) -> None:
    sign, number = line[:1], line[1:]
    if not number.isdigit() or int(number) <= 1:  # killpg(0 or 1) would hit the wrong group
        return
    if sign == b"+":
        registered.add(int(number))
    elif sign == b"-":
        registered.discard(int(number))


def stop_groups(pgids: Iterable[int], grace: float) -> None:
    """SIGTERM and SIGCONT to each group, up to ``grace`` seconds to empty, SIGKILL to the rest."""
    alive = [pgid for pgid in pgids if _signal_group(pgid, signal.SIGTERM)]
    for pgid in alive:
        _signal_group(pgid, signal.SIGCONT)
    deadline = time.monotonic() + grace
    delay = _FIRST_POLL
    while alive:
        living = living_groups(alive)
        alive = [pgid for pgid in alive if pgid in living]
        remaining = deadline - time.monotonic()
        if not alive or remaining <= 0:
            break
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, _MAX_POLL)
    for pgid in alive:
        _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, signum: signal.Signals) -> bool:
    """Send ``signum`` to the group; False when it is gone or not ours to signal."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def living_groups(pgids: Iterable[int]) -> set[int]:
    """Those of ``pgids`` that still have a running member (zombies do not count).

    An orphan is reaped by init, which in some containers never reaps; its
    group then still "exists" for ``killpg``, so on Linux ``/proc`` decides.
    A group we may not signal counts as living.
    """
    existing = set()
    for pgid in pgids:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            continue
        except PermissionError:
            pass
        existing.add(pgid)
    if not existing or not os.path.isdir(_PROC):
        return existing
    living = set()
    with os.scandir(_PROC) as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(os.path.join(entry.path, "stat"), "rb") as file:
                    stat = file.read()
            except OSError:  # exited meanwhile, or not readable
                continue
            # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
            fields = stat.rpartition(b")")[2].split()
            if len(fields) >= 3 and fields[0] not in (b"Z", b"X"):
                pgrp = int(fields[2])
                if pgrp in existing:
                    living.add(pgrp)
    return living


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

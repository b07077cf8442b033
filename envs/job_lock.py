"""One process per job: a lock file that notices a dead holder and can be taken over."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from types import TracebackType

import attrs

__all__ = ["JobLock", "JobLocked", "LockHolder", "lock_holder"]


@attrs.frozen
class LockHolder:
    """Who holds a job's lock: process id, host and since when."""

    pid: int
    host: str
    since: float

    def alive(self) -> bool:
        """Whether the holder still runs (a holder on another host is assumed alive)."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return _not_a_zombie(self.pid)


def _not_a_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
            return file.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


_GUARD_WAIT = 2.0  # seconds to wait for another process's read-decide-write of the lock


class JobLocked(Exception):
    """Another live process runs the job."""

    def __init__(self, job_id: str, holder: LockHolder) -> None:
        super().__init__(job_id, holder)
        self.job_id = job_id
        self.holder = holder

    def __str__(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.holder.since))
        return (
            f"job {self.job_id} is being run by process {self.holder.pid} on "
            f"{self.holder.host} (since {started}); wait for it or stop it first"
        )


def _read(path: str) -> LockHolder | None:
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
        return LockHolder(int(data["pid"]), str(data["host"]), float(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def lock_holder(lock_dir: str, job_id: str) -> LockHolder | None:
    """The live holder of ``job_id``'s lock, or ``None`` (free, or held by a dead process)."""
    holder = _read(os.path.join(lock_dir, f"{job_id}.lock"))
    return holder if holder is not None and holder.alive() else None


class JobLock:
    """The lock of one job, held by this process between ``acquire`` and ``release``.

    Acquiring writes ``<lock_dir>/<job_id>.lock`` (pid, host, time); if the
    file names a live holder, :class:`JobLocked` is raised; a dead holder's
    lock (killed, crashed, rebooted) is taken over. The decision is made
    under an exclusive ``flock`` of ``<job_id>.lock.guard``, so two
    processes never both take it. Use it as a context manager.
    """

    def __init__(self, lock_dir: str, job_id: str) -> None:
        self.path = os.path.join(lock_dir, f"{job_id}.lock")
        self.job_id = job_id
        self._held = False

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with self._guard():
            holder = _read(self.path) if os.path.lexists(self.path) else None
            if holder is not None and holder.alive():
                raise JobLocked(self.job_id, holder)
            # Free, or a dead holder's lock (killed, crashed, rebooted): take it.
            me = LockHolder(os.getpid(), socket.gethostname(), time.time())
            temporary = f"{self.path}.{os.getpid()}.tmp"
            with open(temporary, "w", encoding="utf-8") as file:
                json.dump(attrs.asdict(me), file)
            os.replace(temporary, self.path)
            self._held = True

    def release(self) -> None:
        if not self._held:
            return
        with self._guard():
            holder = _read(self.path)
            if holder is not None and holder.pid == os.getpid():
                os.unlink(self.path)
        self._held = False

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Serialize the read-decide-write of the lock file across processes.

        An exclusive ``flock`` on a companion file, held for microseconds;
        without it two processes could both find a dead holder and both
        take the lock over.
        """
        fd = os.open(f"{self.path}.guard", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            deadline = time.monotonic() + _GUARD_WAIT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        holder = _read(self.path)
                        unknown = LockHolder(0, "another process", time.time())
                        raise JobLocked(self.job_id, holder or unknown) from None
                    time.sleep(0.005)
            yield
        finally:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> JobLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

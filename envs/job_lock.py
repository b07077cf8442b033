"""One process per job: a lock file that notices a dead holder and can be taken over."""

from __future__ import annotations

import json
import os
import socket
import time
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

    Acquiring creates ``<lock_dir>/<job_id>.lock`` exclusively; if it exists
    and its holder is alive, :class:`JobLocked` is raised; if the holder is
    dead (killed, crashed, rebooted), the lock is taken over. Use it as a
    context manager.
    """

    def __init__(self, lock_dir: str, job_id: str) -> None:
        self.path = os.path.join(lock_dir, f"{job_id}.lock")
        self.job_id = job_id
        self._held = False

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        holder_me = LockHolder(os.getpid(), socket.gethostname(), time.time())
        me = attrs.asdict(holder_me)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = _read(self.path)
                if holder is not None and holder.alive():
                    raise JobLocked(self.job_id, holder) from None
                # A dead holder's lock: take it over by replacing it atomically.
                temporary = f"{self.path}.{os.getpid()}"
                with open(temporary, "w", encoding="utf-8") as file:
                    json.dump(me, file)
                os.replace(temporary, self.path)
                if _read(self.path) == holder_me:
                    self._held = True
                    return
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(me, file)
            self._held = True
            return
        holder = _read(self.path)
        raise JobLocked(self.job_id, holder or LockHolder(0, "unknown", time.time()))

    def release(self) -> None:
        if not self._held:
            return
        holder = _read(self.path)
        if holder is not None and holder.pid == os.getpid():
            os.unlink(self.path)
        self._held = False

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

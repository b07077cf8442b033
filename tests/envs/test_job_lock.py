"""The job lock: one process per job, a dead holder's lock taken over, only our own lock removed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envs import job_lock
from envs.job_lock import JobLock, JobLocked, LockHolder, lock_holder

JOB = "flow-20240101-000000-abcd"


def lock_file(lock_dir: Path, job_id: str = JOB) -> Path:
    return lock_dir / f"{job_id}.lock"


def write_holder(lock_dir: Path, pid: int, *, host: str | None = None, since: float = 0.0) -> None:
    """A lock file as another process would have left it."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    holder = {"pid": pid, "host": host or socket.gethostname(), "since": since or time.time()}
    lock_file(lock_dir).write_text(json.dumps(holder))


def contents(lock_dir: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(lock_file(lock_dir).read_text())
    return data


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.fixture
def live_process() -> Iterator[subprocess.Popen[bytes]]:
    """Another process that runs for the whole test."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def lock_dir(tmp_path: Path) -> Path:
    return tmp_path / "state" / "locks"


def test_acquire_writes_who_holds_it_and_release_removes_it(lock_dir: Path) -> None:
    lock = JobLock(str(lock_dir), JOB)
    before = time.time()
    lock.acquire()
    assert lock.path == str(lock_file(lock_dir))  # the directory was created
    data = contents(lock_dir)
    assert (data["pid"], data["host"]) == (os.getpid(), socket.gethostname())
    assert isinstance(data["since"], float) and before <= data["since"] <= time.time()
    holder = lock_holder(str(lock_dir), JOB)
    assert holder == LockHolder(os.getpid(), socket.gethostname(), data["since"])
    lock.release()
    assert not lock_file(lock_dir).exists()
    assert lock_holder(str(lock_dir), JOB) is None
    lock.release()  # releasing again does nothing
    lock.acquire()  # and the job can be locked again
    assert contents(lock_dir)["pid"] == os.getpid()
    lock.release()


def test_the_context_manager_releases_on_an_exception(lock_dir: Path) -> None:
    with pytest.raises(RuntimeError), JobLock(str(lock_dir), JOB):
        assert lock_file(lock_dir).exists()
        raise RuntimeError("the job failed")
    assert not lock_file(lock_dir).exists()


def test_a_second_lock_on_a_held_job_is_refused_naming_the_holder(lock_dir: Path) -> None:
    with JobLock(str(lock_dir), JOB):
        held = lock_file(lock_dir).read_text()
        second = JobLock(str(lock_dir), JOB)
        with pytest.raises(JobLocked) as refused:
            second.acquire()
        assert refused.value.job_id == JOB
        assert refused.value.holder.pid == os.getpid()
        message = str(refused.value)
        assert f"job {JOB} is being run by process {os.getpid()}" in message
        assert socket.gethostname() in message and "wait for it or stop it first" in message
        assert "\n" not in message
        # the refused lock neither changed nor, when released, removed the holder's file
        second.release()
        assert lock_file(lock_dir).read_text() == held
        # another job has its own lock
        with JobLock(str(lock_dir), "other-job"):
            assert lock_file(lock_dir, "other-job").exists()
    assert not lock_file(lock_dir).exists()


def test_a_lock_held_by_another_live_process_is_refused_until_it_dies(
    lock_dir: Path, live_process: subprocess.Popen[bytes]
) -> None:
    write_holder(lock_dir, live_process.pid)
    holder = lock_holder(str(lock_dir), JOB)
    assert holder is not None and holder.pid == live_process.pid
    with pytest.raises(JobLocked, match=f"process {live_process.pid} on"):
        JobLock(str(lock_dir), JOB).acquire()
    assert contents(lock_dir)["pid"] == live_process.pid

    live_process.kill()
    live_process.wait()
    assert lock_holder(str(lock_dir), JOB) is None
    with JobLock(str(lock_dir), JOB):
        assert contents(lock_dir)["pid"] == os.getpid()
    assert not lock_file(lock_dir).exists()


def test_a_lock_left_by_a_dead_process_is_taken_over(lock_dir: Path) -> None:
    pid = dead_pid()
    write_holder(lock_dir, pid, since=time.time() - 3600)
    assert lock_holder(str(lock_dir), JOB) is None
    lock = JobLock(str(lock_dir), JOB)
    lock.acquire()
    data = contents(lock_dir)
    assert data["pid"] == os.getpid() and float(str(data["since"])) > time.time() - 60
    names = [p.name for p in lock_dir.iterdir() if not p.name.endswith(".guard")]
    assert names == [lock_file(lock_dir).name]  # no leftovers (the guard file stays)
    with pytest.raises(JobLocked):
        JobLock(str(lock_dir), JOB).acquire()
    lock.release()
    assert not lock_file(lock_dir).exists()


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_a_zombie_holder_counts_as_dead(lock_dir: Path) -> None:
    process = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 5
        while Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.01)
        os.kill(process.pid, 0)  # it still "exists": only its state says it is dead
        write_holder(lock_dir, process.pid)
        assert lock_holder(str(lock_dir), JOB) is None
        with JobLock(str(lock_dir), JOB):
            assert contents(lock_dir)["pid"] == os.getpid()
    finally:
        process.wait()


@pytest.mark.parametrize("text", ["", "{not json", '{"pid": "x"}', "[]"])
def test_an_unreadable_lock_file_is_taken_over(lock_dir: Path, text: str) -> None:
    lock_dir.mkdir(parents=True)
    lock_file(lock_dir).write_text(text)
    assert lock_holder(str(lock_dir), JOB) is None
    with JobLock(str(lock_dir), JOB):
        assert contents(lock_dir)["pid"] == os.getpid()


def test_a_holder_on_another_host_is_assumed_alive(lock_dir: Path) -> None:
    write_holder(lock_dir, dead_pid(), host="elsewhere.invalid")
    holder = lock_holder(str(lock_dir), JOB)
    assert holder is not None and holder.host == "elsewhere.invalid"
    with pytest.raises(JobLocked, match=r"on elsewhere\.invalid"):
        JobLock(str(lock_dir), JOB).acquire()


def test_a_holder_we_may_not_signal_is_assumed_alive(
    lock_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_holder(lock_dir, 4242)

    def refuse(pid: int, signal: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", refuse)
    assert lock_holder(str(lock_dir), JOB) == LockHolder(
        4242, socket.gethostname(), float(str(contents(lock_dir)["since"]))
    )
    with pytest.raises(JobLocked, match="process 4242"):
        JobLock(str(lock_dir), JOB).acquire()


def test_lock_holder_of_a_job_never_locked_is_none(lock_dir: Path) -> None:
    assert lock_holder(str(lock_dir), JOB) is None  # not even the directory exists


def test_release_leaves_a_lock_that_is_no_longer_ours(
    lock_dir: Path, live_process: subprocess.Popen[bytes]
) -> None:
    lock = JobLock(str(lock_dir), JOB)
    lock.acquire()
    # meanwhile the lock file was replaced by another process's (e.g. an operator removed a
    # lock they thought stale and another resume took it)
    write_holder(lock_dir, live_process.pid)
    lock.release()
    assert contents(lock_dir)["pid"] == live_process.pid
    # a lock never acquired removes nothing either
    JobLock(str(lock_dir), JOB).release()
    assert contents(lock_dir)["pid"] == live_process.pid


def test_two_processes_taking_over_a_dead_holders_lock_at_once_get_it_once(
    lock_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_holder(lock_dir, dead_pid())
    first, second = JobLock(str(lock_dir), JOB), JobLock(str(lock_dir), JOB)
    outcomes: list[str] = []

    def attempt(lock: JobLock) -> None:
        try:
            lock.acquire()
        except JobLocked:
            outcomes.append("refused")
        else:
            outcomes.append("held")

    real_read = job_lock._read
    interleaved = False

    def read(path: str) -> LockHolder | None:
        # The second contender runs its whole acquire right after the first one has read
        # the dead holder, before the first one acts on what it read.
        nonlocal interleaved
        holder = real_read(path)
        if not interleaved:
            interleaved = True
            attempt(second)
        return holder

    monkeypatch.setattr(job_lock, "_read", read)
    attempt(first)
    if not interleaved:
        attempt(second)
    assert sorted(outcomes) == ["held", "refused"]
